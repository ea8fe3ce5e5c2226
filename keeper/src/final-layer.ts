/**
 * What the keeper does with one bankrupt position the fund cannot cover, as a pure function of its
 * state (docs/mechanism.md sections 3.5 and 7.6): a deleverage call when a list exists and fits one
 * transaction, an ADL session when it does not, and the final layer, `socializeLoss`, when no eligible
 * counterparty exists (with the empty-list proof) or when B has waited on the unsettled list for
 * `socialDelay` (the deadline). Anything it cannot settle now is reported unsettled if not listed
 * yet (that starts the deadline clock), with the reason it waits. Also the free collateral a
 * socialized-loss takeover costs the keeper, to the wei, and the margin it adds afterwards.
 */
import {
  adlDelta,
  buildNoEligibleProof,
  planDeleverage,
  type AdlDelta,
  type DeleveragePlan,
  type IndexedPosition,
  type PositionBook,
  type ProofNode,
} from "../../lib/adl";
import { WAD, maxBig, minBig, mulDivUp } from "../../lib/math";
import { applyFill } from "../../lib/position";
import { sideFundingOf, type AdlBounds, type MarketReading } from "./interfaces";
import type {
  DeleverageAction,
  FinalLayerWaitAction,
  ProofTooLargeAction,
  ReportUnsettledAction,
  SocializeAction,
} from "./types";

/** The leverage a takeover's margin is chosen at: type(uint256).max, so it posts the margin test's shortfall. */
const TAKEOVER_LEVERAGE = (1n << 256n) - 1n;

/** Members listed in a proof's opened leaves. */
export const openedMembersOf = (proof: readonly ProofNode[]): number =>
  proof.reduce((n, node) => n + (node.open ? node.members.length : 0), 0);

/** Members listed in a plan's opened leaves. */
export const openedMembers = (plan: DeleveragePlan): number => openedMembersOf(plan.proof);

/**
 * What one call on a bankrupt position should be: a deleverage, or too large for one transaction
 * (undefined when it is not bankrupt, or no eligible counterparty exists). B's deficit and delta use
 * the F of B's side, the queue and proof the F of the counterparties' side.
 */
export function adlAction(
  book: PositionBook,
  market: MarketReading,
  bankrupt: string,
  fundAvailable: bigint,
  bounds: AdlBounds,
  maxEntries: number,
): DeleverageAction | ProofTooLargeAction | undefined {
  const { marketId, price } = market;
  const b = book.position(marketId, bankrupt);
  if (b.size === 0n) return undefined;
  const delta = adlDelta(book, marketId, bankrupt, price, sideFundingOf(market, b.isLong), fundAvailable);
  if (delta.delta === 0n) return undefined;
  const funding = sideFundingOf(market, !b.isLong);
  const entries = Math.max(1, Math.min(maxEntries, bounds.maxListLength));
  const plan = planDeleverage(book, marketId, bankrupt, price, funding, delta.delta, entries);
  if (!plan) return undefined;
  const opened = openedMembers(plan);
  if (plan.proof.length > bounds.maxProofNodes || opened > bounds.maxOpenedMembers) {
    return {
      kind: "proof-too-large",
      marketId,
      bankrupt,
      plan,
      price,
      funding,
      delta,
      listLength: plan.counterparties.length,
      proofNodes: plan.proof.length,
      openedMembers: opened,
    };
  }
  return { kind: "deleverage", marketId, bankrupt, plan, price, funding, delta };
}

/** What taking over a bankrupt position whole costs the taker, as Clearinghouse's TakeoverWhole leg settles it. */
export interface TakeoverCost {
  /** Free collateral the call debits at most: margin posted less what closing an opposite holding pays out. */
  needed: bigint;
  /** What closing (part of) an opposite holding pays out: released margin plus realized PnL, signed. */
  payout: bigint;
  /** Margin posted for the size added on B's side. */
  posted: bigint;
  /** The taker's position in the market afterwards (size 0: flat). */
  after: { isLong: boolean; size: bigint; margin: bigint };
  /** Size added on B's side (0 when the takeover only reduced an opposite holding). */
  increased: bigint;
}

/**
 * The taker's leg of a socialized loss (PositionBook.modify, FillKind.TakeoverWhole, at the index
 * price and a leverage of type(uint256).max): an opposite holding is reduced first at the F of its
 * side, which the charge has just raised by `chargeStep` (its payout, released margin plus realized
 * PnL, is credited or debited at once), then what is left of B's size opens or grows on B's side at
 * the F of that side, posting the shortfall of the initial-margin test. `needed` is the least free
 * collateral with which neither debit reverts.
 */
export function takeoverCost(
  taker: Pick<IndexedPosition, "isLong" | "size" | "entry" | "margin">,
  bIsLong: boolean,
  size: bigint,
  price: bigint,
  market: Pick<MarketReading, "fundingLong" | "fundingShort" | "risk">,
  chargeStep: bigint,
): TakeoverCost {
  // The opposite holding is on the charged side: its F already carries this call's loss-index step.
  const funding = {
    long: market.fundingLong + (bIsLong ? 0n : chargeStep),
    short: market.fundingShort - (bIsLong ? chargeStep : 0n),
  };
  const leg = applyFill(
    { ...taker, leverage: 0n },
    bIsLong ? size : -size,
    price,
    TAKEOVER_LEVERAGE,
    price,
    funding,
    market.risk.imr,
  );
  // A negative payout is debited before the margin is posted: free >= -payout, then free + payout >= posted.
  const needed = maxBig(0n, leg.posted - leg.payout);
  const { isLong, size: after, margin } = leg.position;
  return {
    needed,
    payout: leg.payout,
    posted: leg.posted,
    after: { isLong, size: after, margin },
    increased: leg.increased,
  };
}

/**
 * Margin to add after a takeover so the taken position is margined at `leverage` like a liquidation
 * leg (ceil(q * P / leverage) in all), within what free collateral is left; 0 without a leverage, when
 * nothing was added on B's side, or when the margin already reaches it.
 */
export function topUpAmount(cost: TakeoverCost, price: bigint, leverage: bigint | undefined, free: bigint): bigint {
  if (leverage === undefined || leverage <= 0n || cost.increased === 0n || cost.after.size === 0n) return 0n;
  const target = mulDivUp(cost.after.size, price, leverage);
  const want = target > cost.after.margin ? target - cost.after.margin : 0n;
  const left = free > cost.needed ? free - cost.needed : 0n;
  return minBig(want, left);
}

/**
 * The loss-index step a socialization of B raises the opposite side by: ceil(D_rem * W / Q_side), with
 * D_rem = D - min(A, D) and Q_side the opposite side's open interest in the book.
 */
export function chargeStep(c: Pick<BankruptCase, "book" | "market" | "bankrupt">, delta: AdlDelta): bigint {
  const side = !c.book.position(c.market.marketId, c.bankrupt).isLong;
  let openInterest = 0n;
  for (const p of c.book.positions(c.market.marketId)) if (p.isLong === side) openInterest += p.size;
  const remaining = delta.deficit - delta.covered;
  return remaining === 0n || openInterest === 0n ? 0n : mulDivUp(remaining, WAD, openInterest);
}

/** One bankrupt position the fund cannot cover, with everything its decision reads. */
export interface BankruptCase {
  book: PositionBook;
  market: MarketReading;
  bankrupt: string;
  /** B's deficit -equity at (P, F of B's side). */
  deficit: bigint;
  /** What the fund can pay now (less what earlier decisions of the tick use). */
  fundAvailable: bigint;
  bounds: AdlBounds;
  maxEntries: number;
  /** The keeper's account and its free collateral (18 decimals). */
  keeper: string;
  keeperFree: bigint;
  /** Leverage of the margin the keeper keeps on a position it takes over (undefined: the contract's minimum). */
  liquidationLeverage?: bigint;
  /** Timestamp of the block the next transaction lands in. */
  now: bigint;
  /** An ADL session is open on the counterparties' side (ADL and the final layer wait for it). */
  sessionOnCounterparties: boolean;
  /** An ADL session is open on B's own side (the final layer waits: a session pins both sides' F). */
  sessionOnOwnSide: boolean;
}

/** What a bankrupt position gets this tick. */
export interface BankruptDecision {
  /** The transaction that settles B (or opens its session) now. */
  settle?: DeleverageAction | ProofTooLargeAction | SocializeAction;
  /** Why nothing settles B now (set exactly when `settle` is not). */
  wait?: FinalLayerWaitAction;
  /** reportUnsettled when B waits and is not listed yet: the deadline clock starts with it. */
  report?: ReportUnsettledAction;
}

/**
 * The layers in order: ADL when an eligible list exists (one call, or a session when the proof is too
 * large, unless the deadline has passed); the final layer when none exists (with the empty-list proof
 * if it fits the contract's bounds, else by the deadline once due), or when the deadline has passed and
 * ADL would need a session. The final layer needs no session in the market and enough free collateral
 * for the takeover. The keeper's own position is settled by ADL only (the contracts refuse its own
 * liquidation and socialization).
 */
export function decideBankrupt(c: BankruptCase): BankruptDecision {
  const { book, market, bankrupt } = c;
  const { marketId, price } = market;
  const b = book.position(marketId, bankrupt);
  const listed = market.unsettled.has(bankrupt);
  const since = market.unsettledSince.get(bankrupt) ?? 0n;
  const due = since === 0n ? 0n : since + market.socialDelay;
  const deadline = since !== 0n && c.now >= due;
  const wait = (
    reason: FinalLayerWaitAction["reason"],
    extra: Pick<FinalLayerWaitAction, "needed" | "free"> = {},
  ): BankruptDecision => ({
    wait: { kind: "final-layer-wait", marketId, bankrupt, reason, deficit: c.deficit, due, ...extra },
    report: listed ? undefined : { kind: "report-unsettled", marketId, account: bankrupt, deficit: c.deficit },
  });

  if (c.sessionOnCounterparties) return wait("session-open");
  const adl = adlAction(book, market, bankrupt, c.fundAvailable, c.bounds, c.maxEntries);
  if (adl?.kind === "deleverage") return { settle: adl };
  const own = bankrupt === c.keeper;
  if (adl && (!deadline || own || c.sessionOnOwnSide)) return { settle: adl };
  if (own) return wait("own-position");
  if (c.sessionOnOwnSide) return wait("session-open");

  // The final layer: no eligible counterparty now, or ADL too slow (the deadline passed).
  const delta =
    adl?.delta ?? adlDelta(book, marketId, bankrupt, price, sideFundingOf(market, b.isLong), c.fundAvailable);
  const counterpartyFunding = sideFundingOf(market, !b.isLong);
  let proof: ProofNode[] = [];
  let byDeadline = true;
  if (!adl) {
    const empty = buildNoEligibleProof(book, marketId, !b.isLong, price, counterpartyFunding, delta.delta);
    if (empty.length <= c.bounds.maxProofNodes && openedMembersOf(empty) <= c.bounds.maxOpenedMembers) {
      proof = empty;
      byDeadline = false;
    } else if (!deadline) {
      return wait("awaiting-deadline");
    }
  }
  const cost = takeoverCost(book.position(marketId, c.keeper), b.isLong, b.size, price, market, chargeStep(c, delta));
  if (cost.needed > c.keeperFree) return wait("free-collateral", { needed: cost.needed, free: c.keeperFree });
  return {
    settle: {
      kind: "socialize",
      marketId,
      bankrupt,
      proof,
      byDeadline,
      isLong: b.isLong,
      size: b.size,
      price,
      bankruptFunding: sideFundingOf(market, b.isLong),
      counterpartyFunding,
      delta,
      takeoverMargin: cost.needed,
      topUp: topUpAmount(cost, price, c.liquidationLeverage, c.keeperFree),
      proofNodes: proof.length,
      openedMembers: openedMembersOf(proof),
    },
  };
}
