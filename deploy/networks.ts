/**
 * Remote networks from environment variables (a `.env` file is loaded by hardhat.config.ts when
 * present; `.env.example` documents every variable). Nothing secret is committed. A missing or
 * malformed variable is reported only when its network is actually used, so `npm test` (the
 * in-process network) needs no environment at all.
 */
import { HardhatPluginError } from "hardhat/plugins";
import type { HttpNetworkUserConfig } from "hardhat/types";

export interface RemoteNetwork {
  name: string;
  chainId: number;
  rpcVariable: string;
}

/** The testnets the project deploys to. */
export const REMOTE_NETWORKS: readonly RemoteNetwork[] = [
  { name: "sepolia", chainId: 11155111, rpcVariable: "SEPOLIA_RPC_URL" },
  { name: "arbitrumSepolia", chainId: 421614, rpcVariable: "ARBITRUM_SEPOLIA_RPC_URL" },
  { name: "baseSepolia", chainId: 84532, rpcVariable: "BASE_SEPOLIA_RPC_URL" },
];

export const DEPLOYER_KEY_VARIABLE = "DEPLOYER_PRIVATE_KEY";
export const LOCALHOST_RPC_VARIABLE = "LOCALHOST_RPC_URL";
export const DEFAULT_LOCALHOST_RPC_URL = "http://127.0.0.1:8545";

/** Stands in for a missing URL so the config validates; never contacted (requireNetworkEnv refuses first). */
const UNSET_URL = "http://unset.invalid";

const PRIVATE_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

function deployerAccounts(env: NodeJS.ProcessEnv): string[] {
  const key = env[DEPLOYER_KEY_VARIABLE]?.trim();
  // A malformed key would fail Hardhat's config validation for every command; keep it out and
  // let requireNetworkEnv name it when a remote network is used.
  if (key === undefined || !PRIVATE_KEY.test(key)) return [];
  return [key.startsWith("0x") ? key : `0x${key}`];
}

/** Hardhat network entries for the testnets and for `localhost` (URL overridable). */
export function networksFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, HttpNetworkUserConfig> {
  const networks: Record<string, HttpNetworkUserConfig> = {
    localhost: { url: env[LOCALHOST_RPC_VARIABLE]?.trim() || DEFAULT_LOCALHOST_RPC_URL },
  };
  for (const n of REMOTE_NETWORKS) {
    networks[n.name] = {
      url: env[n.rpcVariable]?.trim() || UNSET_URL,
      chainId: n.chainId,
      accounts: deployerAccounts(env),
    };
  }
  return networks;
}

/**
 * The problems with the environment of network `name` (empty when it is usable or not remote):
 * its RPC URL and the deployer key must be set, the key well formed.
 */
export function networkEnvProblems(name: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const n = REMOTE_NETWORKS.find((r) => r.name === name);
  if (n === undefined) return [];
  const problems: string[] = [];
  if (!env[n.rpcVariable]?.trim()) problems.push(`${n.rpcVariable} is not set`);
  const key = env[DEPLOYER_KEY_VARIABLE]?.trim();
  if (!key) problems.push(`${DEPLOYER_KEY_VARIABLE} is not set`);
  else if (!PRIVATE_KEY.test(key)) problems.push(`${DEPLOYER_KEY_VARIABLE} is not a 32-byte hex private key`);
  return problems;
}

/** Throws a clear error when network `name` is remote and its environment is incomplete. */
export function requireNetworkEnv(name: string, env: NodeJS.ProcessEnv = process.env): void {
  const problems = networkEnvProblems(name, env);
  if (problems.length > 0) {
    // A plugin error prints as one line, without a stack trace.
    throw new HardhatPluginError(
      "networks",
      `network ${name} cannot be used: ${problems.join("; ")}. ` +
        "Set them in the environment or in a .env file (see .env.example).",
    );
  }
}
