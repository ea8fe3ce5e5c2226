/**
 * The ADL benchmark's results: their JSON shape (bench/adl-gas.json), the targets from the issue,
 * and the markdown section of docs/gas.md between the adl-gas markers.
 */
import { readFileSync, writeFileSync } from "node:fs";

export type ProofKind = "tree" | "flat";

/** One deleverage call: a book of N positions, the first k of the queue, one kind of proof. */
export interface Row {
  N: number;
  k: number;
  proof: ProofKind;
  /** Whole-call gas (receipt gasUsed); for a call over the cap, eth_estimateGas, or null. */
  totalGas: number | null;
  gasPerCounterparty: number | null;
  proofNodes: number;
  openedMembers: number;
  /** "ok": sent and mined; "over-cap": needs more than 16,777,216 gas, not sent. */
  status: "ok" | "over-cap";
  note?: string;
}

export interface IndexCost {
  /** Positions opened (index set) before the mix: 0 for a fresh market. */
  preloaded: number;
  accounts: number;
  warmupTrades: number;
  mixTrades: number;
  measuredTrades: number;
  median: number;
  p90: number;
  worst: number;
  worstKind: string;
  mean: number;
  /** The first match of a fresh market (both trees' first path), paid once per market. */
  firstTrade: number;
  warmupWorst: number;
  byKind: { kind: string; trades: number; median: number; worst: number }[];
}

export interface AdversarialStep {
  attackerPositions: number;
  openedMembers: number;
  proofNodes: number;
  gas: number | null;
  status: "ok" | "over-cap";
}

export interface Adversarial {
  bookN: number;
  k: number;
  leaves: number;
  delta: string;
  lastScore: string;
  steps: AdversarialStep[];
  /** First measured attacker count whose call exceeds the cap (null if never within the run). */
  positionsToExceed: number | null;
  marginLockedUsd: number | null;
  /** Linear fit over the measured steps: gas = base + perMember * openedMembers. */
  perOpenedMember: number | null;
  openedMembersAtCap: number | null;
  /** From the fit: the fewest attacker positions that push the call past the cap, and their margin. */
  positionsAtCap?: number;
  marginAtCapUsd?: number;
  note?: string;
}

export interface Target {
  name: string;
  limit: string;
  measured: string;
  met: boolean | null;
}

export interface Results {
  seed: number;
  ns: number[];
  ks: number[];
  gasCap: number;
  commit: string;
  book: Record<string, string>;
  rows: Row[];
  indexCost: IndexCost | null;
  /** The same mix on a market already holding `preloaded` positions. */
  indexCostMature?: IndexCost | null;
  adversarial: Adversarial | null;
  /** socializeLoss by its deadline trigger (no proof) on each book: O(1) in N. */
  socialize?: { N: number; gas: number; gasOppositeHolder?: number }[];
  targets: Target[];
  runSeconds: number;
  phases: Record<string, number>;
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? "—" : v.toLocaleString("en-US"));

/** Evaluates the targets on the rows and the index cost. */
export function evaluateTargets(rows: Row[], index: IndexCost | null, mature: IndexCost | null = null): Target[] {
  const at = (N: number, k: number, proof: ProofKind) => rows.find((r) => r.N === N && r.k === k && r.proof === proof);
  const targets: Target[] = [];
  const t10k = at(10000, 5, "tree");
  targets.push({
    name: "tree proof, N = 10,000, k = 5: whole deleverage call",
    limit: "<= 1,200,000 gas",
    measured: t10k?.totalGas ? `${fmt(t10k.totalGas)} gas` : "not run",
    met: t10k?.totalGas ? t10k.totalGas <= 1_200_000 : null,
  });
  const t1k = at(1000, 5, "tree");
  targets.push({
    name: "tree proof, k = 5: growth from N = 1,000 to N = 10,000",
    limit: "<= 2x",
    measured:
      t1k?.totalGas && t10k?.totalGas
        ? `${fmt(t1k.totalGas)} -> ${fmt(t10k.totalGas)} (${(t10k.totalGas / t1k.totalGas).toFixed(2)}x)`
        : "not run",
    met: t1k?.totalGas && t10k?.totalGas ? t10k.totalGas <= 2 * t1k.totalGas : null,
  });
  const f1k = at(1000, 5, "flat");
  targets.push({
    name: "tree proof vs flat scan, N = 1,000, k = 5",
    limit: "<= 1/4 of the flat scan",
    measured:
      t1k?.totalGas && f1k?.totalGas
        ? `${fmt(t1k.totalGas)} vs ${fmt(f1k.totalGas)}${f1k.status === "over-cap" ? " (estimate, over the cap)" : ""} (${(
            t1k.totalGas / f1k.totalGas
          ).toFixed(3)})`
        : "not run",
    met: t1k?.totalGas && f1k?.totalGas ? 4 * t1k.totalGas <= f1k.totalGas : null,
  });
  for (const [book, ic] of [
    ["fresh market", index],
    ["mature market", mature],
  ] as const) {
    targets.push({
      name: `index cost of a trade, median (${book})`,
      limit: "<= 10,000 gas",
      measured: ic ? `${fmt(ic.median)} gas` : "not run",
      met: ic ? ic.median <= 10_000 : null,
    });
    targets.push({
      name: `index cost of a trade, worst of the mix (${book})`,
      limit: "<= 40,000 gas",
      measured: ic ? `${fmt(ic.worst)} gas (${ic.worstKind})` : "not run",
      met: ic ? ic.worst <= 40_000 : null,
    });
  }
  return targets;
}

export const BEGIN = "<!-- adl-gas:begin -->";
export const END = "<!-- adl-gas:end -->";

/** The markdown between the adl-gas markers. */
export function renderSection(r: Results): string {
  const lines: string[] = [];
  lines.push("## Verifiable ADL (`npm run bench:adl`)");
  lines.push("");
  lines.push(
    `Measured by \`scripts/bench-adl.ts\` (seed ${r.seed}, commit \`${r.commit}\`, run time ` +
      `${Math.round(r.runSeconds / 60)} min on the in-process network). Book: one short per position, ` +
      `leverage log-uniform ${r.book.leverage}, entries ${r.book.entries}, notional ${r.book.notional}, ` +
      `all against one 1x whale long; fees zero so the insurance fund holds nothing. The N = 1,000 ` +
      `book extends the N = 100 book, and so on. ${r.book.bankrupt}. The list is the first k entries of ` +
      `the queue, each closed whole. **Tree**: the proof \`lib/adl.ts\` builds. **Flat**: a full scan ` +
      `emulated with this verifier, pruning only empty nodes and opening every non-empty leaf with all ` +
      `its members. Bounds raised with \`setBounds\` first. Calls needing more than ` +
      `${fmt(r.gasCap)} gas (the EIP-7825 cap) are not sent; their gas is eth_estimateGas's figure. ` +
      `(The project's Hardhat network runs cancun and does not enforce the cap, so the script does.)`,
  );
  lines.push("");
  lines.push("| N | k | proof | total gas | gas per counterparty | proof nodes | opened members | |");
  lines.push("| ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |");
  for (const row of r.rows) {
    const status = row.status === "over-cap" ? "over the cap, not sent" : "";
    lines.push(
      `| ${fmt(row.N)} | ${row.k} | ${row.proof} | ${fmt(row.totalGas)} | ${fmt(row.gasPerCounterparty)} | ` +
        `${fmt(row.proofNodes)} | ${fmt(row.openedMembers)} | ${[status, row.note ?? ""].filter(Boolean).join("; ")} |`,
    );
  }
  lines.push("");
  lines.push("Targets (issue):");
  lines.push("");
  lines.push("| target | limit | measured | |");
  lines.push("| --- | --- | --- | --- |");
  for (const t of r.targets) {
    lines.push(
      `| ${t.name} | ${t.limit} | ${t.measured} | ${t.met === null ? "not measured" : t.met ? "met" : "**missed**"} |`,
    );
  }
  lines.push("");
  const ic = r.indexCost;
  if (ic) {
    lines.push(
      `**What the index adds to a trade.** The same ${ic.mixTrades}-trade mix (random pairs of ${ic.accounts} ` +
        `accounts; opens, increases, reductions, closes and flips at 1x-50x, price walking around 2,000) ` +
        `after ${ic.warmupTrades} warm-up trades, run twice from one snapshot: clearinghouse with the rank ` +
        `index and without it; identical orders and signatures, so the difference is the index.`,
    );
    lines.push("");
  }
  for (const [title, x] of [
    ["Fresh market (only the mix's 60 accounts, so most leaves and paths are written for the first time)", ic],
    [
      `Mature market (${fmt(r.indexCostMature?.preloaded)} positions on both sides opened first, 1x-50x, ` +
        `entries within 5% of 2,000; the index is removed from storage for the branch without it)`,
      r.indexCostMature ?? null,
    ],
  ] as const) {
    if (!x) continue;
    lines.push(
      `${title}: over ${x.measuredTrades} trades, median ${fmt(x.median)}, p90 ${fmt(x.p90)}, mean ` +
        `${fmt(x.mean)}, worst ${fmt(x.worst)} (${x.worstKind})` +
        (x.preloaded === 0
          ? `; the first match of the market costs ${fmt(x.firstTrade)} more (both trees' first paths, once).`
          : "."),
    );
    lines.push("");
    lines.push("| legs (maker/taker) | trades | median extra gas | worst extra gas |");
    lines.push("| --- | ---: | ---: | ---: |");
    for (const k of x.byKind) lines.push(`| ${k.kind} | ${k.trades} | ${fmt(k.median)} | ${fmt(k.worst)} |`);
    lines.push("");
  }
  const adv = r.adversarial;
  if (adv) {
    lines.push(
      `**Adversarial book.** On the N = ${adv.bookN} book, a deeper bankrupt long (delta ${adv.delta}) and ` +
        `k = ${adv.k}: an attacker parks, in each of the ${adv.leaves} leaves near the head where it can, one ` +
        `ineligible high scorer (its a and K keep the leaf's bound above the last entry's score) and ` +
        `minimum-notional eligible low scorers (they keep the leaf from being pruned as ineligible), so ` +
        `every such leaf must be opened with all its members.`,
    );
    lines.push("");
    lines.push("| attacker positions | opened members | proof nodes | deleverage gas | |");
    lines.push("| ---: | ---: | ---: | ---: | --- |");
    for (const s of adv.steps) {
      lines.push(
        `| ${fmt(s.attackerPositions)} | ${fmt(s.openedMembers)} | ${fmt(s.proofNodes)} | ${fmt(s.gas)} | ` +
          `${s.status === "over-cap" ? "over the cap" : ""} |`,
      );
    }
    lines.push("");
    lines.push(
      adv.positionsToExceed !== null
        ? `${fmt(adv.positionsToExceed)} attacker positions push one call past ${fmt(r.gasCap)} gas, locking ` +
            `${fmt(adv.marginLockedUsd)} USD of margin. Fit: about ${fmt(adv.perOpenedMember)} gas per opened ` +
            `member, so the cap is reached at about ${fmt(adv.openedMembersAtCap)} opened members, that is about ` +
            `${fmt(adv.positionsAtCap)} attacker positions locking about ${fmt(adv.marginAtCapUsd)} USD. ` +
            `Multi-transaction sessions (docs/mechanism.md section 4) are the answer.`
        : `The call stayed under the cap within the run. ${adv.note ?? ""}`,
    );
    lines.push("");
  }
  if (r.socialize && r.socialize.length > 0) {
    lines.push("### Socialized loss");
    lines.push("");
    lines.push(
      "`socializeLoss(market, B, [])` by its deadline trigger (B reported, `T_social` elapsed, no proof), " +
        "the same bankrupt long on each book, its loss charged to all N shorts through the loss index; " +
        "the caller takes B over. The gas does not depend on N. A fresh caller opens a long (a new member " +
        "of the long tree); a caller already short 200 units reduces its short instead:",
    );
    lines.push("");
    lines.push("| N | gas, fresh caller | gas, caller already short |");
    lines.push("| ---: | ---: | ---: |");
    for (const x of r.socialize) lines.push(`| ${fmt(x.N)} | ${fmt(x.gas)} | ${fmt(x.gasOppositeHolder)} |`);
    lines.push("");
  }
  const phases = Object.entries(r.phases)
    .map(([k, v]) => `${k} ${Math.round(v)} s`)
    .join(", ");
  lines.push(`Run time: ${Math.round(r.runSeconds)} s (${phases}).`);
  return lines.join("\n");
}

/** Rewrites the section between the markers (appending them at the end of the file if absent). */
export function writeSection(path: string, r: Results): void {
  const doc = readFileSync(path, "utf8");
  const section = renderSection(r);
  let updated: string;
  if (doc.includes(BEGIN) && doc.includes(END)) {
    updated = doc.slice(0, doc.indexOf(BEGIN) + BEGIN.length) + "\n" + section + "\n" + doc.slice(doc.indexOf(END));
  } else {
    updated = doc.replace(/\s*$/, "\n\n") + BEGIN + "\n" + section + "\n" + END + "\n";
  }
  writeFileSync(path, updated);
}
