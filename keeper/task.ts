/**
 * The `keeper` Hardhat task (registered by hardhat.config.ts): `npm run keeper -- --network <name>`.
 * The body is loaded lazily so that loading the config never needs compiled contract types.
 */
import { task, types } from "hardhat/config";

task("keeper", "Liquidates, covers and deleverages positions; see docs/keeper.md")
  .addOptionalParam("markets", "Comma-separated market symbols or bytes32 ids", "ETH-USD,BTC-USD", types.string)
  .addOptionalParam(
    "signerIndex",
    "Account index of the network when KEEPER_PRIVATE_KEY is unset",
    undefined,
    types.int,
  )
  .addOptionalParam("pollIntervalMs", "Milliseconds between ticks", undefined, types.int)
  .addOptionalParam("checkpointPath", "Checkpoint file (default .keeper/chain-<chainId>.json)", undefined, types.string)
  .addOptionalParam("deploymentDir", "Ignition directory with deployments/chain-<id>/", undefined, types.string)
  .addOptionalParam("clearinghouse", "Clearinghouse address (overrides the deployment)", undefined, types.string)
  .addOptionalParam("deleverager", "AutoDeleverager address (overrides the deployment)", undefined, types.string)
  .addOptionalParam("insuranceFund", "InsuranceFund address (overrides the deployment)", undefined, types.string)
  .addOptionalParam("lens", "ClearinghouseLens address (overrides the deployment)", undefined, types.string)
  .addOptionalParam("startBlock", "First block to replay without a checkpoint", undefined, types.int)
  .addOptionalParam("pageSize", "Blocks per log query", undefined, types.int)
  .addOptionalParam("confirmations", "Blocks behind the head the book stays", undefined, types.int)
  .addOptionalParam("maxEntries", "Longest counterparty list per deleverage call", undefined, types.int)
  .addOptionalParam("gasLimitCap", "Largest gas limit per transaction", undefined, types.string)
  .addOptionalParam("gasHeadroomPercent", "Percent added to gas estimates", undefined, types.int)
  .addOptionalParam("maxFeePerGas", "Fee cap in wei", undefined, types.string)
  .addOptionalParam("maxPriorityFeePerGas", "Priority fee cap in wei", undefined, types.string)
  .addOptionalParam("receiptTimeoutMs", "Wait for a receipt at most this long per tick", undefined, types.int)
  .addOptionalParam(
    "liquidationLeverage",
    "Leverage of the keeper's leg in a takeover (e.g. 5)",
    undefined,
    types.string,
  )
  .addOptionalParam("maxAdlPerTick", "Bankrupt positions planned for ADL per tick", undefined, types.int)
  .addOptionalParam("maxRebuilds", "Rebuilds of a stale ADL list per tick", undefined, types.int)
  .addOptionalParam("rpcRetries", "Retries of a failed RPC call", undefined, types.int)
  .addOptionalParam("logLevel", "fatal|error|warn|info|debug|trace|silent", undefined, types.string)
  .addFlag("refreshLooseNodes", "Refresh empty leaves that proofs have to open (costs gas)")
  .addFlag("once", "Run one tick and exit (exit code 1 if it reported errors)")
  .setAction(async (args: Record<string, unknown>, hre) => {
    const { runKeeper } = await import("./src/cli");
    await runKeeper(hre, args);
  });
