/**
 * Gas of verifiable ADL on the in-process Hardhat network (a script that prints figures, not a
 * test): the whole deleverage call with the tree proof and with a flat proof (a full scan) for
 * books of N positions and lists of k counterparties, what the rank index adds to a trade, and an
 * adversarial book that forces leaves open. Writes bench/adl-gas.json and the ADL section of
 * docs/gas.md.
 *
 *   npm run bench:adl
 *   ADL_BENCH_NS=100,1000 ADL_BENCH_KS=1,5 npm run bench:adl     # smaller run
 *   ADL_BENCH_SKIP=index,adversarial,sessions npm run bench:adl # skip phases
 *   ADL_BENCH_SEED=7                                             # PRNG seed (default 7)
 *   ADL_BENCH_RENDER_ONLY=1 npm run bench:adl                    # re-render docs from the JSON
 */
import { readFileSync, writeFileSync } from "node:fs";
import { execSync } from "node:child_process";
import { ethers, network } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { Wallet } from "ethers";
import { deployLocalSystem, type LocalSystem } from "../lib/local";
import { PositionBook, adlDelta, buildDeleverage, type ProofNode } from "../lib/adl";
import { HEIGHT, leafOf } from "../lib/rank-tree";
import { isEligible, positionScore } from "../lib/score";
import { leverageUp } from "../lib/position";
import { WAD, mulDivUp } from "../lib/math";
import {
  SCALE,
  TX_GAS_CAP,
  depositFor,
  estimate,
  fundAdmin,
  logUniform,
  match,
  openAgainstWhale,
  order,
  prng,
  currentSalt,
  resetSalt,
  revertTo,
  send,
  setPrice,
  sign,
  snapshot,
  traderWallet,
  wad,
  type PositionSpec,
  type Venue,
} from "./bench-adl/chain";
import {
  evaluateTargets,
  writeSection,
  type Adversarial,
  type AdversarialStep,
  type IndexCost,
  type Results,
  type Row,
} from "./bench-adl/report";
import { measureSessions, writeSessions, type SessionBench } from "./bench-adl/sessions";

const JSON_PATH = "bench/adl-gas.json";
const DOC_PATH = "docs/gas.md";
const SYMBOL = "ETH-USD";
/** The price at every deleverage call; entries lie within 20% of it. */
const PRICE = 2000n * WAD;
/** The bankrupt long: 50x from 2,050, so at 2,000 it owes about 9 per unit (fund empty). */
const BANKRUPT_ENTRY = 2050n * WAD;
/** The adversarial run's bankrupt: 50x from 2,170 (about 127 per unit), so high scorers can be ineligible. */
const ADV_BANKRUPT_ENTRY = 2170n * WAD;
const BANKRUPT_LEVERAGE = 50n * WAD;
/** Up to 100x, no fees: the fund holds nothing, so every bankrupt deficit goes to ADL. */
const PARAMS = { imr: WAD / 100n, mmr: WAD / 200n, makerFee: 0n, takerFee: 0n };
const PENDING = { blockTag: "pending" } as const;

const env = (name: string): string | undefined => process.env[name]?.trim() || undefined;
const list = (v: string | undefined, dflt: number[]): number[] =>
  v ? v.split(",").map((s) => Number(s.trim())) : dflt;

const seconds = (t0: number): number => (Date.now() - t0) / 1000;
const log = (msg: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? 0
    : s.length % 2
      ? s[(s.length - 1) / 2]
      : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

// ============================================================== the random book

/**
 * The book's positions in generation order (so the first 100 of the N = 1,000 book are the N = 100
 * book): shorts, leverage log-uniform 1x-50x, entry uniform within 20% of 2,000 on a 1-dollar grid,
 * notional log-uniform 100-10,000.
 */
function bookGenerator(seed: number): (count: number) => PositionSpec[] {
  const rand = prng(seed);
  let i = 0;
  return (count) => {
    const out: PositionSpec[] = [];
    for (let j = 0; j < count; j++, i++) {
      const price = BigInt(Math.round(2000 * (0.8 + 0.4 * rand()))) * WAD;
      const leverage = wad(logUniform(rand, 1, 50), 2);
      const notional = logUniform(rand, 100, 10_000);
      const size = wad(notional / Number(price / WAD), 6);
      out.push({ wallet: traderWallet("book", i), isLong: false, size, price, leverage });
    }
    return out;
  };
}

// ============================================================== proofs

/**
 * A full scan expressed as a proof this verifier accepts: prune only empty nodes, open every
 * non-empty leaf with all its members; every position on the side is then checked.
 */
function flatProof(book: PositionBook, id: string, side: boolean): ProofNode[] {
  const tree = book.tree(id, side);
  const proof: ProofNode[] = [];
  const visit = (level: number, position: number): void => {
    const n = tree.nodeAt(level, position);
    if (n.maxA === 0n) proof.push({ level, position, open: false, members: [] });
    else if (level === 0) {
      const members = book.leafMembers(id, side, position).map((p) => p.account);
      proof.push({ level, position, open: true, members });
    } else {
      visit(level - 1, 2 * position);
      visit(level - 1, 2 * position + 1);
    }
  };
  visit(HEIGHT, 0);
  return proof;
}

const openedMembers = (proof: ProofNode[]): number => proof.reduce((t, n) => t + (n.open ? n.members.length : 0), 0);

// ============================================================== deleverage calls

interface CallContext {
  book: PositionBook;
  price: bigint;
  funding: bigint;
  delta: bigint;
}

async function keeperContext(sys: LocalSystem, id: string, bankrupt: string): Promise<CallContext> {
  const latest = await ethers.provider.getBlockNumber();
  const book = await PositionBook.fromEvents(sys.clearinghouse, sys.deleverager, 0, latest, 20_000);
  const [price] = await sys.oracle.getPrice(id, true, PENDING);
  const funding = await sys.lens.currentFunding(id, PENDING);
  const available = (await sys.insuranceFund.available()) * SCALE + (await sys.clearinghouse.pendingFundFees());
  const d = adlDelta(book, id, bankrupt, price, funding, available);
  if (d.delta === 0n) throw new Error(`${bankrupt} is not bankrupt at ${price}`);
  const [viewDelta] = await sys.deleverager.adlDelta(id, bankrupt, PENDING);
  if (viewDelta !== d.delta) throw new Error(`delta mismatch: keeper ${d.delta}, chain ${viewDelta}`);
  return { book, price, funding, delta: d.delta };
}

/**
 * One deleverage call: estimated first; over the cap it is not sent (the estimate is reported),
 * otherwise sent from the keeper and the receipt's gas reported. The chain state is restored after.
 */
async function runCall(
  sys: LocalSystem,
  keeper: string,
  id: string,
  bankrupt: string,
  counterparties: string[],
  proof: ProofNode[],
): Promise<{ gas: number | null; status: "ok" | "over-cap"; note?: string }> {
  const del = await sys.deleverager.getAddress();
  const data = sys.deleverager.interface.encodeFunctionData("deleverage", [id, bankrupt, counterparties, proof]);
  const est = await estimate(keeper, del, data);
  if (est.gas === undefined) {
    if (!/gas/i.test(est.error ?? "")) throw new Error(`deleverage would revert: ${est.error}`);
    return { gas: null, status: "over-cap", note: "more than the block gas limit" };
  }
  if (est.gas > TX_GAS_CAP) return { gas: Number(est.gas), status: "over-cap", note: "estimate" };
  const snap = await snapshot();
  const r = await send(keeper, del, data, TX_GAS_CAP);
  await revertTo(snap);
  if (r.status !== 1) throw new Error("deleverage failed");
  return { gas: Number(r.gasUsed), status: "ok" };
}

/** Opens the bankrupt long against the whale at `entry` and gaps the price to 2,000. */
async function openBankrupt(sys: LocalSystem, v: Venue, label: string, entry: bigint): Promise<Wallet> {
  const b = traderWallet("bankrupt", label.length * 1000 + Number(entry / WAD));
  const whale = await sys.clearinghouse.getPosition(v.marketId, v.whale.address);
  const size = (() => {
    const cap = 150n * WAD;
    const most = (whale.size * 9n) / 10n;
    return most < cap ? most : cap;
  })();
  await openAgainstWhale(v, [{ wallet: b, isLong: true, size, price: entry, leverage: BANKRUPT_LEVERAGE }], 0n);
  await setPrice(v, PRICE);
  if (!(await sys.lens.isBankrupt(v.marketId, b.address))) throw new Error("bankrupt long is solvent");
  return b;
}

async function measureBook(
  sys: LocalSystem,
  v: Venue,
  keeper: string,
  N: number,
  ks: number[],
  socialize: { N: number; gas: number; gasOppositeHolder: number }[],
): Promise<Row[]> {
  const b = await openBankrupt(sys, v, `N${N}`, BANKRUPT_ENTRY);
  const social = await measureSocialize(sys, v, keeper, b.address, N);
  socialize.push({ N, gas: social.fresh, gasOppositeHolder: social.opposite });
  log(`N=${N} socializeLoss (deadline trigger) gas=${social.fresh}, caller already short: ${social.opposite}`);
  const ctx = await keeperContext(sys, v.marketId, b.address);
  const rows: Row[] = [];
  const flat = flatProof(ctx.book, v.marketId, false);
  for (const k of ks) {
    const plan = buildDeleverage(ctx.book, v.marketId, b.address, ctx.price, ctx.funding, ctx.delta, k);
    const live = plan.counterparties.length;
    for (const [kind, proof] of [
      ["tree", plan.proof],
      ["flat", flat],
    ] as const) {
      const r = await runCall(sys, keeper, v.marketId, b.address, plan.counterparties, proof);
      const row: Row = {
        N,
        k,
        proof: kind,
        totalGas: r.gas,
        gasPerCounterparty: r.gas === null ? null : Math.round(r.gas / live),
        proofNodes: proof.length,
        openedMembers: openedMembers(proof),
        status: r.status,
      };
      const notes = [live < k ? `queue has only ${live} entries` : "", r.note ?? ""].filter(Boolean);
      if (notes.length) row.note = notes.join("; ");
      rows.push(row);
      log(
        `N=${N} k=${k} ${kind.padEnd(4)} gas=${r.gas ?? "-"}${r.status === "over-cap" ? " (over cap, not sent)" : ""} ` +
          `nodes=${row.proofNodes} opened=${row.openedMembers}`,
      );
    }
  }
  return rows;
}

/**
 * socializeLoss by its deadline trigger on the current book: reports `b`, lets T_social pass,
 * refreshes the feed, and sends the call from a caller funded for the takeover. Two callers: a
 * fresh account (its new long position enters the long tree) and an account already short 200
 * units (the takeover reduces its short). The chain state is restored after each. Returns the
 * receipts' gas.
 */
async function measureSocialize(
  sys: LocalSystem,
  v: Venue,
  keeper: string,
  b: string,
  N: number,
): Promise<{ fresh: number; opposite: number }> {
  const del = await sys.deleverager.getAddress();
  const call = async (from: string): Promise<number> => {
    const report = sys.deleverager.interface.encodeFunctionData("reportUnsettled", [v.marketId, b]);
    if ((await send(keeper, del, report, 500_000n)).status !== 1) throw new Error("reportUnsettled failed");
    await time.increase(await sys.deleverager.socialDelay(v.marketId));
    await setPrice(v, PRICE);
    await depositFor(v, from, 1_000_000n * WAD);
    const data = sys.deleverager.interface.encodeFunctionData("socializeLoss", [v.marketId, b, []]);
    const r = await send(from, del, data, TX_GAS_CAP);
    if (r.status !== 1) throw new Error("socializeLoss failed");
    return Number(r.gasUsed);
  };
  let s = await snapshot();
  const fresh = await call(keeper);
  await revertTo(s);
  s = await snapshot();
  const taker = traderWallet("taker", N);
  await depositFor(v, v.whale.address, 200n * PRICE + 1000n * WAD); // the whale's 1x long side of it
  await openAgainstWhale(v, [{ wallet: taker, isLong: false, size: 200n * WAD, price: PRICE, leverage: 5n * WAD }], 0n);
  await network.provider.request({ method: "hardhat_impersonateAccount", params: [taker.address] });
  await network.provider.request({ method: "hardhat_setBalance", params: [taker.address, "0x56BC75E2D63100000"] });
  const opposite = await call(taker.address);
  await revertTo(s);
  return { fresh, opposite };
}

// ============================================================== adversarial book

async function measureAdversarial(sys: LocalSystem, v: Venue, keeper: string, bookN: number): Promise<Adversarial> {
  const k = 5;
  const id = v.marketId;
  const b = await openBankrupt(sys, v, `adv${bookN}`, ADV_BANKRUPT_ENTRY);
  const ctx = await keeperContext(sys, id, b.address);
  const honest = buildDeleverage(ctx.book, id, b.address, ctx.price, ctx.funding, ctx.delta, k);
  const lastScore = honest.scores[honest.scores.length - 1];
  const kRef = Number(await sys.deleverager.kRef(id));
  // Candidate attacker shorts: entry on a 1-dollar grid above the price, leverage 5x-100x.
  type Cand = { price: bigint; leverage: bigint; size: bigint; score: bigint; margin: bigint };
  const leaves = new Map<number, { hi?: Cand; lo?: Cand }>();
  for (let usd = 2001; usd <= 2400; usd++) {
    const price = BigInt(usd) * WAD;
    const size = mulDivUp(12n * WAD, WAD, price); // just above the 10-unit minimum notional
    for (let l = 500; l <= 10_000; l += 50) {
      const leverage = (BigInt(l) * WAD) / 100n;
      const margin = mulDivUp(size, price, leverage);
      const a = leverageUp(size, margin);
      const s = positionScore(false, a, price, ctx.price, ctx.funding);
      if (s.minusInf) continue;
      const leaf = leafOf(a, price, kRef);
      const eligible = isEligible(false, a, price, ctx.price, ctx.funding, ctx.delta);
      const c: Cand = { price, leverage, size, score: s.value, margin };
      const slot = leaves.get(leaf) ?? {};
      if (!eligible && s.value > lastScore && (!slot.hi || c.score > slot.hi.score)) slot.hi = c;
      if (eligible && s.value < lastScore && (!slot.lo || c.margin < slot.lo.margin)) slot.lo = c;
      leaves.set(leaf, slot);
    }
  }
  const targets = [...leaves.entries()].filter(([, s]) => s.hi && s.lo).map(([leaf, s]) => ({ leaf, ...s }));
  log(`adversarial: delta=${ctx.delta} lastScore=${lastScore}; ${targets.length} attackable leaves`);
  const result: Adversarial = {
    bookN,
    k,
    leaves: targets.length,
    delta: `${(Number(ctx.delta) / 1e18).toFixed(2)} per unit`,
    lastScore: (Number(lastScore) / 1e18).toFixed(2),
    steps: [],
    positionsToExceed: null,
    marginLockedUsd: null,
    perOpenedMember: null,
    openedMembersAtCap: null,
  };
  if (targets.length === 0) {
    result.note = "no leaf admits both an ineligible high scorer and an eligible low scorer";
    return result;
  }
  const attackers = new Set<string>();
  let n = 0;
  const step = Number(env("ADL_BENCH_ADV_STEP") ?? 300);
  const maxPositions = Number(env("ADL_BENCH_ADV_MAX") ?? 6000);
  const specs = (count: number): PositionSpec[] => {
    const out: PositionSpec[] = [];
    if (n === 0) {
      for (const t of targets) {
        const hi = t.hi!;
        out.push({
          wallet: traderWallet("attacker", n++),
          isLong: false,
          size: hi.size,
          price: hi.price,
          leverage: hi.leverage,
        });
      }
    }
    for (let j = 0; j < count; j++) {
      const lo = targets[j % targets.length].lo!;
      out.push({
        wallet: traderWallet("attacker", n++),
        isLong: false,
        size: lo.size,
        price: lo.price,
        leverage: lo.leverage,
      });
    }
    return out;
  };
  while (n < maxPositions) {
    const batch = specs(step);
    await depositFor(
      v,
      v.whale.address,
      batch.reduce((t, s) => t + (s.size * s.price) / WAD, 0n),
    );
    await openAgainstWhale(v, batch, 0n);
    batch.forEach((s) => attackers.add(s.wallet.address));
    await setPrice(v, PRICE);
    const c = await keeperContext(sys, id, b.address);
    const plan = buildDeleverage(c.book, id, b.address, c.price, c.funding, c.delta, k);
    if (plan.counterparties.join() !== honest.counterparties.join()) throw new Error("attackers changed the head");
    const r = await runCall(sys, keeper, id, b.address, plan.counterparties, plan.proof);
    const s: AdversarialStep = {
      attackerPositions: n,
      openedMembers: openedMembers(plan.proof),
      proofNodes: plan.proof.length,
      gas: r.gas,
      status: r.status,
    };
    result.steps.push(s);
    log(`adversarial: ${n} attacker positions, opened ${s.openedMembers}, gas ${r.gas ?? "-"} ${r.status}`);
    if (r.status === "over-cap") {
      result.positionsToExceed = n;
      const margin = c.book
        .positions(id)
        .filter((p) => attackers.has(p.account))
        .reduce((t, p) => t + p.margin, 0n);
      result.marginLockedUsd = Math.round(Number(margin) / 1e18);
      break;
    }
  }
  const pts = result.steps.filter((s) => s.gas !== null);
  if (pts.length >= 2) {
    const [p, q] = [pts[0], pts[pts.length - 1]];
    const slope = (q.gas! - p.gas!) / (q.openedMembers - p.openedMembers);
    const base = p.gas! - slope * p.openedMembers;
    result.perOpenedMember = Math.round(slope);
    result.openedMembersAtCap = Math.floor((Number(TX_GAS_CAP) - base) / slope);
    // Honest members opened alongside stay fixed: attackers at the cap = opened at the cap - honest.
    const honestOpened = q.openedMembers - q.attackerPositions;
    result.positionsAtCap = result.openedMembersAtCap - honestOpened + 1;
    if (result.marginLockedUsd !== null && result.positionsToExceed !== null) {
      result.marginAtCapUsd = Math.round((result.marginLockedUsd * result.positionsAtCap) / result.positionsToExceed);
    }
  }
  return result;
}

// ============================================================== what the index adds to a trade

type Leg = "open" | "increase" | "reduce" | "close" | "flip";

async function legKind(v: Venue, trader: string, delta: bigint): Promise<Leg> {
  const p = await v.clearinghouse.getPosition(v.marketId, trader);
  if (p.size === 0n) return "open";
  const buys = delta > 0n;
  if (buys === p.isLong) return "increase";
  const d = delta < 0n ? -delta : delta;
  return d < p.size ? "reduce" : d === p.size ? "close" : "flip";
}

/**
 * A mature market for the index-cost mix: `count` positions (both sides, 1x-50x, entries within 5%
 * of 2,000, notional 100-10,000) opened against a whale with the rank index set, so the trees'
 * leaves and paths near the mix's bands already hold members.
 */
async function preloadBook(v: Venue, seed: number, count: number): Promise<void> {
  const rand = prng(seed + 2);
  const specs: PositionSpec[] = [];
  for (let i = 0; i < count; i++) {
    const price = BigInt(Math.round(2000 * (0.95 + 0.1 * rand()))) * WAD;
    const leverage = wad(logUniform(rand, 1, 50), 2);
    const size = wad(logUniform(rand, 100, 10_000) / Number(price / WAD), 6);
    specs.push({ wallet: traderWallet("mature", i), isLong: i % 2 === 0, size, price, leverage });
  }
  await depositFor(v, v.whale.address, specs.reduce((t, p) => t + (p.size * p.price) / WAD, 0n) + 1000n * WAD);
  await openAgainstWhale(v, specs, 100n * WAD, (done) => log(`index cost: preloaded ${done} / ${count}`), 1000);
}

/**
 * Overwrites the clearinghouse's `rankIndex` (found by its current value in the low 160 bits of a
 * slot) with `value`, leaving whatever shares the slot unchanged.
 */
async function setRankIndexSlot(clearinghouse: string, current: string, value: bigint): Promise<void> {
  const addressBits = (1n << 160n) - 1n;
  for (let slot = 0; slot < 256; slot++) {
    const word = BigInt(await ethers.provider.getStorage(clearinghouse, slot));
    if ((word & addressBits) !== BigInt(current)) continue;
    await ethers.provider.send("hardhat_setStorageAt", [
      clearinghouse,
      ethers.toQuantity(slot),
      ethers.toBeHex((word & ~addressBits) | value, 32),
    ]);
    return;
  }
  throw new Error("rankIndex slot not found");
}

/**
 * The same trade mix on a fresh deployment, once without and once with the rank index (both
 * branches from one snapshot, so orders, signatures and calldata are identical).
 */
async function measureIndexCost(admin: string, keeper: string, seed: number, preload: number): Promise<IndexCost> {
  // Default (non-zero) fees here: a realistic trade.
  const sys = await deployLocalSystem(await ethers.getSigner(admin), [
    { symbol: SYMBOL, price: PRICE, params: { imr: PARAMS.imr, mmr: PARAMS.mmr } },
  ]);
  const ch = sys.clearinghouse;
  const del = sys.deleverager;
  const market = sys.markets.get(SYMBOL)!;
  const id = market.id;
  const v: Venue = {
    clearinghouse: ch,
    chAddress: await ch.getAddress(),
    token: sys.token,
    aggregator: market.aggregator,
    marketId: id,
    chainId: (await ethers.provider.getNetwork()).chainId,
    admin,
    keeper,
    whale: traderWallet("whale", 1),
  };
  const accounts = 60;
  const warmup = Number(env("ADL_BENCH_WARMUP") ?? 200);
  const trades = Number(env("ADL_BENCH_MIX") ?? 400);
  const wallets = Array.from({ length: accounts }, (_, i) => traderWallet("mix", i));
  await fundAdmin(v, (BigInt(accounts) * 10_000_000n + BigInt(preload) * 20_000n) * 10n ** 6n);
  if (preload > 0) await preloadBook(v, seed, preload);
  for (const w of wallets) await depositFor(v, w.address, 5_000_000n * WAD);
  const base = await snapshot();

  const run = async (): Promise<{ gas: (number | null)[]; kinds: string[] }> => {
    const rand = prng(seed + 1);
    let price = 2000;
    const gas: (number | null)[] = [];
    const kinds: string[] = [];
    for (let t = 0; t < warmup + trades; t++) {
      price = Math.min(2200, Math.max(1800, price * (1 + 0.006 * (rand() - 0.5))));
      const p = BigInt(Math.round(price * 100)) * 10n ** 16n;
      const i = Math.floor(rand() * accounts);
      let j = Math.floor(rand() * (accounts - 1));
      if (j >= i) j += 1;
      const [maker, taker] = [wallets[i], wallets[j]];
      const closing = rand() < 0.25;
      const mp = await ch.getPosition(id, maker.address);
      let size: bigint;
      if (closing && mp.size !== 0n) size = mp.isLong ? -mp.size : mp.size;
      else size = (rand() < 0.5 ? -1n : 1n) * wad(logUniform(rand, 0.02, 3), 6);
      const lm = wad(logUniform(rand, 1, 50), 2);
      const lt = wad(logUniform(rand, 1, 50), 2);
      const fill = size < 0n ? -size : size;
      const kind = `${await legKind(v, maker.address, size)}/${await legKind(v, taker.address, -size)}`;
      await setPrice(v, p);
      const mo = order(v, maker.address, size, p, lm);
      const to = order(v, taker.address, -size, p, lt);
      let g: number | null = null;
      try {
        const r = await match(
          v,
          { order: mo, sig: await sign(v, maker, mo) },
          { order: to, sig: await sign(v, taker, to) },
          fill,
        );
        g = r.status === 1 ? Number(r.gasUsed) : null;
      } catch {
        g = null; // e.g. a remainder below the minimum notional: the same in both branches
      }
      gas.push(g);
      kinds.push(kind);
    }
    return { gas, kinds };
  };
  // Salts must repeat across branches so the orders (and signatures) are identical.
  const saltState = currentSalt();
  // Without the index: the deployment sets it (as every deployment does), so it is cleared from
  // storage for this branch only (the clearinghouse skips reindexing when it is zero); reverting
  // to the snapshot restores it, and both branches see the same book.
  await setRankIndexSlot(v.chAddress, await del.getAddress(), 0n);
  const without = await run();
  await revertTo(base);
  resetSalt(saltState);
  const withIndex = await run();
  for (let t = 0; t < without.kinds.length; t++) {
    if (without.kinds[t] !== withIndex.kinds[t]) throw new Error(`trade ${t} differs between branches`);
  }
  const diffs: { d: number; kind: string; t: number }[] = [];
  for (let t = 0; t < without.gas.length; t++) {
    const [a, b] = [withIndex.gas[t], without.gas[t]];
    if (a !== null && b !== null) diffs.push({ d: a - b, kind: withIndex.kinds[t], t });
  }
  const mix = diffs.filter((x) => x.t >= warmup);
  const warm = diffs.filter((x) => x.t < warmup);
  const ds = mix.map((x) => x.d);
  const worst = mix.reduce((w, x) => (x.d > w.d ? x : w), mix[0]);
  const byKind = new Map<string, number[]>();
  for (const x of mix) byKind.set(x.kind, [...(byKind.get(x.kind) ?? []), x.d]);
  return {
    preloaded: preload,
    accounts,
    warmupTrades: warmup,
    mixTrades: trades,
    measuredTrades: mix.length,
    median: median(ds),
    p90: quantile(ds, 0.9),
    worst: worst.d,
    worstKind: worst.kind,
    mean: Math.round(ds.reduce((t, x) => t + x, 0) / ds.length),
    firstTrade: warm.find((x) => x.t === 0)?.d ?? 0,
    warmupWorst: Math.max(...warm.map((x) => x.d)),
    byKind: [...byKind.entries()]
      .map(([kind, xs]) => ({ kind, trades: xs.length, median: median(xs), worst: Math.max(...xs) }))
      .sort((a, b) => b.trades - a.trades),
  };
}

// ============================================================== main

async function main(): Promise<void> {
  if (env("ADL_BENCH_RENDER_ONLY")) {
    const r = JSON.parse(readFileSync(JSON_PATH, "utf8")) as Results;
    writeSection(DOC_PATH, r);
    console.log(`rendered ${DOC_PATH} from ${JSON_PATH}`);
    return;
  }
  const t0 = Date.now();
  const seed = Number(env("ADL_BENCH_SEED") ?? 7);
  const ns = list(env("ADL_BENCH_NS"), [100, 1000, 10000]).sort((a, b) => a - b);
  const ks = list(env("ADL_BENCH_KS"), [1, 5, 20]);
  const skip = new Set((env("ADL_BENCH_SKIP") ?? "").split(",").map((s) => s.trim()));
  const phases: Record<string, number> = {};
  const [adminSigner, keeperSigner] = await ethers.getSigners();
  const [admin, keeper] = [adminSigner.address, keeperSigner.address];

  let start = await snapshot();
  let indexCost: IndexCost | null = null;
  let indexCostMature: IndexCost | null = null;
  if (!skip.has("index")) {
    const t = Date.now();
    log("index cost: the same trade mix with and without the rank index, fresh market");
    indexCost = await measureIndexCost(admin, keeper, seed, 0);
    log(
      `index cost: median ${indexCost.median}, p90 ${indexCost.p90}, worst ${indexCost.worst} (${indexCost.worstKind})`,
    );
    await revertTo(start);
    start = await snapshot(); // a snapshot is used up by reverting to it
    const preload = Number(env("ADL_BENCH_PRELOAD") ?? 2000);
    log(`index cost: the same mix on a market already holding ${preload} positions`);
    indexCostMature = await measureIndexCost(admin, keeper, seed, preload);
    log(
      `index cost (mature): median ${indexCostMature.median}, p90 ${indexCostMature.p90}, ` +
        `worst ${indexCostMature.worst} (${indexCostMature.worstKind})`,
    );
    for (const k of indexCostMature.byKind)
      log(`  ${k.kind}: ${k.trades} trades, median ${k.median}, worst ${k.worst}`);
    phases["index cost"] = seconds(t);
  }
  await revertTo(start);

  const sys = await deployLocalSystem(adminSigner, [{ symbol: SYMBOL, price: PRICE, params: PARAMS }]);
  await (await sys.deleverager.setBounds(1000, 1_000_000, 1_000_000)).wait();
  const id = sys.markets.get(SYMBOL)!.id;
  const v: Venue = {
    clearinghouse: sys.clearinghouse,
    chAddress: await sys.clearinghouse.getAddress(),
    token: sys.token,
    aggregator: sys.markets.get(SYMBOL)!.aggregator,
    marketId: id,
    chainId: (await ethers.provider.getNetwork()).chainId,
    admin,
    keeper,
    whale: traderWallet("whale", 0),
  };
  await fundAdmin(v, 10n ** 12n * 10n ** 6n);
  const next = bookGenerator(seed);
  const rows: Row[] = [];
  const socialize: { N: number; gas: number; gasOppositeHolder: number }[] = [];
  let adversarial: Adversarial | null = null;
  let sessions: SessionBench | null = null;
  let built = 0;
  for (const N of ns) {
    const t = Date.now();
    const specs = next(N - built);
    log(`book: opening ${specs.length} positions (N = ${N})`);
    await depositFor(v, v.whale.address, specs.reduce((s, p) => s + (p.size * p.price) / WAD, 0n) + 1000n * WAD);
    await openAgainstWhale(v, specs, 100n * WAD, (done) => log(`book: ${built + done} / ${N}`), 1000);
    built = N;
    phases[`build N=${N}`] = seconds(t);
    log(`book: N = ${N} built in ${Math.round(seconds(t))} s`);
    const t2 = Date.now();
    const s0 = await snapshot();
    rows.push(...(await measureBook(sys, v, keeper, N, ks, socialize)));
    await revertTo(s0);
    phases[`calls N=${N}`] = seconds(t2);
    if (!skip.has("adversarial") && adversarial === null && N === ns[0]) {
      const t3 = Date.now();
      const s1 = await snapshot();
      adversarial = await measureAdversarial(sys, v, keeper, N);
      await revertTo(s1);
      phases.adversarial = seconds(t3);
    }
    if (!skip.has("sessions") && sessions === null && N === ns[0]) {
      const t4 = Date.now();
      const s2 = await snapshot();
      sessions = await measureSessions(sys, v, keeper);
      await revertTo(s2);
      phases.sessions = seconds(t4);
    }
  }

  let commit = "unknown";
  try {
    commit = execSync("git rev-parse --short HEAD").toString().trim();
  } catch {
    // not a git checkout
  }
  const results: Results = {
    seed,
    ns,
    ks,
    gasCap: Number(TX_GAS_CAP),
    commit,
    book: {
      side: "shorts against one 1x whale long",
      leverage: "1x-50x",
      entries: "uniform within 20% of 2,000 (1-dollar grid)",
      notional: "log-uniform 100-10,000",
      bankrupt:
        "The bankrupt is a 50x long from 2,050 at 2,000 (about 9 per unit short, the fund empty), " +
        "at most 150 units",
    },
    rows,
    indexCost,
    indexCostMature,
    adversarial,
    socialize,
    targets: evaluateTargets(rows, indexCost, indexCostMature),
    runSeconds: Math.round(seconds(t0)),
    phases: Object.fromEntries(Object.entries(phases).map(([k, x]) => [k, Math.round(x)])),
  };
  writeFileSync(JSON_PATH, JSON.stringify(results, null, 2) + "\n");
  writeSection(DOC_PATH, results);
  if (sessions) writeSessions(JSON_PATH, DOC_PATH, sessions);
  console.log("\n| N | k | proof | total gas | per counterparty | nodes | opened |");
  for (const r of rows) {
    console.log(
      `| ${r.N} | ${r.k} | ${r.proof} | ${r.totalGas ?? "-"}${r.status === "over-cap" ? " (over cap)" : ""} | ` +
        `${r.gasPerCounterparty ?? "-"} | ${r.proofNodes} | ${r.openedMembers} |`,
    );
  }
  for (const t of results.targets)
    console.log(`target: ${t.name} ${t.limit}: ${t.measured} -> ${t.met === null ? "n/a" : t.met ? "met" : "MISSED"}`);
  console.log(`\nwrote ${JSON_PATH} and ${DOC_PATH} in ${results.runSeconds} s`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
