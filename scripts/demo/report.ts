/**
 * The demo's report: one object (bigints throughout, no wall-clock values, so the same seed gives
 * the same report) and its readable text rendering. docs/demo.md describes every field.
 */
import type { InvariantResult } from "../../lib/invariants";
import { formatQuote, formatRatio } from "../format";
import {
  fundValue,
  percent,
  type AdlRecord,
  type CrashOutcome,
  type LiquidationRecord,
  type SettlementRecord,
  type SocializedRecord,
  type StepRecord,
  type UnsettledRecord,
} from "./crash";
import type { DemoOptions, Scenario } from "./scenario";
import type { SetupSummary } from "./traders";

export const REPORT_FORMAT = "adl-crash-demo/2";

export interface MarketSummary {
  symbol: string;
  id: string;
  listingPrice: bigint;
  preCrashPrice: bigint;
  finalPrice: bigint;
  /** Open interest (each side) just before the crash and at the end. */
  openInterestBefore: bigint;
  openInterestAfter: bigint;
}

export interface InvariantSummary {
  name: string;
  /** "not exercised": an ADL (or final-layer) invariant in a run without any ADL call (socialized loss). */
  status: "pass" | "fail" | "not exercised";
  pass: boolean;
  checks: number;
  failures: number;
  /** The first failure's detail, or the last check's when all passed. */
  detail: string;
}

export interface DemoSummary {
  liquidations: number;
  bankruptLiquidations: number;
  liquidatedNotional: bigint;
  fundBeforeCrash: bigint;
  fundAfterCrash: bigint;
  fundLowest: bigint;
  fundFeesReceived: bigint;
  fundPaidLiquidations: bigint;
  fundPaidAdl: bigint;
  reservePaid: bigint;
  /** Deficits settled: bankrupt parts liquidated with fund cover, and parts closed by ADL. */
  deficitLiquidations: bigint;
  deficitAdl: bigint;
  absorbedByCounterparties: bigint;
  /** The final layer: socialized losses, what the fund paid of them, D_rem charged to the opposite sides. */
  socializations: number;
  fundPaidSocialized: bigint;
  lossSocialized: bigint;
  deficitSocialized: bigint;
  adlCalls: number;
  adlLegs: number;
  distinctCounterparties: number;
  bankruptsDeleveraged: number;
  adlGasTotal: bigint;
  adlGasMax: bigint;
  liquidationGasMax: bigint;
  unsettledAtEnd: number;
  unsettledDeficitAtEnd: bigint;
}

export interface DemoReport {
  format: string;
  network: string;
  chainId: bigint;
  options: DemoOptions;
  driver: string;
  contracts: Record<string, string>;
  roles: Record<string, string>;
  markets: MarketSummary[];
  traders: { label: string; address: string; depositTokens: bigint }[];
  setup: SetupSummary & { fundStakeTokens: bigint; keeperDepositTokens: bigint };
  steps: StepRecord[];
  liquidations: LiquidationRecord[];
  adlCalls: AdlRecord[];
  socializedLosses: SocializedRecord[];
  /** Every settlement of bad debt in chain order, by layer (fund, ADL, socialized). */
  settlements: SettlementRecord[];
  unsettledReported: UnsettledRecord[];
  unsettledAtEnd: { market: string; account: string; deficit: bigint }[];
  /** Positions the keeper's account holds at the end (taken over by liquidations and socialized losses). */
  keeperPositions: KeeperPosition[];
  summary: DemoSummary;
  invariants: InvariantSummary[];
  pass: boolean;
}

/** A position of the keeper's account at the end of the run. */
export interface KeeperPosition {
  market: string;
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  /** Equity at the final (P, F of its side). */
  equity: bigint;
}

/** Everything buildReport needs besides the crash outcome. */
export interface ReportInputs {
  network: string;
  chainId: bigint;
  scenario: Scenario;
  driver: string;
  contracts: Record<string, string>;
  roles: Record<string, string>;
  traders: { label: string; address: string; depositTokens: bigint }[];
  setup: DemoReport["setup"];
  marketIds: string[];
  openInterestBefore: bigint[];
  fundBeforeCrash: bigint;
  unsettledAtEnd: DemoReport["unsettledAtEnd"];
  keeperPositions: KeeperPosition[];
}

const sum = (xs: bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);
const max = (xs: bigint[]): bigint => xs.reduce((a, b) => (b > a ? b : a), 0n);

/** Groups every check by invariant name: passes only if each of its checks passed. */
export function summarizeInvariants(checks: InvariantResult[]): InvariantSummary[] {
  const byName = new Map<string, InvariantResult[]>();
  for (const c of checks) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  return [...byName.entries()].map(([name, rs]) => {
    const failed = rs.filter((r) => !r.pass);
    return {
      name,
      status: failed.length === 0 ? "pass" : "fail",
      pass: failed.length === 0,
      checks: rs.length,
      failures: failed.length,
      detail: (failed[0] ?? rs[rs.length - 1]).detail,
    };
  });
}

/** The invariants checked after every ADL call (docs/mechanism.md section 5). */
export const ADL_INVARIANTS = [
  "delta recomputed",
  "list == independent re-ranking",
  "no counterparty below zero",
  "bankrupt closed part at zero",
] as const;

/** The invariants checked after every socialized loss (docs/mechanism.md section 7.6). */
export const SOCIALIZED_INVARIANTS = [
  "socialized deficit recomputed",
  "loss index raised exactly",
  "bankrupt taken over at zero",
  "final layer trigger valid",
] as const;

/** The required invariants (docs/mechanism.md sections 5 and 7.6); each must have been checked at least once. */
export const REQUIRED_INVARIANTS = [
  "conservation",
  "open interest balanced",
  "every open position c > 0",
  "insurance fund never negative",
  ...ADL_INVARIANTS,
  ...SOCIALIZED_INVARIANTS,
] as const;

export function buildReport(inputs: ReportInputs, crash: CrashOutcome): DemoReport {
  const { scenario } = inputs;
  const last = crash.finalLedger;
  const markets: MarketSummary[] = scenario.markets.map((m, i) => ({
    symbol: m.symbol,
    id: inputs.marketIds[i],
    listingPrice: m.listingPrice,
    preCrashPrice: scenario.rounds[scenario.rounds.length - 1].prices[i],
    finalPrice: scenario.crash[scenario.crash.length - 1].prices[i],
    openInterestBefore: inputs.openInterestBefore[i],
    openInterestAfter: last.markets.get(inputs.marketIds[i])!.longOpenInterest,
  }));
  const liq = crash.liquidations;
  const adl = crash.adlCalls;
  const social = crash.socialized;
  const fundAfterCrash = fundValue(last);
  const summary: DemoSummary = {
    liquidations: liq.length,
    bankruptLiquidations: liq.filter((l) => l.bankrupt).length,
    liquidatedNotional: sum(liq.map((l) => (l.size * l.price) / 10n ** 18n)),
    fundBeforeCrash: inputs.fundBeforeCrash,
    fundAfterCrash,
    fundLowest: crash.steps.reduce((m, s) => (s.fundAfter < m ? s.fundAfter : m), inputs.fundBeforeCrash),
    fundFeesReceived: sum(liq.map((l) => l.feeToFund)),
    fundPaidLiquidations: sum(liq.map((l) => l.fundPaid)),
    fundPaidAdl: sum(adl.map((a) => a.fundContribution)),
    reservePaid: sum(liq.map((l) => l.reservePaid)),
    deficitLiquidations: sum(liq.map((l) => l.fundPaid + l.reservePaid)),
    deficitAdl: sum(adl.map((a) => a.fundContribution + a.deficitAbsorbed)),
    absorbedByCounterparties: sum(adl.map((a) => a.deficitAbsorbed)),
    socializations: social.length,
    fundPaidSocialized: sum(social.map((x) => x.fundPaid)),
    lossSocialized: sum(social.map((x) => x.lossSocialized)),
    deficitSocialized: sum(social.map((x) => x.fundPaid + x.lossSocialized)),
    adlCalls: adl.length,
    adlLegs: adl.reduce((s, a) => s + a.legs.length, 0),
    distinctCounterparties: new Set(adl.flatMap((a) => a.legs.map((l) => `${a.marketId}:${l.account}`))).size,
    bankruptsDeleveraged: new Set(adl.map((a) => `${a.marketId}:${a.bankrupt}`)).size,
    adlGasTotal: sum(adl.map((a) => a.gasUsed)),
    adlGasMax: max(adl.map((a) => a.gasUsed)),
    liquidationGasMax: max(liq.map((l) => l.gasUsed)),
    unsettledAtEnd: inputs.unsettledAtEnd.length,
    unsettledDeficitAtEnd: sum(inputs.unsettledAtEnd.map((u) => u.deficit)),
  };
  const checks = [
    ...crash.ledgerChecks.flatMap((c) => c.results),
    ...adl.flatMap((a) => a.results),
    ...social.flatMap((x) => x.results),
  ];
  const invariants = summarizeInvariants(checks);
  for (const name of REQUIRED_INVARIANTS) {
    if (!invariants.some((i) => i.name === name)) {
      const final = (SOCIALIZED_INVARIANTS as readonly string[]).includes(name);
      invariants.push({
        name,
        status: "not exercised",
        pass: true,
        checks: 0,
        failures: 0,
        detail: final
          ? "no loss was socialized in this run (a crash depth of 26% or more gaps the thin market; a smaller --fund-stake keeps the fund from covering it)"
          : "no ADL call happened in this run (more traders or a smaller --fund-stake make one likely)",
      });
    }
  }
  return {
    format: REPORT_FORMAT,
    network: inputs.network,
    chainId: inputs.chainId,
    options: scenario.options,
    driver: inputs.driver,
    contracts: inputs.contracts,
    roles: inputs.roles,
    markets,
    traders: inputs.traders,
    setup: inputs.setup,
    steps: crash.steps,
    liquidations: liq,
    adlCalls: adl,
    socializedLosses: social,
    settlements: crash.settlements,
    unsettledReported: crash.unsettled,
    unsettledAtEnd: inputs.unsettledAtEnd,
    keeperPositions: inputs.keeperPositions,
    summary,
    invariants,
    pass: invariants.every((i) => i.pass),
  };
}

// ============================================================================ text

/** Renders rows as an aligned plain-text table (first row: headers). */
function table(rows: string[][], indent = "  "): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
      return indent + line + (i === 0 ? `\n${indent}${widths.map((w) => "-".repeat(w)).join("  ")}` : "");
    })
    .join("\n");
}

/** The readable report. */
export function formatReport(r: DemoReport): string {
  const label = (a: string): string => r.roles[a] ?? a;
  const s = r.summary;
  const out: string[] = [];
  out.push(
    `ADL crash demo (${r.format}): seed ${r.options.seed}, ${r.options.traders} traders, crash depth ${r.options.crashDepth}%, network ${r.network} (chain ${r.chainId})`,
  );
  out.push(`driver: ${r.driver}; clearinghouse ${r.contracts.clearinghouse}, deleverager ${r.contracts.deleverager}`);
  out.push("");
  out.push("Setup");
  out.push(
    `  ${r.traders.length} traders deposited ${formatQuote(r.setup.depositedTokens * 10n ** 12n)}; ${r.setup.fills} fills over ${r.options.rounds} rounds (gas ${r.setup.fillGas} total, ${r.setup.maxFillGas} max)`,
  );
  out.push(
    `  insurance fund: ${formatQuote(r.setup.fundStakeTokens * 10n ** 12n)} staked, ${formatQuote(s.fundBeforeCrash)} before the crash (stake plus trading fees)`,
  );
  out.push(
    table([
      ["market", "listed", "pre-crash", "final", "OI before", "OI after"],
      ...r.markets.map((m) => [
        m.symbol,
        formatQuote(m.listingPrice),
        formatQuote(m.preCrashPrice),
        formatQuote(m.finalPrice),
        formatRatio(m.openInterestBefore),
        formatRatio(m.openInterestAfter),
      ]),
    ]),
  );
  out.push("");
  out.push("Crash steps");
  out.push(
    table([
      [
        "step",
        ...r.markets.map((m) => m.symbol),
        "late fills",
        "liq",
        "bankrupt",
        "ADL calls",
        "legs",
        "socialized",
        "unsettled",
        "fund after",
        "keeper reserves",
        "treasury after",
        "invariants",
      ],
      ...r.steps.map((st) => [
        String(st.index),
        ...st.prices.map((p) => `${formatQuote(p.after)} (-${percent(p.dropPpm)})`),
        String(st.lateEntrantFills),
        String(st.liquidations),
        String(st.bankruptLiquidations),
        String(st.adlCalls),
        String(st.counterparties),
        String(st.socializations),
        String(st.unsettledReported),
        formatQuote(st.fundAfter),
        formatQuote(st.keeperReserveAfter),
        formatQuote(st.treasuryAfter),
        st.pass ? "pass" : "FAIL",
      ]),
    ]),
  );
  out.push("");
  out.push(
    `Liquidations: ${s.liquidations} (${s.bankruptLiquidations} bankrupt parts covered by the fund), notional ${formatQuote(s.liquidatedNotional)}; fund received ${formatQuote(s.fundFeesReceived)} in fees and paid ${formatQuote(s.fundPaidLiquidations)} of deficits (rounding reserve ${s.reservePaid} wei)`,
  );
  if (r.liquidations.length > 0) {
    out.push(
      table([
        ["step", "market", "trader", "size", "price", "fee to fund", "deficit paid", "gas"],
        ...r.liquidations.map((l) => [
          String(l.step),
          l.market,
          label(l.account),
          formatRatio(l.size),
          formatQuote(l.price),
          formatQuote(l.feeToFund),
          l.bankrupt ? formatQuote(l.fundPaid + l.reservePaid) : "-",
          String(l.gasUsed),
        ]),
      ]),
    );
  }
  out.push("");
  out.push(
    `ADL: ${s.adlCalls} calls settled ${s.bankruptsDeleveraged} bankrupt positions against ${s.distinctCounterparties} counterparties (${s.adlLegs} legs); deficit ${formatQuote(s.deficitAdl)}: fund ${formatQuote(s.fundPaidAdl)}, counterparties ${formatQuote(s.absorbedByCounterparties)}; gas ${s.adlGasTotal} total, ${s.adlGasMax} max`,
  );
  for (const [i, a] of r.adlCalls.entries()) {
    const b = a.bankruptBefore;
    const eligible = a.opposite.filter((o) => o.queuePosition !== null).length;
    out.push(
      `  ADL #${i + 1} (step ${a.step}, ${a.market}, block ${a.block}, gas ${a.gasUsed}): bankrupt ${label(a.bankrupt)} ${b.isLong ? "long" : "short"} ${formatRatio(b.size)} (K ${formatQuote(b.entry)}, c ${formatQuote(b.margin)}, leverage a*K ${formatRatio((b.leverage * b.entry) / 10n ** 18n)}x)`,
    );
    out.push(
      `    P ${formatQuote(a.price)}, F ${formatQuote(a.funding)}, deficit D ${formatQuote(a.deficit)}, fund available ${formatQuote(a.fundAvailable)}, sigma ${formatQuote(a.sigma)}, delta ${formatQuote(a.delta)} per unit`,
    );
    out.push(
      `    closed ${formatRatio(a.closedSize)} (remaining ${formatRatio(a.remainingSize)}): fund paid ${formatQuote(a.fundContribution)}, counterparties absorbed ${formatQuote(a.deficitAbsorbed)}, keeper reward ${formatQuote(a.keeperReward)}; opposite side ${a.opposite.length} positions, ${eligible} eligible`,
    );
    out.push(
      table(
        [
          ["queue", "counterparty", "score", "size", "price", "charged"],
          ...a.legs.map((l) => [
            String(l.queuePosition),
            label(l.account),
            formatRatio(l.score),
            formatRatio(l.take),
            formatQuote(l.price),
            formatQuote(l.charged),
          ]),
        ],
        "      ",
      ),
    );
    const verdicts = a.results.map((x) => `${x.name}: ${x.pass ? "pass" : `FAIL (${x.detail})`}`).join("; ");
    out.push(`    checks: ${verdicts}`);
  }
  out.push("");
  out.push(
    `Socialized losses (the final layer): ${s.socializations}; deficit ${formatQuote(s.deficitSocialized)}: fund ${formatQuote(s.fundPaidSocialized)}, charged to the opposite sides (D_rem) ${formatQuote(s.lossSocialized)}`,
  );
  for (const [i, x] of r.socializedLosses.entries()) {
    const b = x.bankruptBefore;
    const side = x.chargedLong ? "long" : "short";
    out.push(
      `  Socialized #${i + 1} (step ${x.step}, ${x.market}, block ${x.block}, gas ${x.gasUsed}): bankrupt ${label(x.bankrupt)} ${b.isLong ? "long" : "short"} ${formatRatio(b.size)} (K ${formatQuote(b.entry)}, c ${formatQuote(b.margin)}), trigger ${x.byDeadline ? "deadline (listed for socialDelay)" : "empty-list proof (no eligible counterparty)"}`,
    );
    out.push(
      `    P ${formatQuote(x.price)}, F of B's side ${formatQuote(x.bankruptFunding)}, deficit D ${formatQuote(x.deficit)}, fund available ${formatQuote(x.fundAvailable)}, delta ${formatQuote(x.delta)} per unit; opposite side ${x.oppositePositions} positions, ${x.oppositeEligible} eligible`,
    );
    out.push(
      `    fund paid ${formatQuote(x.fundPaid)}, D_rem ${formatQuote(x.lossSocialized)} charged to ${side}s: Q_${side} ${formatRatio(x.openInterest)}, L_${side} ${formatQuote(x.lossIndexBefore)} -> ${formatQuote(x.lossIndex)} (rounding to the fund ${x.toFund} wei); taker ${label(x.taker)}${x.takerAfter ? ` now ${x.takerAfter.isLong ? "long" : "short"} ${formatRatio(x.takerAfter.size)} with c ${formatQuote(x.takerAfter.margin)}` : ""}, keeper reward ${formatQuote(x.keeperReward)}`,
    );
    const verdicts = x.results.map((c) => `${c.name}: ${c.pass ? "pass" : `FAIL (${c.detail})`}`).join("; ");
    out.push(`    checks: ${verdicts}`);
  }
  out.push("");
  out.push(`Bad debt settled, in chain order (${r.settlements.length} settlements by layer: fund, ADL, socialized)`);
  if (r.settlements.length > 0) {
    out.push(
      table([
        [
          "step",
          "block",
          "market",
          "layer",
          "bankrupt",
          "deficit",
          "fund paid",
          "absorbed",
          "D_rem",
          "Q_side",
          "new L",
          "taker",
        ],
        ...r.settlements.map((x) => [
          String(x.step),
          String(x.block),
          x.market,
          x.layer,
          label(x.bankrupt),
          formatQuote(x.deficit),
          formatQuote(x.fundPaid),
          x.layer === "ADL" ? formatQuote(x.absorbed) : "-",
          x.layer === "socialized" ? formatQuote(x.lossSocialized) : "-",
          x.layer === "socialized" ? `${formatRatio(x.openInterest)} ${x.chargedLong ? "long" : "short"}` : "-",
          x.layer === "socialized" ? formatQuote(x.lossIndex) : "-",
          x.taker ? label(x.taker) : "-",
        ]),
      ]),
    );
  }
  out.push("");
  if (r.keeperPositions.length > 0) {
    out.push(
      "Keeper's positions at the end (taken over; the operator holds them until liquidations or ADL reduce them):",
    );
    out.push(
      table([
        ["market", "side", "size", "K", "margin", "equity"],
        ...r.keeperPositions.map((k) => [
          k.market,
          k.isLong ? "long" : "short",
          formatRatio(k.size),
          formatQuote(k.entry),
          formatQuote(k.margin),
          formatQuote(k.equity),
        ]),
      ]),
    );
  } else {
    out.push("Keeper's positions at the end: none");
  }
  out.push("");
  if (r.unsettledAtEnd.length > 0) {
    out.push(
      `Unsettled at the end (no eligible counterparty): ${r.unsettledAtEnd.map((u) => `${u.market} ${label(u.account)} deficit ${formatQuote(u.deficit)}`).join(", ")}`,
    );
  } else {
    out.push("Unsettled at the end: none");
  }
  out.push(
    `Fund: ${formatQuote(s.fundBeforeCrash)} before, lowest ${formatQuote(s.fundLowest)} after a step, ${formatQuote(s.fundAfterCrash)} at the end`,
  );
  out.push("");
  out.push("Invariants (docs/mechanism.md sections 5 and 7.6)");
  for (const inv of r.invariants) {
    out.push(
      `  [${inv.status === "fail" ? "FAIL" : inv.status}] ${inv.name} (${inv.checks} checks${inv.failures ? `, ${inv.failures} failed` : ""}): ${inv.detail}`,
    );
  }
  out.push("");
  const idle = r.invariants.filter((i) => i.status === "not exercised").length;
  out.push(`Result: ${r.pass ? "PASS" : "FAIL"}${idle ? ` (${idle} invariants not exercised)` : ""}`);
  return out.join("\n");
}
