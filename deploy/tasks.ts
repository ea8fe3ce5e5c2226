/**
 * Hardhat tasks of the deployment (registered by hardhat.config.ts):
 *
 *   deploy-system      deploys the whole system with Ignition (LocalSystem with mocks on localhost,
 *                      System elsewhere) from deploy/parameters/<network>.json, then checks it
 *   check-deployment   reads the deployed system from the chain, prints its configuration and
 *                      exits non-zero if anything is mis-wired
 *
 * Everything that needs compiled artifacts is imported inside the actions, so loading the config
 * works on a fresh clone before the first compile.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { task, types } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { loadDeployment } from "../lib/deployment";
import { LOCAL_NETWORKS, MARKETS } from "./markets";

const LOCAL_POLL_MS = 200;

interface DeployArgs {
  parameters?: string;
  deploymentId?: string;
  reset: boolean;
}

task("deploy-system", "Deploys the whole system with Hardhat Ignition, then runs check-deployment")
  .addOptionalParam("parameters", "Parameter file (default deploy/parameters/<network>.json)", undefined, types.string)
  .addOptionalParam("deploymentId", "Ignition deployment id (default chain-<chainId>)", undefined, types.string)
  .addFlag("reset", "Wipe this deployment's Ignition state first (a fresh system)")
  .setAction(async (args: DeployArgs, hre) => {
    const network = hre.network.name;
    if (network === "hardhat") {
      throw new Error(
        "the in-process network forgets everything when the command ends: start `npx hardhat node` " +
          "and deploy with --network localhost",
      );
    }
    const local = LOCAL_NETWORKS.includes(network);
    const modulePath = path.join(__dirname, "modules", local ? "LocalSystem.ts" : "System.ts");
    const parameters = path.resolve(args.parameters ?? path.join(__dirname, "parameters", `${network}.json`));
    if (!existsSync(parameters)) throw new Error(`no parameter file ${parameters} for network ${network}`);
    if (!local) await preflight(hre, parameters);
    // A local node mines each transaction at once: poll for receipts far more often than the
    // one-second default meant for real networks.
    if (local) hre.config.ignition.blockPollingInterval = LOCAL_POLL_MS;
    await hre.run(
      { scope: "ignition", task: "deploy" },
      { modulePath, parameters, deploymentId: args.deploymentId, reset: args.reset },
    );
    if (process.exitCode !== undefined && process.exitCode !== 0) {
      throw new Error("the Ignition deployment did not complete (see above); run the same command again to resume");
    }
    await hre.run("check-deployment", { deploymentId: args.deploymentId });
  });

task("check-deployment", "Prints the deployed system's configuration and fails if anything is mis-wired")
  .addOptionalParam("deploymentId", "Ignition deployment id (default chain-<chainId>)", undefined, types.string)
  .addOptionalParam("logPageSize", "Blocks per log query (public RPCs cap the range)", 10_000, types.int)
  .setAction(async (args: { deploymentId?: string; logPageSize: number }, hre) => {
    const { checkDeployment, formatReport } = await import("../lib/deployment-check");
    const { chainId } = await hre.ethers.provider.getNetwork();
    const deployment = loadDeployment(chainId, { deploymentId: args.deploymentId });
    console.log(`deployment ${deployment.deploymentId} (module ${deployment.module}) on ${hre.network.name}`);
    const report = await checkDeployment(hre.ethers.provider, deployment, {
      fromBlock: deployment.startBlock,
      logPageSize: args.logPageSize,
    });
    console.log(formatReport(report));
    if (report.problems.length > 0) {
      throw new Error(`check-deployment found ${report.problems.length} problem(s) on ${hre.network.name}`);
    }
  });

/** Ignition writes bigints as "123n" in parameter files. */
const bigintReviver = (_key: string, value: unknown): unknown =>
  typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value;

/**
 * Before any transaction on a real network: the parameter file names a collateral token and one
 * feed per market that exist, each feed says it prices the right pair, and the deployer holds the
 * rounding-reserve seeds. A wrong or placeholder address fails here, not halfway through.
 */
async function preflight(hre: HardhatRuntimeEnvironment, file: string): Promise<void> {
  const { AggregatorV3Interface__factory, IERC20Metadata__factory } = await import("../typechain-types");
  const { isAddress } = await import("ethers");
  const all = JSON.parse(readFileSync(file, "utf8"), bigintReviver) as Record<string, Record<string, unknown>>;
  const p = all.System;
  if (p === undefined) throw new Error(`${file} has no "System" section`);
  const problems: string[] = [];
  const address = (key: string): string | undefined => {
    const v = p[key];
    if (typeof v !== "string" || !isAddress(v) || BigInt(v) === 0n) {
      problems.push(`System.${key} must be a non-zero address, found ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const provider = hre.ethers.provider;
  const [deployer] = await hre.ethers.getSigners();
  if (deployer === undefined) throw new Error(`no deployer account on ${hre.network.name}`);
  const collateral = address("collateral");
  let seeds = 0n;
  for (const m of MARKETS) {
    if (p[`${m.key}_bandReference`] === undefined) problems.push(`System.${m.key}_bandReference is missing`);
    const seed = p[`${m.key}_roundingReserveSeed`];
    seeds += typeof seed === "bigint" ? seed : BigInt(typeof seed === "number" ? seed : 1);
    const feed = address(`${m.key}_feed`);
    if (feed === undefined) continue;
    if ((await provider.getCode(feed)) === "0x") {
      problems.push(`${m.key}_feed ${feed} has no code on ${hre.network.name}`);
      continue;
    }
    const aggregator = AggregatorV3Interface__factory.connect(feed, provider);
    const description = await aggregator.description();
    if (description !== m.feedDescription) {
      problems.push(`${m.key}_feed ${feed} describes itself as "${description}", expected "${m.feedDescription}"`);
    }
    const [, answer, , updatedAt] = await aggregator.latestRoundData();
    console.log(`preflight: ${m.symbol} feed ${feed} "${description}" answer ${answer}, updated at ${updatedAt}`);
  }
  if (collateral !== undefined) {
    if ((await provider.getCode(collateral)) === "0x") {
      problems.push(`collateral ${collateral} has no code on ${hre.network.name}`);
    } else {
      const token = IERC20Metadata__factory.connect(collateral, provider);
      const held = await token.balanceOf(deployer.address);
      console.log(`preflight: collateral ${await token.symbol()} (${await token.decimals()} decimals)`);
      if (held < seeds) {
        problems.push(
          `the deployer ${deployer.address} holds ${held} collateral units, the rounding-reserve seeds need ${seeds}`,
        );
      }
    }
  }
  if (problems.length > 0) throw new Error(`preflight of ${file} failed:\n  - ${problems.join("\n  - ")}`);
}
