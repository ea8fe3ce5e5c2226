/**
 * The keeper's decisions as pure functions of its state: which positions to liquidate (and how
 * much), which bankrupt positions the fund covers, and for the rest the next layer
 * (keeper/src/final-layer.ts): ADL with a list and proof, an ADL session, or the final layer
 * (socialized loss) when no eligible counterparty exists or the deadline has passed, reporting what
 * must wait; and which listed positions recovered. Every position is valued at the F of its own side
 * (loss index folded in). No I/O: the executor runs what this returns, simulating each transaction
 * first.
 */
import { getAddress } from "ethers";
import type { DeleveragePlan, PositionBook } from "../../lib/adl";
import { HEIGHT } from "../../lib/rank-tree";
import { WAD } from "../../lib/math";
import { equityOf, pnlPerUnit } from "../../lib/position";
import { sideFundingOf, type AdlBounds, type MarketReading } from "./interfaces";
import { decideBankrupt } from "./final-layer";
import { isLiquidatable, maxTake } from "./liquidation-math";
import { sessionActions, sideKey, type SessionView } from "./sessions";
import type {
  Action,
  FinalLayerWaitAction,
  HoldingReport,
  LiquidateAction,
  RefreshAction,
  ReportUnsettledAction,
} from "./types";

export { adlAction, openedMembers } from "./final-layer";

/** Everything a decision reads. */
export interface DecisionState {
  book: PositionBook;
  markets: MarketReading[];
  /** What the insurance fund can pay now (18-decimal quote). */
  fundAvailable: bigint;
  /**
   * The keeper's own account: never liquidated or socialized by itself (the contracts reject
   * LiquidationSelf and AdlSocialSelf); its own bankrupt position is settled by ADL only.
   */
  keeper: string;
  /** The keeper's free collateral (18 decimals): a socialized-loss takeover posts the initial margin from it. */
  keeperFree: bigint;
  /** Leverage the keeper margins a position it takes over at (a socialization tops the initial margin up to it). */
  liquidationLeverage?: bigint;
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

/** The keeper's own positions, valued at each market's (P, F of their side). */
export function holdings(book: PositionBook, markets: readonly MarketReading[], keeper: string): HoldingReport[] {
  const me = getAddress(keeper);
  const out: HoldingReport[] = [];
  for (const m of markets) {
    const p = book.position(m.marketId, me);
    if (p.size === 0n) continue;
    const equity = equityOf(p.margin, p.size, pnlPerUnit(p.isLong, p.entry, m.price, sideFundingOf(m, p.isLong)));
    out.push({
      marketId: m.marketId,
      isLong: p.isLong,
      size: p.size,
      entry: p.entry,
      margin: p.margin,
      equity,
      liquidatable: isLiquidatable(p.size, equity, m.price, m.risk.mmr),
    });
  }
  return out;
}

/**
 * The actions of one tick, in the order to run them: liquidations of positions that are not
 * bankrupt (most under water first), liquidations with cover while the fund covers whole deficits
 * (largest deficit first), the next step of each open ADL session, then for each other bankrupt
 * position (largest deficit first) its deleverage call, session opening or socialized loss, then
 * unsettled reports, the reasons of those that wait, and clears.
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
    const { marketId, price, risk } = market;
    const lowerId = marketId.toLowerCase();
    for (const p of state.book.positions(marketId)) {
      // Book accounts are checksummed already: build the key without busyKey's checksum (a keccak).
      if (state.busy.has(`${lowerId}:${p.account}`)) continue;
      const funding = p.isLong ? market.fundingLong : market.fundingShort;
      const equity = equityOf(p.margin, p.size, pnlPerUnit(p.isLong, p.entry, price, funding));
      if (!isLiquidatable(p.size, equity, price, risk.mmr)) continue;
      if (equity < 0n) {
        // A session settles it: its steps come from `steps`.
        if (inSession.has(`${lowerId}:${p.account}`)) continue;
        bankrupt.push({ market, account: p.account, equity, isLong: p.isLong });
        continue;
      }
      // The keeper cannot liquidate itself (LiquidationSelf).
      if (p.account === keeper) continue;
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
  const waits: FinalLayerWaitAction[] = [];
  let fund = state.fundAvailable;
  const refreshed = new Set<string>();
  let planned = 0;
  for (const b of bankrupt) {
    const { marketId } = b.market;
    const deficit = -b.equity;
    const own = b.account === keeper;
    if (fund >= deficit) {
      if (own) {
        // Only another account may liquidate the keeper's own position (LiquidationSelf).
        waits.push({
          kind: "final-layer-wait",
          marketId,
          bankrupt: b.account,
          reason: "own-position",
          deficit,
          due: 0n,
        });
        continue;
      }
      // The fund covers the whole deficit: a liquidation of everything (maxTake is q when equity <= 0).
      const size = state.book.position(marketId, b.account).size;
      covers.push({ kind: "liquidate", marketId, account: b.account, size, cover: true, equity: b.equity, deficit });
      fund -= deficit;
      continue;
    }
    if (planned >= state.maxAdlPerTick) continue;
    planned++;
    const d = decideBankrupt({
      book: state.book,
      market: b.market,
      bankrupt: b.account,
      deficit,
      fundAvailable: fund,
      bounds: state.bounds,
      maxEntries: state.maxEntries,
      keeper,
      keeperFree: state.keeperFree,
      liquidationLeverage: state.liquidationLeverage,
      now: state.now ?? 0n,
      sessionOnCounterparties: sessionSides.has(sideKey(marketId, !b.isLong)),
      sessionOnOwnSide: sessionSides.has(sideKey(marketId, b.isLong)),
    });
    if (d.settle && d.settle.kind !== "socialize" && state.refreshLooseNodes) {
      for (const r of looseNodeRefreshes(marketId, !b.isLong, d.settle.plan)) {
        // Two bankrupt positions on one side may open the same loose leaf: refresh it once.
        const key = `${r.marketId}:${r.isLong}:${r.level}:${r.position}`;
        if (refreshed.has(key)) continue;
        refreshed.add(key);
        adl.push(r);
      }
    }
    if (d.settle) adl.push(d.settle);
    if (d.report) reports.push(d.report);
    if (d.wait) waits.push(d.wait);
  }
  return [...liquidations.map((l) => l.action), ...covers, ...steps, ...adl, ...reports, ...waits, ...clears];
}
