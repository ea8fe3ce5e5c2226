/**
 * The keeper's data: what it decides (actions), what it reports (TickReport) and what it persists
 * (the checkpoint with the journal of sent transactions). Every amount is a bigint.
 */
import type { AdlDelta, DeleveragePlan, ProofNode } from "../../lib/adl";
import type { BookSnapshot } from "../../lib/adl";
import type { SessionState, SessionStep } from "../../lib/adl-session";

/** The contracts the keeper talks to. */
export interface KeeperAddresses {
  clearinghouse: string;
  deleverager: string;
  insuranceFund: string;
  lens: string;
}

/** Take over `size` of a liquidatable position; `cover` when it is bankrupt and the fund pays. */
export interface LiquidateAction {
  kind: "liquidate";
  marketId: string;
  account: string;
  size: bigint;
  /** True if the position is bankrupt and the fund covers its whole deficit. */
  cover: boolean;
  equity: bigint;
  /** Deficit -equity when bankrupt, else 0. */
  deficit: bigint;
}

/** Settle a bankrupt position the fund cannot cover with a list and proof (single transaction). */
export interface DeleverageAction {
  kind: "deleverage";
  marketId: string;
  bankrupt: string;
  plan: DeleveragePlan;
  price: bigint;
  /** F of the counterparties' side (loss index folded in): the queue, list and proof use it. */
  funding: bigint;
  /** D, min(A, D), sigma and delta, from B at the F of its own side. */
  delta: AdlDelta;
}

/**
 * The proof for a bankrupt position exceeds what one transaction may carry (the contract's bounds):
 * the executor opens a multi-transaction ADL session with the plan's list.
 */
export interface ProofTooLargeAction {
  kind: "proof-too-large";
  marketId: string;
  bankrupt: string;
  plan: DeleveragePlan;
  price: bigint;
  /** F of the counterparties' side. */
  funding: bigint;
  delta: AdlDelta;
  listLength: number;
  proofNodes: number;
  openedMembers: number;
}

/**
 * The final layer (docs/mechanism.md section 7.6): `socializeLoss` on a bankrupt position the fund
 * cannot cover, with the empty-list proof (no eligible counterparty exists) or, once B has been on
 * the unsettled list for `socialDelay`, with no proof (the deadline). The keeper takes B's position
 * over at P, posting `takeoverMargin` of free collateral, then adds `topUp` of margin to bring the
 * position to its liquidation leverage.
 */
export interface SocializeAction {
  kind: "socialize";
  marketId: string;
  bankrupt: string;
  /** The empty-list proof over the counterparties' tree; [] for the deadline trigger. */
  proof: ProofNode[];
  byDeadline: boolean;
  /** B's side and size: what the keeper takes over. */
  isLong: boolean;
  size: bigint;
  price: bigint;
  /** F of B's side (its deficit) and of the charged side (the proof). */
  bankruptFunding: bigint;
  counterpartyFunding: bigint;
  delta: AdlDelta;
  /** Free collateral the takeover needs (initial margin, net of what closing an opposite holding pays out). */
  takeoverMargin: bigint;
  /** Margin added after the takeover (0: none). */
  topUp: bigint;
  proofNodes: number;
  openedMembers: number;
}

/**
 * A bankrupt position the fund cannot cover that nothing can settle this tick, and why: the keeper
 * lacks the free collateral for the takeover (`free-collateral`, logged at warn), the empty-list
 * proof exceeds the contract's bounds and the deadline has not come (`awaiting-deadline`), an ADL
 * session is open in the market (`session-open`), or the position is the keeper's own, which only
 * another account may liquidate or socialize (`own-position`). Not a transaction: the executor logs
 * it and reports it as deferred.
 */
export interface FinalLayerWaitAction {
  kind: "final-layer-wait";
  marketId: string;
  bankrupt: string;
  reason: "free-collateral" | "awaiting-deadline" | "session-open" | "own-position";
  deficit: bigint;
  /** When the deadline trigger opens (unsettledSince + socialDelay); 0 while B is not listed. */
  due: bigint;
  /** For `free-collateral`: what the takeover needs and what the keeper has. */
  needed?: bigint;
  free?: bigint;
}

/** Record a bankrupt position that no eligible counterparty can settle. */
export interface ReportUnsettledAction {
  kind: "report-unsettled";
  marketId: string;
  account: string;
  deficit: bigint;
}

/** Remove a listed position that recovered or closed. */
export interface ClearUnsettledAction {
  kind: "clear-unsettled";
  marketId: string;
  account: string;
}

/** Recompute a node whose aggregates went loose (best effort: shortens later proofs). */
export interface RefreshAction {
  kind: "refresh";
  marketId: string;
  isLong: boolean;
  level: number;
  position: number;
  members: string[];
}

/**
 * The next step of an ADL session open on a side (opened by this keeper or anyone else): continue
 * with the next transaction-sized slice of the proof, finish, expire (then re-open), or wait out a
 * leaf another account holds.
 */
export interface SessionStepAction {
  kind: "adl-session";
  marketId: string;
  /** The side the session settles against (the counterparties' side: true = longs). */
  side: boolean;
  bankrupt: string;
  step: Exclude<SessionStep, { kind: "open" } | { kind: "wait"; reason: string }>;
  /** The session as read when deciding. */
  session: SessionState;
}

export type Action =
  | LiquidateAction
  | DeleverageAction
  | ProofTooLargeAction
  | SessionStepAction
  | SocializeAction
  | FinalLayerWaitAction
  | ReportUnsettledAction
  | ClearUnsettledAction
  | RefreshAction;

export type ActionKind = Action["kind"];

/**
 * Journal kinds: an action's kind, the session transaction it sent (`session-bond-approve`: the
 * collateral approval a session's bond needs before the open), or the margin added after a takeover.
 */
export type JournalKind =
  | ActionKind
  | "session-bond-approve"
  | "session-open"
  | "session-continue"
  | "session-finish"
  | "session-expire"
  | "add-margin";

/** A decoded custom error (or the raw message when none decodes). */
export interface DecodedError {
  name: string;
  args: string[];
  message: string;
}

/** A liquidation the keeper sent and saw mined. */
export interface LiquidationReport {
  marketId: string;
  account: string;
  size: bigint;
  cover: boolean;
  price: bigint;
  feeToLiquidator: bigint;
  deficitCovered: bigint;
  gasUsed: bigint;
  txHash: string;
  block: number;
}

/** A deleverage call the keeper sent and saw mined. */
export interface AdlReport {
  marketId: string;
  bankrupt: string;
  counterparties: string[];
  /** Each live entry's take, from the CounterpartyDeleveraged events. */
  takes: bigint[];
  scores: bigint[];
  queuePositions: bigint[];
  charges: bigint[];
  price: bigint;
  funding: bigint;
  delta: bigint;
  closedSize: bigint;
  remainingSize: bigint;
  fundContribution: bigint;
  deficitAbsorbed: bigint;
  proofNodes: number;
  openedMembers: number;
  /** How many times the list and proof were rebuilt from fresh state before this call went out. */
  rebuilds: number;
  gasUsed: bigint;
  txHash: string;
  block: number;
}

/** One ADL session transaction the keeper sent and saw mined. */
export interface SessionReport {
  step: "open" | "continue" | "finish" | "expire";
  marketId: string;
  side: boolean;
  bankrupt: string;
  sessionId: bigint;
  /** Leaves verified after the transaction (16,384 when complete). */
  cursor: number;
  /** A leaf is held (split across continue transactions) after it. */
  held: boolean;
  /** Proof nodes and opened members the continue transaction carried (0 for other steps). */
  proofNodes: number;
  openedMembers: number;
  /** Continue transactions still needed after this one, by the split of the remaining proof. */
  slicesLeft: number;
  /** The bankrupt position's size after a finish. */
  remainingSize?: bigint;
  /** An open that follows a session which ended without a finish (expired or challenged). */
  restart: boolean;
  gasUsed: bigint;
  txHash: string;
  block: number;
}

/** A socializeLoss the keeper sent and saw mined (from LossSocialized and LossSocializationTriggered). */
export interface SocializationReport {
  marketId: string;
  bankrupt: string;
  byDeadline: boolean;
  /** The side charged (opposite B's): true = longs. */
  chargedLong: boolean;
  /** B's size, now the keeper's. */
  size: bigint;
  price: bigint;
  /** B's deficit D = fundPaid + lossSocialized. */
  deficit: bigint;
  fundPaid: bigint;
  /** D_rem, charged to the opposite side. */
  lossSocialized: bigint;
  /** Q_side, the charged side's open interest. */
  openInterest: bigint;
  /** The charged side's new loss index L. */
  lossIndex: bigint;
  toFund: bigint;
  keeperReward: bigint;
  proofNodes: number;
  openedMembers: number;
  /** Margin added to the taken position afterwards (0: none) and that transaction's gas. */
  topUp: bigint;
  topUpGasUsed: bigint;
  gasUsed: bigint;
  txHash: string;
  block: number;
}

/** A position the keeper's own account holds (taken over by a liquidation or a socialized loss). */
export interface HoldingReport {
  marketId: string;
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  /** Equity at the tick's (P, F of the position's side). */
  equity: bigint;
  /** Under maintenance: only another account may liquidate it. */
  liquidatable: boolean;
}

/** A reportUnsettled / clearUnsettled / refresh the keeper sent. */
export interface MaintenanceReport {
  kind: "report-unsettled" | "clear-unsettled" | "refresh";
  marketId: string;
  account?: string;
  deficit?: bigint;
  node?: { isLong: boolean; level: number; position: number };
  gasUsed: bigint;
  txHash: string;
  block: number;
}

/** An action not sent this tick, and why (a transaction still pending, a session holding the side, ...). */
export interface DeferredReport {
  kind: JournalKind;
  marketId: string;
  account: string;
  reason:
    | "pending-transaction"
    | "gas-above-cap"
    | "receipt-timeout"
    | "session-open"
    | "session-held"
    | "free-collateral"
    | "awaiting-deadline"
    | "own-position";
  detail: string;
  txHash?: string;
}

/** An action that failed (simulation revert, mined revert, RPC failure after retries). */
export interface ErrorReport {
  kind: ActionKind | "sync";
  marketId?: string;
  account?: string;
  error: DecodedError;
  txHash?: string;
}

/** Everything one tick did. */
export interface TickReport {
  /** Events applied in [fromBlock, toBlock] (fromBlock > toBlock when there was nothing new). */
  fromBlock: number;
  toBlock: number;
  eventsApplied: number;
  positions: number;
  liquidations: LiquidationReport[];
  adl: AdlReport[];
  /** ADL session transactions (open, continue, finish, expire). */
  sessions: SessionReport[];
  /** socializeLoss calls (the final layer). */
  socialized: SocializationReport[];
  /** reportUnsettled calls (and clearUnsettled / refresh, told apart by kind). */
  unsettled: MaintenanceReport[];
  deferred: DeferredReport[];
  errors: ErrorReport[];
  /** Journal entries found mined (or dropped) that earlier ticks or runs had left pending. */
  resolved: JournalEntry[];
  /** The keeper's own positions at the end of the tick's decision (before its transactions). */
  holdings: HoldingReport[];
  durationMs: number;
}

/** Totals over a run (logged as keeper.summary at shutdown). */
export interface KeeperSummary {
  ticks: number;
  lastBlock: number;
  liquidations: number;
  adlCalls: number;
  sessionTransactions: number;
  socializations: number;
  unsettledReports: number;
  deferred: number;
  errors: number;
  gasUsed: bigint;
}

export type JournalStatus = "sent" | "confirmed" | "reverted" | "dropped";

/** One transaction the keeper sent, persisted before it waits for the receipt. */
export interface JournalEntry {
  /** `${kind}:${marketId}:${account}`: at most one pending entry per key. */
  key: string;
  kind: JournalKind;
  marketId: string;
  account: string;
  txHash: string;
  nonce: number;
  status: JournalStatus;
  /** Block the transaction was mined in (when known). */
  block?: number;
  sentAt: string;
}

/** What the keeper persists between ticks and runs. */
export interface Checkpoint {
  version: 1;
  chainId: string;
  clearinghouse: string;
  /** Last block whose events are in `book`. */
  lastBlock: number;
  book: BookSnapshot;
  journal: JournalEntry[];
}
