/**
 * The `keeper` task's body: validate the configuration, pick the account, read the addresses from
 * Ignition's deployment output (flags override), open the checkpoint file, then tick once or run
 * until SIGINT / SIGTERM, logging a final summary.
 */
import path from "node:path";
import { Wallet, getAddress, type Signer } from "ethers";
import pino from "pino";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { FileCheckpointStore } from "./checkpoint";
import { addressOverrides, keeperOptions, parseConfig } from "./config";
import { loadDeployment } from "../../lib/deployment";
import { Keeper } from "./keeper";
import type { KeeperAddresses } from "./types";

export async function runKeeper(hre: HardhatRuntimeEnvironment, flags: Record<string, unknown>): Promise<void> {
  const config = parseConfig({ ...flags, privateKey: process.env.KEEPER_PRIVATE_KEY || undefined });
  const logger = pino({ level: config.logLevel, base: { service: "keeper", network: hre.network.name } });
  const provider = hre.ethers.provider;
  const chainId = (await provider.getNetwork()).chainId;
  const runner: Signer = config.privateKey
    ? new Wallet(config.privateKey, provider)
    : (await hre.ethers.getSigners())[config.signerIndex];
  if (!runner) throw new Error(`network ${hre.network.name} has no account at index ${config.signerIndex}`);

  const overrides = addressOverrides(config);
  const complete = Object.keys(overrides).length === 4;
  const addresses: KeeperAddresses = complete
    ? (overrides as KeeperAddresses)
    : { ...deployedAddresses(path.resolve(hre.config.paths.root, config.deploymentDir), chainId), ...overrides };
  const checkpointPath = path.resolve(
    hre.config.paths.root,
    config.checkpointPath ?? path.join(".keeper", `chain-${chainId.toString()}.json`),
  );

  const keeper = await Keeper.create({
    runner,
    addresses,
    markets: config.markets,
    logger,
    checkpoint: new FileCheckpointStore(checkpointPath),
    options: keeperOptions(config),
  });
  logger.info(
    { event: "keeper.config", checkpointPath, once: config.once, network: hre.network.name },
    "keeper.config",
  );

  const shutdown = (signal: string) => {
    logger.info({ event: "keeper.signal", signal }, "keeper.signal");
    void keeper.stop();
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));

  if (config.once) {
    const report = await keeper.tick();
    await keeper.stop();
    if (report.errors.length > 0) process.exitCode = 1;
    return;
  }
  await keeper.run();
  await keeper.stop();
}

/** The four addresses the keeper needs from the deployment under `ignitionDir` (deployments/chain-<id>/). */
function deployedAddresses(ignitionDir: string, chainId: bigint): KeeperAddresses {
  const deployment = loadDeployment(chainId, { root: path.join(ignitionDir, "deployments") });
  return {
    clearinghouse: getAddress(deployment.clearinghouse),
    deleverager: getAddress(deployment.deleverager),
    insuranceFund: getAddress(deployment.insuranceFund),
    lens: getAddress(deployment.lens),
  };
}
