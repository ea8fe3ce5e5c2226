/**
 * Finds a deployment's contract addresses in Hardhat Ignition's output, so that scripts, the keeper
 * and the demo never hard-code addresses: `deploy/deployments/<deploymentId>/deployed_addresses.json`
 * (the deployment id defaults to `chain-<chainId>`), written by `npm run deploy` on any network,
 * localhost included. Works with both modules (System and LocalSystem), which use the same future
 * ids. Only Node built-ins here: safe to import from hardhat.config.ts and from plain Node processes.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

/** Where Ignition writes deployments (hardhat.config.ts sets paths.ignition = "deploy"). */
export const DEFAULT_DEPLOYMENTS_ROOT = path.resolve(__dirname, "..", "deploy", "deployments");

/** Every address a client of the system needs, read from one deployment. */
export interface Deployment {
  chainId: bigint;
  deploymentId: string;
  /** The deployment's directory (holds deployed_addresses.json and Ignition's journal). */
  directory: string;
  /** The Ignition module that deployed it: "System" (any chain) or "LocalSystem" (mocks). */
  module: string;
  collateral: string;
  oracle: string;
  clearinghouse: string;
  lens: string;
  insuranceFund: string;
  deleverager: string;
  /** Price feed (aggregator) per market key of deploy/markets.ts, e.g. feeds.ETH_USD. */
  feeds: Record<string, string>;
  /** The clearinghouse's linked libraries, when the deployment recorded them (see CLEARINGHOUSE_LIBRARIES). */
  clearinghouseLibraries?: ClearinghouseLibraries;
  /** The deleverager's linked libraries, when the deployment recorded them (see ADL_LIBRARIES). */
  adlLibraries?: AdlLibraries;
  /** Block of the first deployment transaction (where event scans can start); 0 if unknown. */
  startBlock: number;
}

export interface DeploymentLocation {
  /** Ignition deployment id; default `chain-<chainId>`. */
  deploymentId?: string;
  /** Directory holding the deployments; default deploy/deployments of this repository. */
  root?: string;
}

/** Thrown when no deployment output exists or it lacks a contract; the message says what to run. */
export class DeploymentNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeploymentNotFoundError";
  }
}

const CONTRACTS = {
  collateral: "Collateral",
  oracle: "OracleAdapter",
  clearinghouse: "Clearinghouse",
  lens: "ClearinghouseLens",
  insuranceFund: "InsuranceFund",
  deleverager: "AutoDeleverager",
} as const;
type ContractKey = keyof typeof CONTRACTS;

const FEED_PREFIX = "Feed_";

/*
 * Linked libraries, by contract name (also their Ignition future ids): every library future of
 * addCore in deploy/modules/core-futures.ts (FUTURE_IDS), which this file cannot import (Node
 * built-ins only); test/deploy/deployment-loader.test.ts checks that the two lists agree.
 */
/** The libraries linked into Clearinghouse. */
export const CLEARINGHOUSE_LIBRARIES = ["OrderLib", "MarketParamsLib", "Liquidations"] as const;
export type ClearinghouseLibraries = Partial<Record<(typeof CLEARINGHOUSE_LIBRARIES)[number], string>>;
/** The libraries linked into AutoDeleverager (AdlSessionLib is itself linked to AdlProofLib). */
export const ADL_LIBRARIES = ["AdlProofLib", "AdlSessionLib"] as const;
export type AdlLibraries = Partial<Record<(typeof ADL_LIBRARIES)[number], string>>;

/** The default deployment id Ignition uses on `chainId`. */
export const defaultDeploymentId = (chainId: bigint | number): string => `chain-${chainId}`;

/** The directory of a deployment. */
export function deploymentDirectory(chainId: bigint | number, location: DeploymentLocation = {}): string {
  return path.join(location.root ?? DEFAULT_DEPLOYMENTS_ROOT, location.deploymentId ?? defaultDeploymentId(chainId));
}

/**
 * Reads the deployment of `chainId`. Throws DeploymentNotFoundError if there is none, if it is
 * incomplete, or if it holds more than one system.
 */
export function loadDeployment(chainId: bigint | number, location: DeploymentLocation = {}): Deployment {
  const directory = deploymentDirectory(chainId, location);
  const file = path.join(directory, "deployed_addresses.json");
  if (!existsSync(file)) {
    throw new DeploymentNotFoundError(
      `no deployment at ${file}: deploy first (npm run deploy -- --network <name>, or npm run deploy:local)`,
    );
  }
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  return {
    chainId: BigInt(chainId),
    deploymentId: location.deploymentId ?? defaultDeploymentId(chainId),
    directory,
    ...parseDeployedAddresses(raw, file),
    startBlock: firstBlock(path.join(directory, "journal.jsonl")),
  };
}

/** Reads the deployment of the chain `provider` is connected to. */
export async function loadDeploymentFor(
  provider: { getNetwork(): Promise<{ chainId: bigint }> },
  location: DeploymentLocation = {},
): Promise<Deployment> {
  const { chainId } = await provider.getNetwork();
  return loadDeployment(chainId, location);
}

/**
 * Maps Ignition's `{ "<Module>#<futureId>": address }` to the system's addresses. Exported for
 * tests and for callers that hold the map some other way.
 */
export function parseDeployedAddresses(
  raw: Record<string, string>,
  source = "deployed_addresses.json",
): Omit<Deployment, "chainId" | "deploymentId" | "directory" | "startBlock"> {
  const modules = new Set<string>();
  const found = new Map<string, string>();
  for (const [futureKey, address] of Object.entries(raw)) {
    const [module, futureId] = futureKey.split("#");
    if (futureId === undefined) continue;
    if (futureId === CONTRACTS.clearinghouse) modules.add(module);
    found.set(`${module}#${futureId}`, address);
  }
  if (modules.size !== 1) {
    throw new DeploymentNotFoundError(
      modules.size === 0
        ? `${source} holds no Clearinghouse: the deployment did not finish (run the deploy again; Ignition resumes)`
        : `${source} holds several systems (${[...modules].join(", ")}): pass a deploymentId`,
    );
  }
  const [module] = modules;
  const get = (key: ContractKey): string => {
    const address = found.get(`${module}#${CONTRACTS[key]}`);
    if (address === undefined) {
      throw new DeploymentNotFoundError(`${source} lacks ${module}#${CONTRACTS[key]}: the deployment did not finish`);
    }
    return address;
  };
  const feeds: Record<string, string> = {};
  for (const [key, address] of found) {
    const [m, futureId] = key.split("#");
    if (m === module && futureId.startsWith(FEED_PREFIX)) feeds[futureId.slice(FEED_PREFIX.length)] = address;
  }
  // Deployments made before a library existed did not record it: each one is read when present.
  const recorded = <Name extends string>(names: readonly Name[]): Partial<Record<Name, string>> => {
    const out: Partial<Record<Name, string>> = {};
    for (const name of names) {
      const address = found.get(`${module}#${name}`);
      if (address !== undefined) out[name] = address;
    }
    return out;
  };
  const clearinghouseLibraries = recorded(CLEARINGHOUSE_LIBRARIES);
  const adlLibraries = recorded(ADL_LIBRARIES);
  return {
    module,
    collateral: get("collateral"),
    oracle: get("oracle"),
    clearinghouse: get("clearinghouse"),
    lens: get("lens"),
    insuranceFund: get("insuranceFund"),
    deleverager: get("deleverager"),
    feeds,
    ...(Object.keys(clearinghouseLibraries).length > 0 ? { clearinghouseLibraries } : {}),
    ...(Object.keys(adlLibraries).length > 0 ? { adlLibraries } : {}),
  };
}

/** The smallest block number of a confirmed transaction in Ignition's journal; 0 if none is found. */
function firstBlock(journalFile: string): number {
  if (!existsSync(journalFile)) return 0;
  let first = Number.POSITIVE_INFINITY;
  for (const line of readFileSync(journalFile, "utf8").split("\n")) {
    // Receipts are journalled as {"type":"TRANSACTION_CONFIRM",...,"receipt":{"blockNumber":N,...}}.
    const match = /"blockNumber":\s*(\d+)/.exec(line);
    if (match) first = Math.min(first, Number(match[1]));
  }
  return Number.isFinite(first) ? first : 0;
}
