/**
 * The swappable parts of the keeper. The Keeper wires chain-backed implementations by default
 * (keeper/src/chain/*); tests and other runners may pass their own.
 */
import type { PositionBook } from "../../lib/adl";
import type { Checkpoint } from "./types";

/** The keeper's view of every position and of the rank index, kept up to date from events. */
export interface PositionSource {
  readonly book: PositionBook;
  /** Last block whose events are applied (-1 before the first sync). */
  readonly lastBlock: number;
  /** Applies the events of (lastBlock, toBlock]; returns how many were applied. */
  sync(toBlock: number): Promise<number>;
}

/** The market parameters a decision reads. */
export interface MarketRisk {
  /** Initial margin ratio: the margin a socialized-loss takeover posts. */
  imr: bigint;
  mmr: bigint;
  liquidationFee: bigint;
  minNotional: bigint;
}

/** (P, F) and the market facts of the block the keeper's next transaction lands in. */
export interface MarketReading {
  marketId: string;
  price: bigint;
  /** Cumulative funding F (ClearinghouseLens.currentFunding), without the loss indices. */
  funding: bigint;
  /**
   * The F each side's positions are valued at (ClearinghouseLens.currentSideFunding): F + L_long for
   * longs, F - L_short for shorts. Every equity, score, eligibility and delta uses its side's value.
   */
  fundingLong: bigint;
  fundingShort: bigint;
  risk: MarketRisk;
  paused: boolean;
  /** Accounts on the on-chain unsettled list (checksummed) with their current deficits. */
  unsettled: Map<string, bigint>;
  /** When each listed account joined the list (AutoDeleverager.unsettledSince), checksummed. */
  unsettledSince: Map<string, bigint>;
  /** T_social (AutoDeleverager.socialDelay): a listed position may be socialized this long after listing. */
  socialDelay: bigint;
}

/** The F positions of `isLong`'s side are valued at in `m`. */
export const sideFundingOf = (m: Pick<MarketReading, "fundingLong" | "fundingShort">, isLong: boolean): bigint =>
  isLong ? m.fundingLong : m.fundingShort;

/** Work bounds of one deleverage call (AutoDeleverager.setBounds). */
export interface AdlBounds {
  maxListLength: number;
  maxProofNodes: number;
  maxOpenedMembers: number;
}

/** Prices, funding, fund and bounds: everything a decision reads besides the book. */
export interface PriceSource {
  market(marketId: string): Promise<MarketReading>;
  /** What the insurance fund can pay now (18-decimal quote): available tokens plus unswept fees. */
  fundAvailable(): Promise<bigint>;
  bounds(): Promise<AdlBounds>;
  /** The most a liquidator may take now (ClearinghouseLens.maxLiquidationSize). */
  maxLiquidationSize(marketId: string, account: string): Promise<bigint>;
  /** An account's free collateral in the clearinghouse (18 decimals). */
  freeCollateral(account: string): Promise<bigint>;
}

/** A transaction to simulate and send. */
export interface TxRequest {
  to: string;
  data: string;
}

/** A mined transaction's outcome. */
export interface TxOutcome {
  hash: string;
  status: "success" | "reverted";
  block: number;
  gasUsed: bigint;
  logs: readonly { address: string; topics: readonly string[]; data: string }[];
}

/** Simulates, sends and follows transactions from one account, managing its nonce. */
export interface TxSender {
  readonly address: string;
  /** eth_call against the pending block; throws the provider's error (with revert data) on a revert. */
  simulate(tx: TxRequest): Promise<void>;
  estimateGas(tx: TxRequest): Promise<bigint>;
  /** Signs and broadcasts with the next nonce; returns once the node accepted it. */
  send(tx: TxRequest, gasLimit: bigint): Promise<{ hash: string; nonce: number }>;
  /** The outcome, or null if not mined within `timeoutMs`. */
  wait(hash: string, timeoutMs: number): Promise<TxOutcome | null>;
  /** "mined" with its outcome, "pending" if the node still knows it, "unknown" otherwise (dropped). */
  lookup(hash: string): Promise<{ state: "mined"; outcome: TxOutcome } | { state: "pending" | "unknown" }>;
}

/** Where the checkpoint (book, last block, journal) lives between ticks and runs. */
export interface CheckpointStore {
  load(): Promise<Checkpoint | undefined>;
  save(checkpoint: Checkpoint): Promise<void>;
}
