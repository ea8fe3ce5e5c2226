/**
 * Off-chain speed of the keeper's ADL work (a script that prints figures, not a timed test): a
 * random book of N positions (default 100,000) in one market, leverages 1x-50x (log-uniform),
 * entries within 20% of the index, both sides; one bankrupt long the fund cannot cover. Times
 * buildQueue (every eligible short scored and ranked), buildProof (top-down over the replayed rank
 * index) and buildDeleverage (both, for the head covering the bankrupt size) on one core.
 *
 *   npm run bench:keeper
 *   KEEPER_BENCH_N=20000 KEEPER_BENCH_RUNS=9 KEEPER_BENCH_SEED=3 npm run bench:keeper
 */
import { cpus, loadavg } from "node:os";
import { getAddress } from "ethers";
import { PositionBook, adlDelta, buildDeleverage, buildProof, buildQueue, headOfQueue } from "../lib/adl";
import { bandReference, marketId } from "../lib/local";
import { WAD, mulDivUp } from "../lib/math";
import { DEFAULT_OPTIONS, decide } from "../keeper/src";
import { mulberry32 as prng } from "../lib/prng";

const N = Number(process.env.KEEPER_BENCH_N ?? 100_000);
const RUNS = Number(process.env.KEEPER_BENCH_RUNS ?? 7);
const SEED = Number(process.env.KEEPER_BENCH_SEED ?? 7);
const PRICE = 2000n * WAD;
const ID = marketId("ETH-USD");
/** The local deployment's defaults: 5% maintenance, 1% liquidation fee, 10 minimum notional. */
const RISK = { imr: WAD / 10n, mmr: WAD / 20n, liquidationFee: WAD / 100n, minNotional: 10n * WAD };

/** A decimal in [0, 1) as a bigint fraction of WAD (9 significant digits are plenty here). */
const frac = (r: number): bigint => BigInt(Math.floor(r * 1e9)) * 10n ** 9n;

function buildBook(rand: () => number): { book: PositionBook; bankrupt: string; buildMs: number } {
  const t0 = performance.now();
  const book = new PositionBook();
  const kRef = bandReference(PRICE);
  const add = (account: string, isLong: boolean, size: bigint, entry: bigint, margin: bigint): void =>
    book.putPosition(ID, account, isLong, size, entry, margin, kRef);
  for (let i = 0; i < N; i++) {
    const isLong = rand() < 0.5;
    // Leverage log-uniform in [1, 50]; entry within 20% of the index; size 0.01 to 100 units.
    const lev = BigInt(Math.floor(Math.exp(rand() * Math.log(50)) * 1e6)) * 10n ** 12n;
    const entry = (PRICE * (WAD - WAD / 5n + (2n * frac(rand())) / 5n)) / WAD;
    const size = (WAD / 100n) * BigInt(1 + Math.floor(rand() * 10_000));
    const margin = mulDivUp(mulDivUp(size, entry, WAD), WAD, lev);
    add(getAddress(`0x${(i + 1).toString(16).padStart(40, "0")}`), isLong, size, entry, margin);
  }
  // The bankrupt long: 20x entered 15% above the index.
  const bankrupt = getAddress(`0x${"b".repeat(40)}`);
  const size = 50n * WAD;
  const entry = (PRICE * 115n) / 100n;
  add(bankrupt, true, size, entry, mulDivUp(mulDivUp(size, entry, WAD), WAD, 20n * WAD));
  return { book, bankrupt, buildMs: performance.now() - t0 };
}

/** Wall-clock and CPU milliseconds (user + system of this process) of each run. */
function time<T>(fn: () => T): { ms: number[]; cpu: number[]; value: T } {
  const ms: number[] = [];
  const cpu: number[] = [];
  let value!: T;
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    value = fn();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { ms, cpu, value };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (t: { ms: number[]; cpu: number[] }): string =>
  `wall median ${median(t.ms).toFixed(1)} ms (min ${Math.min(...t.ms).toFixed(1)}), cpu median ${median(t.cpu).toFixed(1)} ms`;

function main(): void {
  const rand = prng(SEED);
  const { book, bankrupt, buildMs } = buildBook(rand);
  const funding = 0n;
  const fund = 1000n * WAD;
  const { delta } = adlDelta(book, ID, bankrupt, PRICE, funding, fund);
  console.log(`keeper ADL benchmark: N = ${N}, seed ${SEED}, ${RUNS} runs each, node ${process.version}`);
  console.log(`  book built from ${N + 1} PositionChanged records in ${buildMs.toFixed(0)} ms`);
  console.log(`  bankrupt long 50 units at 20x, delta = ${delta} (${Number(delta / 10n ** 14n) / 1e4} per unit)`);

  const queue = time(() => buildQueue(book, ID, bankrupt, PRICE, funding, delta));
  console.log(`  buildQueue:       ${fmt(queue)}  (${queue.value.length} eligible shorts ranked)`);
  const walk = time(() => [...headOfQueue(book, ID, bankrupt, PRICE, funding, delta)]);
  console.log(`  headOfQueue, all: ${fmt(walk)}  (the same ranking by a best-first tree walk)`);
  const same = (xs: { account: string; value: bigint }[]) => xs.map((q) => `${q.account}:${q.value}`).join();
  if (same(walk.value) !== same(queue.value)) throw new Error("tree walk and brute-force ranking differ");
  const plan = time(() => buildDeleverage(book, ID, bankrupt, PRICE, funding, delta));
  const p = plan.value;
  const opened = p.proof.reduce((n, x) => n + (x.open ? x.members.length : 0), 0);
  const lastScore = p.scores[p.scores.length - 1];
  const proof = time(() => buildProof(book, ID, false, PRICE, funding, delta, lastScore));
  console.log(`  buildProof:       ${fmt(proof)}  (${p.proof.length} nodes, ${opened} opened members)`);
  console.log(`  buildDeleverage:  ${fmt(plan)}  (${p.counterparties.length} counterparties)`);
  // The queue the plan names is the head of the full ranking.
  const head = queue.value.slice(0, p.counterparties.length).map((q) => q.account);
  if (head.join() !== p.counterparties.join()) throw new Error("plan is not the head of the queue");
  // One keeper decision over the whole book at the index (every position checked, the bankrupt
  // ones the fund cannot cover planned up to the default per-tick limit).
  const reading = {
    marketId: ID,
    price: PRICE,
    funding,
    fundingLong: funding,
    fundingShort: funding,
    risk: RISK,
    paused: false,
    unsettled: new Map<string, bigint>(),
    unsettledSince: new Map<string, bigint>(),
    socialDelay: 0n,
  };
  const decision = time(() =>
    decide({
      book,
      markets: [reading],
      fundAvailable: fund,
      keeper: getAddress(`0x${"f".repeat(40)}`),
      keeperFree: 0n,
      bounds: { maxListLength: 64, maxProofNodes: 512, maxOpenedMembers: 2000 },
      busy: new Set(),
      maxEntries: DEFAULT_OPTIONS.maxEntries,
      refreshLooseNodes: false,
      maxAdlPerTick: DEFAULT_OPTIONS.maxAdlPerTick,
    }),
  );
  const kinds = new Map<string, number>();
  for (const a of decision.value) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
  console.log(`  decide (one tick): ${fmt(decision)}  (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")})`);
  const snap = time(() => JSON.stringify(book.snapshot()));
  console.log(`  checkpoint of the book: ${fmt(snap)}  (${(snap.value.length / 1e6).toFixed(1)} MB of JSON)`);
  const restore = time(() => PositionBook.restore(JSON.parse(snap.value)));
  console.log(`  restore from it:  ${fmt(restore)}`);
  const budget = 250;
  const worst = Math.max(median(plan.ms), median(plan.cpu));
  console.log(`  budget ${budget} ms for ranking and proof (buildDeleverage): ${worst <= budget ? "met" : "MISSED"}`);
  const [load1] = loadavg();
  console.log(`  load average at the end: ${load1.toFixed(2)} on ${cpus().length} cores (wall times grow with it)`);
}

main();
