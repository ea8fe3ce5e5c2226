/**
 * Contract addresses from Ignition's deployment output: deploy/deployments/chain-<chainId>/
 * deployed_addresses.json (hardhat.config.ts sets paths.ignition = "deploy"). Keys look like
 * "<Module>#<Contract>"; the keeper takes the contract name after '#'.
 */
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { getAddress } from "ethers";
import type { KeeperAddresses } from "./types";

export type DeploymentAddresses = KeeperAddresses;

const CONTRACTS: Record<keyof KeeperAddresses, string> = {
  clearinghouse: "Clearinghouse",
  deleverager: "AutoDeleverager",
  insuranceFund: "InsuranceFund",
  lens: "ClearinghouseLens",
};

/** The deployed_addresses.json path of a chain under an Ignition directory. */
export const deploymentFile = (ignitionDir: string, chainId: bigint | number | string): string =>
  path.join(ignitionDir, "deployments", `chain-${chainId.toString()}`, "deployed_addresses.json");

/**
 * Reads the four addresses the keeper needs; throws naming the file and the missing contract, or
 * when one contract name maps to two different addresses (two modules deployed on that chain).
 */
export function readDeployment(ignitionDir: string, chainId: bigint | number | string): DeploymentAddresses {
  const file = deploymentFile(ignitionDir, chainId);
  if (!existsSync(file)) throw new Error(`no Ignition deployment for chain ${chainId.toString()}: ${file} not found`);
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  const out: Partial<KeeperAddresses> = {};
  for (const [field, name] of Object.entries(CONTRACTS) as [keyof KeeperAddresses, string][]) {
    const found = new Set(
      Object.entries(raw)
        .filter(([key]) => key.split("#")[1] === name)
        .map(([, address]) => getAddress(address)),
    );
    if (found.size === 0) throw new Error(`${file} has no ${name}`);
    if (found.size > 1) throw new Error(`${file} has ${found.size} different ${name} addresses: pass them explicitly`);
    out[field] = [...found][0];
  }
  return out as KeeperAddresses;
}
