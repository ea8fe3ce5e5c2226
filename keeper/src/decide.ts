/**
 * The keeper's decisions as pure functions of its state: which positions to liquidate (and how
 * much), which bankrupt positions the fund covers, which need ADL (with the list and proof), which
 * no eligible counterparty can settle, and which listed ones recovered. No I/O: the executor runs
 * what this returns, simulating each transaction first.
 */
import { getAddress } from "ethers";
import { adlDelta, planDeleverage, type DeleveragePlan, type PositionBook } from "../../lib/adl";
import { HEIGHT } from "../../lib/rank-tree";
import { WAD } from "../../lib/math";
import { equityOf, pnlPerUnit } from "../../lib/position";
import type { AdlBounds, MarketReading } from "./interfaces";
import { isLiquidatable, maxTake } from "./liquidation-math";
import { sessionActions, sideKey, type SessionView } from "./sessions";
import type {
  Action,
  DeleverageAction,
  LiquidateAction,
  ProofTooLargeAction,
  RefreshAction,
  ReportUnsettledAction,
} from "./types";

/** Everything a decision reads. */
export interface DecisionState {
  book: PositionBook;
  markets: MarketReading[];
  /** What the insurance fund can pay now (18-decimal quote). */
  fundAvailable: bigint;
  /** The keeper's own account: never liquidated by itself (the contract rejects LiquidationSelf). */
  keeper: string;
  bounds: AdlBounds;
  /** `busyKey(marketId, account)` of positions with a transaction still pending: left alone. */
  busy: ReadonlySet<string>;
  /** Longest counterparty list to build (further calls settle the rest). */
  maxEntries: number;
  /** Also refresh leaves a proof had to open although no member is left in them. */
  refreshLooseNodes: boolean;
  /**
   * Most bankrupt positions the fund cannot cover to plan per tick, largest deficit first. Calls go
   * out one at a time and each one after the first is re-planned on fresh state anyway, so after a
   * crash with thousands of bankrupt positions planning them all would only delay the first call.
   */
  maxAdlPerTick: number;
  /**
   * The ADL session on each side of each market (id 0n: none). An open one gets its next step; no
   * single-transaction ADL is planned against its side meanwhile (the contract would reject it).
   */
  sessions?: readonly SessionView[];
  /** Timestamp of the block the next transaction lands in (session deadlines and holds). */
  now?: bigint;
}

/** The key of one position in `busy` and in the journal. */
export const busyKey = (marketId: string, account: string): string =>
  `${marketId.toLowerCase()}:${getAddress(account)}`;

/** Members listed in a proof's opened leaves. */
export const openedMembers = (plan: DeleveragePlan): number =>
  plan.proof.reduce((n, node) => n + (node.open ? node.members.length : 0), 0);

/** What one call on a bankrupt position should be: a deleverage, or too large for one transaction. */
export function adlAction(
  book: PositionBook,
  market: MarketReading,
  bankrupt: string,
  fundAvailable: bigint,
  bounds: AdlBounds,
  maxEntries: number,
): DeleverageAction | ProofTooLargeAction | undefined {
  const { marketId, price, funding } = market;
  const delta = adlDelta(book, marketId, bankrupt, price, funding, fundAvailable);
  if (delta.delta === 0n) return undefined;
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

/**
 * Refreshes for every leaf `plan` opens with no member left (its aggregates are stale: removals
 * never shrink them): the leaf from its empty member list, then each ancestor from its children.
 */
export function looseNodeRefreshes(marketId: string, isLong: boolean, plan: DeleveragePlan): RefreshAction[] {
  const out: RefreshAction[] = [];
  for (const node of plan.proof) {
    if (!node.open || node.members.length !== 0) continue;
    for (let level = 0; level <= HEIGHT; level++) {
      out.push({ kind: "refresh", marketId, isLong, level, position: node.position >> level, members: [] });
    }
  }
  return out;
}

/**
 * The actions of one tick, in the order to run them: liquidations of positions that are not
 * bankrupt (most under water first), liquidations with cover while the fund covers whole deficits
 * (largest deficit first), the next step of each open ADL session, deleverage calls (or
 * proof-too-large, which opens a session), unsettled reports, then clears.
 */
export function decide(state: DecisionState): Action[] {
  const keeper = getAddress(state.keeper);
  const markets = new Set(state.markets.filter((m) => !m.paused).map((m) => m.marketId.toLowerCase()));
  const openSessions = (state.sessions ?? []).filter(
    (v) => v.session.id !== 0n && markets.has(v.marketId.toLowerCase()),
  );
  const sessionSides = new Set(openSessions.map((v) => sideKey(v.marketId, v.side)));
  const inSession = new Set(openSessions.map((v) => busyKey(v.marketId, v.session.bankrupt)));
  const steps = sessionActions(openSessions, state.now ?? 0n, keeper, (m, a) => state.busy.has(busyKey(m, a)));
  const liquidations: { action: LiquidateAction; ratio: bigint }[] = [];
  const bankrupt: { market: MarketReading; account: string; equity: bigint; isLong: boolean }[] = [];
  const clears: Action[] = [];
  for (const market of state.markets) {
    if (market.paused) continue;
    const { marketId, price, funding, risk } = market;
    const lowerId = marketId.toLowerCase();
    for (const p of state.book.positions(marketId)) {
      // Book accounts are checksummed already: build the key without busyKey's checksum (a keccak).
      if (p.account === keeper || state.busy.has(`${lowerId}:${p.account}`)) continue;
      const equity = equityOf(p.margin, p.size, pnlPerUnit(p.isLong, p.entry, price, funding));
      if (!isLiquidatable(p.size, equity, price, risk.mmr)) continue;
      if (equity < 0n) {
        // A session settles it: its steps come from `steps`.
        if (inSession.has(`${lowerId}:${p.account}`)) continue;
        bankrupt.push({ market, account: p.account, equity, isLong: p.isLong });
        continue;
      }
      const size = maxTake(p.size, equity, price, risk);
      // Equity per unit of notional (18 decimals): the most under water goes first.
      const notional = (p.size * price) / WAD;
      const ratio = notional > 0n ? (equity * WAD) / notional : equity;
      liquidations.push({
        action: { kind: "liquidate", marketId, account: p.account, size, cover: false, equity, deficit: 0n },
        ratio,
      });
    }
    for (const [account, deficit] of market.unsettled) {
      if (deficit === 0n && !state.busy.has(busyKey(marketId, account))) {
        clears.push({ kind: "clear-unsettled", marketId, account });
      }
    }
  }
  liquidations.sort((a, b) => (a.ratio < b.ratio ? -1 : a.ratio > b.ratio ? 1 : 0));
  bankrupt.sort((a, b) => (a.equity < b.equity ? -1 : a.equity > b.equity ? 1 : 0));

  const covers: LiquidateAction[] = [];
  const adl: Action[] = [];
  const reports: ReportUnsettledAction[] = [];
  let fund = state.fundAvailable;
  const refreshed = new Set<string>();
  let planned = 0;
  for (const b of bankrupt) {
    const { marketId } = b.market;
    const deficit = -b.equity;
    if (fund >= deficit) {
      // The fund covers the whole deficit: a liquidation of everything (maxTake is q when equity <= 0).
      const size = state.book.position(marketId, b.account).size;
      covers.push({ kind: "liquidate", marketId, account: b.account, size, cover: true, equity: b.equity, deficit });
      fund -= deficit;
      continue;
    }
    // A session holds the counterparties' side: ADL for this position waits until it ends.
    if (sessionSides.has(sideKey(marketId, !b.isLong))) continue;
    if (planned >= state.maxAdlPerTick) continue;
    planned++;
    const action = adlAction(state.book, b.market, b.account, fund, state.bounds, state.maxEntries);
    if (action) {
      if (state.refreshLooseNodes) {
        for (const r of looseNodeRefreshes(marketId, !b.isLong, action.plan)) {
          // Two bankrupt positions on one side may open the same loose leaf: refresh it once.
          const key = `${r.marketId}:${r.isLong}:${r.level}:${r.position}`;
          if (refreshed.has(key)) continue;
          refreshed.add(key);
          adl.push(r);
        }
      }
      adl.push(action);
    } else if (!b.market.unsettled.has(b.account)) {
      reports.push({ kind: "report-unsettled", marketId, account: b.account, deficit });
    }
  }
  return [...liquidations.map((l) => l.action), ...covers, ...steps, ...adl, ...reports, ...clears];
}
