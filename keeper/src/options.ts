/** Tunables of a Keeper, with the defaults used when a caller leaves them out. */
import type { RetryPolicy } from "./retry";

export interface KeeperOptions {
  /** First block to read events from when there is no checkpoint (the deployment block or earlier). */
  startBlock: number;
  /** Blocks per getLogs query. */
  pageSize: number;
  /** Blocks behind the head the book stays (reorg margin); 0 follows the head. */
  confirmations: number;
  /** Longest counterparty list to build per deleverage call (also capped by the contract's bound). */
  maxEntries: number;
  /** Largest gas limit set on any transaction; a call estimated above it is deferred, not sent. */
  gasLimitCap: bigint;
  /** Percent added to each gas estimate. */
  gasHeadroomPercent: bigint;
  /** How long one tick waits for a receipt before leaving the transaction pending in the journal. */
  receiptTimeoutMs: number;
  /** Receipt polling interval. */
  receiptPollMs: number;
  /** Leverage (18 decimals) of the keeper's own leg when it takes over a position. */
  liquidationLeverage: bigint;
  /** Bankrupt positions the fund cannot cover planned per tick (largest deficit first). */
  maxAdlPerTick: number;
  /** Rebuilds of a stale list and proof within one tick before giving up until the next. */
  maxRebuilds: number;
  /** Refresh leaves a proof opens with no member left (best effort, costs gas). */
  refreshLooseNodes: boolean;
  /** Sleep between ticks in run(). */
  pollIntervalMs: number;
  /** Backoff for transient RPC failures. */
  retry: RetryPolicy;
  /** Fee caps (wei); undefined lets the signer price transactions. */
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
}

export const DEFAULT_OPTIONS: KeeperOptions = {
  startBlock: 0,
  pageSize: 2000,
  confirmations: 0,
  maxEntries: 64,
  gasLimitCap: 15_000_000n,
  gasHeadroomPercent: 20n,
  receiptTimeoutMs: 60_000,
  receiptPollMs: 250,
  liquidationLeverage: 5n * 10n ** 18n,
  maxAdlPerTick: 16,
  maxRebuilds: 3,
  refreshLooseNodes: false,
  pollIntervalMs: 2_000,
  retry: { retries: 4, baseDelayMs: 250, maxDelayMs: 8_000 },
};
