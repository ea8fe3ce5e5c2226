/**
 * The keeper of verifiable ADL, usable in-process:
 *
 *   const keeper = await Keeper.create({ runner, addresses, markets, logger, checkpoint: new MemoryCheckpointStore() });
 *   const report = await keeper.tick();
 *   await keeper.stop();
 *
 * See docs/keeper.md.
 */
export { Keeper, type KeeperDeps } from "./keeper";
export { DEFAULT_OPTIONS, type KeeperOptions } from "./options";
export { MemoryCheckpointStore, FileCheckpointStore } from "./checkpoint";
export type {
  AdlBounds,
  CheckpointStore,
  MarketReading,
  MarketRisk,
  PositionSource,
  PriceSource,
  TxOutcome,
  TxRequest,
  TxSender,
} from "./interfaces";
export { sideFundingOf } from "./interfaces";
export { decide, adlAction, busyKey, holdings, looseNodeRefreshes, openedMembers, type DecisionState } from "./decide";
export {
  chargeStep,
  decideBankrupt,
  takeoverCost,
  topUpAmount,
  type BankruptCase,
  type BankruptDecision,
  type TakeoverCost,
} from "./final-layer";
export { maxTake, isLiquidatable } from "./liquidation-math";
export { classify, decodeError, isTransient } from "./errors";
// The one reader of Ignition's deployment output, shared with the scripts, the demo and e2e.
export { loadDeployment, type Deployment } from "../../lib/deployment";
export * from "./types";
