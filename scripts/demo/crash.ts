/**
 * The crash: step the index down, let the driver (the keeper) act, then read what happened from
 * the chain's events (liquidations, fund cover, ADL calls, socialized losses, unsettled positions)
 * and check the invariants of docs/mechanism.md section 5 at the end of every step, around every ADL
 * call and around every socialized loss (section 7.6).
 */
import { getAddress, type Provider } from "ethers";
import {
  checkAdlCall,
  checkLedger,
  checkSocializedLoss,
  discoverParticipants,
  fundFlows,
  holdersOf,
  readLedger,
  type AdlCallCheck,
  type InvariantResult,
  type Ledger,
  type SocializationCheck,
} from "../../lib/invariants";
import type { LocalSystem } from "../../lib/local";
import { formatQuote } from "../format";
import type { CrashDriver } from "./driver";
import type { FillDesk } from "./traders";
import type { Scenario } from "./scenario";

export interface LiquidationRecord {
  step: number;
  market: string;
  account: string;
  liquidator: string;
  size: bigint;
  price: bigint;
  feeToLiquidator: bigint;
  feeToFund: bigint;
  /** The taken part was bankrupt: the fund (and the rounding reserve) paid its deficit. */
  bankrupt: boolean;
  fundPaid: bigint;
  reservePaid: bigint;
  gasUsed: bigint;
  txHash: string;
  block: number;
}

export interface AdlRecord extends AdlCallCheck {
  step: number;
  market: string;
}

export interface SocializedRecord extends SocializationCheck {
  step: number;
  market: string;
}

/**
 * One settlement of bad debt, in chain order, by the layer that settled it: the fund (a bankrupt
 * part liquidated with cover), ADL (a deleverage call) or the final layer (a socialized loss).
 */
export interface SettlementRecord {
  step: number;
  block: number;
  market: string;
  layer: "fund" | "ADL" | "socialized";
  bankrupt: string;
  /** The deficit settled: what the fund and the rounding reserve paid, plus what counterparties or the charged side took. */
  deficit: bigint;
  fundPaid: bigint;
  /** ADL: what the counterparties absorbed. */
  absorbed: bigint;
  /** Socialized: D_rem, Q_side, the charged side and its new loss index L. */
  lossSocialized: bigint;
  openInterest: bigint;
  chargedLong: boolean | null;
  lossIndex: bigint;
  /** Who took the position over: the liquidator, or the caller of socializeLoss (null for ADL). */
  taker: string | null;
  txHash: string;
}

export interface UnsettledRecord {
  step: number;
  market: string;
  account: string;
  deficit: bigint;
}

export interface StepRecord {
  index: number;
  prices: { market: string; before: bigint; after: bigint; dropPpm: bigint }[];
  liquidations: number;
  bankruptLiquidations: number;
  adlCalls: number;
  counterparties: number;
  socializations: number;
  unsettledReported: number;
  /** Fills by late entrants right after the price move, before the keeper acted. */
  lateEntrantFills: number;
  /** Keeper passes after the price step, and anything it reported as failed or deferred. */
  keeperPasses: number;
  keeperProblems: string[];
  /** Fund value (tokens plus unswept fees, 18 decimals) at the end of the step. */
  fundAfter: bigint;
  /** Treasury (rounding reserves included) at the end of the step. */
  treasuryAfter: bigint;
  /** Every market's keeper reserve at the end of the step: it pays keeper rewards. */
  keeperReserveAfter: bigint;
  dust: bigint;
  invariants: InvariantResult[];
  pass: boolean;
}

/** Everything the crash produced. */
export interface CrashOutcome {
  steps: StepRecord[];
  liquidations: LiquidationRecord[];
  adlCalls: AdlRecord[];
  socialized: SocializedRecord[];
  /** Every settlement of bad debt, in chain order. */
  settlements: SettlementRecord[];
  unsettled: UnsettledRecord[];
  /** Ledger invariants at the baseline (before the first step) and after every step. */
  ledgerChecks: { label: string; results: InvariantResult[] }[];
  finalLedger: Ledger;
}

/** Treasury balance plus every market's rounding reserve, 18 decimals. */
export const treasuryValue = (l: Ledger): bigint =>
  [...l.markets.values()].reduce((s, m) => s + m.roundingReserve, l.treasuryBalance);

/** Every market's keeper reserve, 18 decimals. */
export const keeperReserveValue = (l: Ledger): bigint =>
  [...l.markets.values()].reduce((s, m) => s + m.keeperReserve, 0n);

/** Fund value as the clearinghouse counts it: tokens plus unswept fees, 18 decimals. */
export const fundValue = (l: Ledger): bigint => l.fundTokens * l.scale + l.pendingFundFees;

/** Liquidations mined in [from, to], with their fund cover and gas. */
async function liquidationsIn(
  sys: LocalSystem,
  provider: Provider,
  symbols: Map<string, string>,
  step: number,
  from: number,
  to: number,
): Promise<LiquidationRecord[]> {
  const ch = sys.clearinghouse;
  const covered = new Map<string, { fund: bigint; reserve: bigint }>();
  for (const e of await ch.queryFilter(ch.filters.BadDebtCovered(), from, to)) {
    covered.set(`${e.transactionHash}:${e.args.account}`, { fund: e.args.fundPaid, reserve: e.args.reservePaid });
  }
  const out: LiquidationRecord[] = [];
  for (const e of await ch.queryFilter(ch.filters.PositionLiquidated(), from, to)) {
    const receipt = (await provider.getTransactionReceipt(e.transactionHash))!;
    const cover = covered.get(`${e.transactionHash}:${e.args.account}`);
    out.push({
      step,
      market: symbols.get(e.args.marketId)!,
      account: getAddress(e.args.account),
      liquidator: getAddress(e.args.liquidator),
      size: e.args.size,
      price: e.args.price,
      feeToLiquidator: e.args.feeToLiquidator,
      feeToFund: e.args.feeToFund,
      bankrupt: cover !== undefined,
      fundPaid: cover?.fund ?? 0n,
      reservePaid: cover?.reserve ?? 0n,
      gasUsed: receipt.gasUsed,
      txHash: e.transactionHash,
      block: e.blockNumber,
    });
  }
  return out;
}

/** The step's settlements of bad debt by layer, in chain order (one transaction per block). */
export function settlementsOf(
  step: number,
  liquidations: readonly LiquidationRecord[],
  adl: readonly AdlRecord[],
  socialized: readonly SocializedRecord[],
): SettlementRecord[] {
  const none = { absorbed: 0n, lossSocialized: 0n, openInterest: 0n, chargedLong: null, lossIndex: 0n };
  const out: SettlementRecord[] = [
    ...liquidations
      .filter((l) => l.bankrupt)
      .map((l) => ({
        ...none,
        step,
        block: l.block,
        market: l.market,
        layer: "fund" as const,
        bankrupt: l.account,
        deficit: l.fundPaid + l.reservePaid,
        fundPaid: l.fundPaid,
        taker: l.liquidator,
        txHash: l.txHash,
      })),
    ...adl.map((a) => ({
      ...none,
      step,
      block: a.block,
      market: a.market,
      layer: "ADL" as const,
      bankrupt: a.bankrupt,
      deficit: a.fundContribution + a.deficitAbsorbed,
      fundPaid: a.fundContribution,
      absorbed: a.deficitAbsorbed,
      taker: null,
      txHash: a.txHash,
    })),
    ...socialized.map((x) => ({
      step,
      block: x.block,
      market: x.market,
      layer: "socialized" as const,
      bankrupt: x.bankrupt,
      deficit: x.fundPaid + x.lossSocialized,
      fundPaid: x.fundPaid,
      absorbed: 0n,
      lossSocialized: x.lossSocialized,
      openInterest: x.openInterest,
      chargedLong: x.chargedLong,
      lossIndex: x.lossIndex,
      taker: x.taker,
      txHash: x.txHash,
    })),
  ];
  return out.sort((u, v) => u.block - v.block);
}

/**
 * Runs every crash step of `scenario`: set prices, `driver.tick()`, observe, check. `log` gets one
 * line per step as it runs.
 */
export async function runCrash(
  sys: LocalSystem,
  provider: Provider,
  scenario: Scenario,
  driver: CrashDriver,
  desk: FillDesk,
  log: (line: string) => void,
): Promise<CrashOutcome> {
  const ids = scenario.markets.map((m) => sys.markets.get(m.symbol)!.id);
  const symbols = new Map(scenario.markets.map((m, i) => [ids[i], m.symbol]));
  const del = sys.deleverager;
  const outcome: CrashOutcome = {
    steps: [],
    liquidations: [],
    adlCalls: [],
    socialized: [],
    settlements: [],
    unsettled: [],
    ledgerChecks: [],
    finalLedger: undefined as unknown as Ledger,
  };

  let block = await provider.getBlockNumber();
  const start = await discoverParticipants(sys, block);
  let ledger = await readLedger(sys, ids, start.accounts, block, start.holders);
  const baseline = checkLedger(ledger);
  outcome.ledgerChecks.push({ label: "before the crash", results: baseline.results });
  let prices = scenario.rounds[scenario.rounds.length - 1].prices;

  for (const step of scenario.crash) {
    const from = block + 1;
    for (const [mi, m] of scenario.markets.entries()) await sys.setPrice(m.symbol, step.prices[mi]);
    // Late entrants trade at the new price before the keeper gets to act.
    for (const f of step.lateFills) await desk.fill(f, step.prices[f.market]);
    const tickStart = performance.now();
    const tick = await driver.tick();
    const tickMs = performance.now() - tickStart;
    block = await provider.getBlockNumber();

    const liquidations = await liquidationsIn(sys, provider, symbols, step.index, from, block);
    // Every account (free collateral), and per market the accounts that ever held a position there.
    const { accounts, holders } = await discoverParticipants(sys, block);
    const adl: AdlRecord[] = [];
    for (const e of await del.queryFilter(del.filters.DeleverageExecuted(), from, block)) {
      const receipt = (await provider.getTransactionReceipt(e.transactionHash))!;
      const check = await checkAdlCall(sys, receipt, holdersOf(e.args.marketId, accounts, holders));
      adl.push({ ...check, step: step.index, market: symbols.get(check.marketId)! });
    }
    const socialized: SocializedRecord[] = [];
    const ch = sys.clearinghouse;
    for (const e of await ch.queryFilter(ch.filters.LossSocialized(), from, block)) {
      const receipt = (await provider.getTransactionReceipt(e.transactionHash))!;
      const check = await checkSocializedLoss(sys, receipt, holdersOf(e.args.marketId, accounts, holders));
      socialized.push({ ...check, step: step.index, market: symbols.get(check.marketId)! });
    }
    const unsettled = (await del.queryFilter(del.filters.UnsettledAdded(), from, block)).map((e) => ({
      step: step.index,
      market: symbols.get(e.args.marketId)!,
      account: getAddress(e.args.account),
      deficit: e.args.deficit,
    }));

    const next = await readLedger(sys, ids, accounts, block, holders);
    const flow = await fundFlows(sys, ledger.block + 1, block);
    const checked = checkLedger(next, { previous: ledger, fundFlow: flow });
    const adlResults: InvariantResult[] = adl.flatMap((a) => a.results);
    const socialResults: InvariantResult[] = socialized.flatMap((x) => x.results);
    const invariants = [...checked.results, ...adlResults, ...socialResults];
    const record: StepRecord = {
      index: step.index,
      prices: scenario.markets.map((m, mi) => ({
        market: m.symbol,
        before: prices[mi],
        after: step.prices[mi],
        dropPpm: step.dropPpm[mi],
      })),
      liquidations: liquidations.length,
      bankruptLiquidations: liquidations.filter((l) => l.bankrupt).length,
      adlCalls: adl.length,
      counterparties: adl.reduce((s, a) => s + a.legs.length, 0),
      socializations: socialized.length,
      unsettledReported: unsettled.length,
      lateEntrantFills: step.lateFills.length,
      keeperPasses: tick.passes,
      keeperProblems: tick.problems,
      fundAfter: fundValue(next),
      treasuryAfter: treasuryValue(next),
      keeperReserveAfter: keeperReserveValue(next),
      dust: checked.dust,
      invariants,
      pass: invariants.every((r) => r.pass),
    };
    outcome.steps.push(record);
    outcome.liquidations.push(...liquidations);
    outcome.adlCalls.push(...adl);
    outcome.socialized.push(...socialized);
    outcome.settlements.push(...settlementsOf(step.index, liquidations, adl, socialized));
    outcome.unsettled.push(...unsettled);
    outcome.ledgerChecks.push({ label: `after step ${step.index}`, results: checked.results });
    log(stepLine(record));
    // Wall-clock profile on request only (never part of the report).
    if (process.env.DEMO_PROFILE === "1") {
      const checkMs = performance.now() - tickStart - tickMs;
      console.error(`  profile: keeper ${tickMs.toFixed(0)} ms, observation and checks ${checkMs.toFixed(0)} ms`);
    }
    ledger = next;
    prices = step.prices;
  }
  outcome.finalLedger = ledger;
  return outcome;
}

/** ppm as a percentage with one decimal (display only). */
export const percent = (ppm: bigint): string => `${ppm / 10_000n}.${(ppm % 10_000n) / 1_000n}%`;

/** One line of the step log. */
export function stepLine(s: StepRecord): string {
  const moves = s.prices.map((p) => `${p.market} ${formatQuote(p.after)} (-${percent(p.dropPpm)})`).join(", ");
  return (
    `step ${s.index}: ${moves}${s.lateEntrantFills ? ` | late entrants ${s.lateEntrantFills} fills` : ""} | liquidations ${s.liquidations} (${s.bankruptLiquidations} bankrupt, fund-covered)` +
    ` | ADL calls ${s.adlCalls} (${s.counterparties} counterparties) | socialized ${s.socializations} | unsettled ${s.unsettledReported}` +
    ` | fund ${formatQuote(s.fundAfter)} | keeper passes ${s.keeperPasses}` +
    (s.keeperProblems.length ? ` (${s.keeperProblems.length} problems)` : "") +
    ` | invariants ${s.pass ? "pass" : "FAIL"}`
  );
}
