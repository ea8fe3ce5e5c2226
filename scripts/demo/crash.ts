/**
 * The crash: step the index down, let the driver (the keeper) act, then read what happened from
 * the chain's events (liquidations, fund cover, ADL calls, unsettled positions) and check the
 * invariants of docs/mechanism.md section 5 at the end of every step and around every ADL call.
 */
import { getAddress, type Provider } from "ethers";
import {
  checkAdlCall,
  checkLedger,
  discoverAccounts,
  fundFlows,
  readLedger,
  type AdlCallCheck,
  type InvariantResult,
  type Ledger,
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
  unsettledReported: number;
  /** Fills by late entrants right after the price move, before the keeper acted. */
  lateEntrantFills: number;
  /** Keeper passes after the price step, and anything it reported as failed or deferred. */
  keeperPasses: number;
  keeperProblems: string[];
  /** Fund value (tokens plus unswept fees, 18 decimals) at the end of the step. */
  fundAfter: bigint;
  /** Treasury (rounding reserves included) at the end of the step: it pays keeper rewards. */
  treasuryAfter: bigint;
  dust: bigint;
  invariants: InvariantResult[];
  pass: boolean;
}

/** Everything the crash produced. */
export interface CrashOutcome {
  steps: StepRecord[];
  liquidations: LiquidationRecord[];
  adlCalls: AdlRecord[];
  unsettled: UnsettledRecord[];
  /** Ledger invariants at the baseline (before the first step) and after every step. */
  ledgerChecks: { label: string; results: InvariantResult[] }[];
  finalLedger: Ledger;
}

/** Treasury balance plus every market's rounding reserve, 18 decimals. */
export const treasuryValue = (l: Ledger): bigint =>
  [...l.markets.values()].reduce((s, m) => s + m.roundingReserve, l.treasuryBalance);

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
    unsettled: [],
    ledgerChecks: [],
    finalLedger: undefined as unknown as Ledger,
  };

  let block = await provider.getBlockNumber();
  let ledger = await readLedger(sys, ids, await discoverAccounts(sys, block), block);
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
    const accounts = await discoverAccounts(sys, block);
    const adl: AdlRecord[] = [];
    for (const e of await del.queryFilter(del.filters.DeleverageExecuted(), from, block)) {
      const receipt = (await provider.getTransactionReceipt(e.transactionHash))!;
      const check = await checkAdlCall(sys, receipt, accounts);
      adl.push({ ...check, step: step.index, market: symbols.get(check.marketId)! });
    }
    const unsettled = (await del.queryFilter(del.filters.UnsettledAdded(), from, block)).map((e) => ({
      step: step.index,
      market: symbols.get(e.args.marketId)!,
      account: getAddress(e.args.account),
      deficit: e.args.deficit,
    }));

    const next = await readLedger(sys, ids, accounts, block);
    const flow = await fundFlows(sys, ledger.block + 1, block);
    const checked = checkLedger(next, { previous: ledger, fundFlow: flow });
    const adlResults: InvariantResult[] = adl.flatMap((a) => a.results);
    const invariants = [...checked.results, ...adlResults];
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
      unsettledReported: unsettled.length,
      lateEntrantFills: step.lateFills.length,
      keeperPasses: tick.passes,
      keeperProblems: tick.problems,
      fundAfter: fundValue(next),
      treasuryAfter: treasuryValue(next),
      dust: checked.dust,
      invariants,
      pass: invariants.every((r) => r.pass),
    };
    outcome.steps.push(record);
    outcome.liquidations.push(...liquidations);
    outcome.adlCalls.push(...adl);
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
    ` | ADL calls ${s.adlCalls} (${s.counterparties} counterparties) | unsettled ${s.unsettledReported}` +
    ` | fund ${formatQuote(s.fundAfter)} | keeper passes ${s.keeperPasses}` +
    (s.keeperProblems.length ? ` (${s.keeperProblems.length} problems)` : "") +
    ` | invariants ${s.pass ? "pass" : "FAIL"}`
  );
}
