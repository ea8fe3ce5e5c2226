/**
 * Gas of the clearinghouse's hot paths on a steady-state book, measured on the in-process Hardhat
 * network. Writes bench/gas.json ({ commit, measurements: { id: gas }, scenarios, notes }) and the
 * table between the bench-gas markers of docs/gas.md, and prints the table with each target.
 *
 *   npm run bench:gas
 *
 * The steady state: 1,000 positions preloaded against one whale (alternating sides, leverage
 * 1x-50x asked, entries within 5% of 2,000, notional 100-10,000 quote, all from a seeded PRNG),
 * then a funding window that contained an off-index fill is closed (the funding rate is non-zero)
 * and one off-index fill is made in the new window (its premium sums are non-zero). Every measured
 * transaction is the first of its block (the next block's timestamp is set 12 s ahead before it),
 * and every measured fill is 1 quote unit above the index.
 *
 * The script uses the contracts only through their public API and the helpers of lib/ and
 * scripts/bench-adl/chain.ts: no storage slot numbers, no storage writes.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { ethers, network } from "hardhat";
import { Interface, type Signer, type TypedDataDomain } from "ethers";
import { deployLocalSystem, type LocalSystem } from "../lib/local";
import { buildOrder } from "../lib/matching";
import { orderDomain, signOrder, type Order } from "../lib/orders";
import { WAD } from "../lib/math";
import { adlDelta, buildDeleverage, fromEvents } from "../lib/adl";
import {
  SCALE,
  depositFor,
  fundAdmin,
  logUniform,
  openAgainstWhale,
  prng,
  revertTo,
  setPrice,
  snapshot,
  traderWallet,
  wad,
  type PositionSpec,
  type Venue,
} from "./bench-adl/chain";

const PRELOAD = 1000;
const SAMPLES = 16;
const BLOCK_TIME = 12;
const USDC = 10n ** 6n;
const JSON_PATH = "bench/gas.json";
const DOC_PATH = "docs/gas.md";
const ADL_JSON_PATH = "bench/adl-gas.json";
const DOC_BEGIN = "<!-- bench-gas:begin -->";
const DOC_END = "<!-- bench-gas:end -->";

interface Target {
  id: string;
  what: string;
  target: number;
}

/** The reported ids, in table order, with what each measures and its target (gas, at most). */
const TARGETS: Target[] = [
  {
    id: "trade_increase_median",
    what: `matched trade, both positions exist and increase (each at its own leverage); median of ${SAMPLES}`,
    target: 200_000,
  },
  {
    id: "trade_reduce_median",
    what: `matched trade, both positions reduce and stay open; median of ${SAMPLES}`,
    target: 160_000,
  },
  {
    id: "trade_open_two_median",
    what: `matched trade, two new positions against the book; median of ${SAMPLES}`,
    target: 260_000,
  },
  {
    id: "batch5_mean_per_fill",
    what: "matchOrderBatch of 5 increase/increase fills, gas of the transaction / 5",
    target: 130_000,
  },
  { id: "add_margin", what: "addMargin to an open position", target: 60_000 },
  {
    id: "liquidation_full",
    what: "full liquidation of a solvent but liquidatable position (liquidator already long)",
    target: 160_000,
  },
  {
    id: "liquidation_bankrupt_covered",
    what: "full liquidation of a bankrupt position, the insurance fund covers the deficit",
    target: 180_000,
  },
  {
    id: "index_per_trade_median",
    what: "gas of the calls into the ADL rank index within each increase trade; median",
    target: 20_000,
  },
  {
    id: "adl_per_counterparty",
    what: "deleverage: (gas with 5 counterparties - gas with 1) / 4, small book",
    target: 30_000,
  },
  {
    id: "adl_n10000_k5",
    what: `deleverage, N = 10,000, k = 5, tree proof (copied from ${ADL_JSON_PATH}, written by npm run bench:adl)`,
    target: 900_000,
  },
  {
    id: "socialize_loss",
    what: `socializeLoss by its deadline trigger, fresh caller, N = 10,000 (copied from ${ADL_JSON_PATH}, with every N beside it: O(1) in N)`,
    target: 250_000,
  },
];

const measurements: Record<string, number | null> = {};
const scenarios: Record<string, Record<string, unknown>> = {};
const profiles: Record<string, Profile> = {};
const notes: string[] = [];

// ============================================================== chain plumbing

const rpc = <T = unknown>(method: string, params: unknown[] = []): Promise<T> =>
  network.provider.request({ method, params }) as Promise<T>;

interface Sent {
  hash: string;
  gasUsed: number;
}

/** Sends a transaction from an unlocked node account (automine: its own block); throws unless it succeeds. */
async function sendTx(what: string, from: string, to: string, data: string, gas = 12_000_000n): Promise<Sent> {
  let hash: string;
  try {
    hash = await rpc<string>("eth_sendTransaction", [{ from, to, data, gas: ethers.toQuantity(gas) }]);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message.split("\n")[0]}`);
  }
  const r = await rpc<{ status: string; gasUsed: string }>("eth_getTransactionReceipt", [hash]);
  if (Number(r.status) !== 1) throw new Error(`${what}: reverted`);
  return { hash, gasUsed: Number(r.gasUsed) };
}

/** True if the call would succeed now (eth_call on the latest state). */
async function wouldSucceed(from: string, to: string, data: string): Promise<boolean> {
  try {
    await rpc("eth_call", [{ from, to, data }, "latest"]);
    return true;
  } catch {
    return false;
  }
}

async function latestTimestamp(): Promise<number> {
  return Number((await rpc<{ timestamp: string }>("eth_getBlockByNumber", ["latest", false])).timestamp);
}

/**
 * Sends a measured transaction as the first of a new block, BLOCK_TIME seconds after the latest.
 * With `keep: false` the chain is reverted to before it afterwards.
 */
async function measureTx(what: string, from: string, to: string, data: string, keep = true): Promise<Sent> {
  const snap = keep ? undefined : await snapshot();
  await rpc("evm_setNextBlockTimestamp", [(await latestTimestamp()) + BLOCK_TIME]);
  const sent = await sendTx(what, from, to, data);
  if (snap) await revertTo(snap);
  return sent;
}

// ============================================================== index gas from the trace

interface Step {
  op: string;
  gas: number;
  gasCost: number;
  depth: number;
  stack?: string[];
}

const CALL_OPS = new Set(["CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"]);

/**
 * Gas spent in calls to `target` within transaction `hash`, from the default structLog trace
 * (Hardhat 2 supports no other tracer, so callTracer is not available; the sum below is what
 * callTracer's frames would give, plus the CALL opcode's own charge). For every outermost call
 * into `target` it counts the gas before the CALL minus the gas after it returns: the callee's
 * whole execution (including anything it calls) plus the CALL's own charge (EIP-2929 account
 * access, 2,600 cold or 100 warm, and memory expansion). Not counted: the caller's work to encode
 * the arguments and decode the result, and storage refunds (settled at the end of the transaction).
 */
async function gasIntoTarget(hash: string, target: string): Promise<{ calls: number; gas: number }> {
  const trace = await rpc<{ structLogs: Step[] }>("debug_traceTransaction", [
    hash,
    { disableMemory: true, disableStorage: true },
  ]);
  const steps = trace.structLogs;
  const t = BigInt(target);
  const open: { idx: number; counted: boolean }[] = [];
  let calls = 0;
  let gas = 0;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    const n = steps[i + 1];
    if (!n) break;
    if (n.depth > s.depth) {
      let counted = false;
      if (CALL_OPS.has(s.op) && s.stack && s.stack.length >= 2) {
        const to = BigInt("0x" + s.stack[s.stack.length - 2].replace(/^0x/, ""));
        counted = to === t && !open.some((o) => o.counted);
      }
      open.push({ idx: i, counted });
    } else if (n.depth < s.depth) {
      const o = open.pop();
      if (o?.counted) {
        calls++;
        gas += steps[o.idx].gas - n.gas;
      }
    }
  }
  return { calls, gas };
}

/** The storage, log and call classes of one transaction, summed over all call depths. */
interface Profile {
  gasUsed: number;
  intrinsic: number; // 21,000 + 16 per non-zero and 4 per zero calldata byte
  coldSloads: number;
  warmSloads: number;
  freshSstores: number; // 0 -> x: 20,000 (+2,100 if cold)
  updateSstores: number; // x -> y: 2,900 (+2,100 if cold)
  otherSstores: number; // no-op or dirty: 100 (+2,100 if cold)
  logs: number;
  logGas: number;
  calls: number;
  storageGas: number;
}

/**
 * Classifies every SLOAD, SSTORE, LOG and CALL of transaction `hash` by its EIP-2929/2200 charge,
 * read from the default trace. This is the part of a trade's gas fixed by which slots it touches
 * and which events it emits, whatever code touches them: the floor of the feature set.
 */
async function profileOf(hash: string): Promise<Profile> {
  const trace = await rpc<{ gas: number; structLogs: Step[] }>("debug_traceTransaction", [
    hash,
    { disableMemory: true, disableStorage: true, disableStack: true },
  ]);
  const tx = await ethers.provider.getTransaction(hash);
  const data = ethers.getBytes(tx!.data);
  const p: Profile = {
    gasUsed: trace.gas,
    intrinsic: 21_000 + data.reduce((g, byte) => g + (byte === 0 ? 4 : 16), 0),
    coldSloads: 0,
    warmSloads: 0,
    freshSstores: 0,
    updateSstores: 0,
    otherSstores: 0,
    logs: 0,
    logGas: 0,
    calls: 0,
    storageGas: 0,
  };
  for (const s of trace.structLogs) {
    if (s.op === "SLOAD") {
      if (s.gasCost >= 2100) p.coldSloads++;
      else p.warmSloads++;
      p.storageGas += s.gasCost;
    } else if (s.op === "SSTORE") {
      if (s.gasCost >= 20000) p.freshSstores++;
      else if (s.gasCost >= 2900) p.updateSstores++;
      else p.otherSstores++;
      p.storageGas += s.gasCost;
    } else if (s.op.startsWith("LOG")) {
      p.logs++;
      p.logGas += s.gasCost;
    } else if (CALL_OPS.has(s.op)) {
      p.calls++;
    }
  }
  return p;
}

/** The sample whose gas is the (lower) median, so its profile stands for the median trade. */
function medianIndex(xs: number[]): number {
  const order = xs.map((x, i) => [x, i]).sort((a, b) => a[0] - b[0]);
  return order[Math.floor((order.length - 1) / 2)][1];
}

// ============================================================== orders

const FAR = 2n ** 63n;
/** IClearinghouseTypes.Order as an ABI tuple. */
const ORDER_TUPLE =
  "(address trader, bytes32 marketId, int256 size, uint256 limitPrice, uint256 leverage, uint256 salt, uint64 expiry, bool reduceOnly, bool makerAllowed, address sender)";
/** Explicit salts: identical calldata (hence identical intrinsic gas) on every run. */
let saltCounter = 1_000_000_000n;

interface Book {
  sys: LocalSystem;
  v: Venue;
  id: string;
  ch: string;
  domain: TypedDataDomain;
  keeper: string;
}

/** A fresh system with one ETH-USD market at 2,000 and the venue the book helpers trade on. */
async function deployBook(admin: string, keeper: string, whaleLabel: number): Promise<Book> {
  const sys = await deployLocalSystem(await ethers.getSigner(admin), [{ symbol: "ETH-USD", price: 2000n * WAD }]);
  const ch = await sys.clearinghouse.getAddress();
  const id = sys.markets.get("ETH-USD")!.id;
  const chainId = (await ethers.provider.getNetwork()).chainId;
  const v: Venue = {
    clearinghouse: sys.clearinghouse,
    chAddress: ch,
    token: sys.token,
    aggregator: sys.markets.get("ETH-USD")!.aggregator,
    marketId: id,
    chainId,
    admin,
    keeper,
    whale: traderWallet("whale", whaleLabel),
  };
  return { sys, v, id, ch, domain: orderDomain(chainId, ch), keeper };
}

function orderFor(b: Book, trader: string, size: bigint, price: bigint, leverage: bigint): Order {
  saltCounter += 1n;
  return buildOrder(trader, { marketId: b.id, size, limitPrice: price, leverage, salt: saltCounter, expiry: FAR });
}

interface Leg {
  signer: Signer;
  leverage: bigint;
}

/** The maker buys (size > 0) or sells (size < 0) `|size|` at `price`; the taker takes the other side. */
async function matchParts(
  b: Book,
  maker: Leg,
  taker: Leg,
  size: bigint,
  price: bigint,
): Promise<[Order, string, Order, string, bigint]> {
  const mo = orderFor(b, await maker.signer.getAddress(), size, price, maker.leverage);
  const to = orderFor(b, await taker.signer.getAddress(), -size, price, taker.leverage);
  return [
    mo,
    await signOrder(maker.signer, b.domain, mo),
    to,
    await signOrder(taker.signer, b.domain, to),
    size < 0n ? -size : size,
  ];
}

async function matchData(b: Book, maker: Leg, taker: Leg, size: bigint, price: bigint): Promise<string> {
  return b.sys.clearinghouse.interface.encodeFunctionData(
    "matchOrders",
    await matchParts(b, maker, taker, size, price),
  );
}

/** An unmeasured match (setup). */
async function trade(b: Book, what: string, maker: Leg, taker: Leg, size: bigint, price: bigint): Promise<void> {
  await sendTx(what, b.keeper, b.ch, await matchData(b, maker, taker, size, price));
}

const usd = (n: number): bigint => BigInt(Math.round(n * 100)) * 10n ** 16n;
const lev = (n: number): bigint => BigInt(Math.round(n * 100)) * 10n ** 16n;

/** Leverage of a position at `price`: size * price / margin (so an increase at it keeps the ratio). */
async function leverageOf(b: Book, account: string, price: bigint): Promise<bigint> {
  const p = await b.sys.clearinghouse.getPosition(b.id, account);
  return (BigInt(p.size) * price) / BigInt(p.margin);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
}

// ============================================================== main

async function main(): Promise<void> {
  const t0 = Date.now();
  const phase = (name: string) => console.log(`[${Math.round((Date.now() - t0) / 1000)} s] ${name}`);
  const signers = await ethers.getSigners();
  const [admin, keeper, alice, bob, erin, frank, ivan, judy, kate, liq, staker] = signers;
  const b = await deployBook(admin.address, keeper.address, 1);
  const { sys, v, id, ch } = b;
  const deleverager = await sys.deleverager.getAddress();
  const chI = sys.clearinghouse.interface;

  // ---------------------------------------------------------------- steady-state book
  const rand = prng(11);
  const specs: PositionSpec[] = [];
  for (let i = 0; i < PRELOAD; i++) {
    const price = BigInt(Math.round(2000 * (0.95 + 0.1 * rand()))) * WAD;
    const leverage = wad(logUniform(rand, 1, 50), 2);
    const size = wad(logUniform(rand, 100, 10_000) / Number(price / WAD), 6);
    specs.push({ wallet: traderWallet("perf2", i), isLong: i % 2 === 0, size, price, leverage });
  }
  await fundAdmin(v, BigInt(PRELOAD) * 20_000n * USDC + 100_000_000n * USDC);
  await depositFor(v, v.whale.address, specs.reduce((t, p) => t + (p.size * p.price) / WAD, 0n) + 1000n * WAD);
  await openAgainstWhale(v, specs, 1000n * WAD, (n) => phase(`preloaded ${n} positions`), 250);
  phase(`preloaded ${PRELOAD} positions`);
  for (const a of [alice, bob, erin, frank, ivan, judy, kate, liq]) await depositFor(v, a.address, 100_000n * WAD);

  // Funding: an off-index fill, then its window closes exactly at its end (the rate becomes
  // non-zero), then one off-index fill in the new window (its premium sums become non-zero).
  await setPrice(v, usd(2000));
  await trade(
    b,
    "off-index fill",
    { signer: ivan, leverage: lev(3) },
    { signer: judy, leverage: lev(8) },
    3n * WAD,
    usd(2001),
  );
  const params = await sys.clearinghouse.marketParams(id);
  const before = await sys.clearinghouse.marketState(id);
  const windowEnd = Number(before.windowStart) + Number(params.fundingWindow);
  await rpc("evm_setNextBlockTimestamp", [Math.max(windowEnd, (await latestTimestamp()) + 1)]);
  await setPrice(v, usd(2000));
  await (await sys.clearinghouse.accrueFunding(id)).wait();
  await trade(
    b,
    "fill in the new window",
    { signer: ivan, leverage: lev(3) },
    { signer: judy, leverage: lev(8) },
    WAD,
    usd(2001),
  );
  const st = await sys.clearinghouse.marketState(id);
  if (st.fundingRate === 0n || st.premiumTimesSize === 0n)
    throw new Error(`funding not running: rate ${st.fundingRate}, premium sum ${st.premiumTimesSize}`);
  const fundingWindowStart = st.windowStart;
  phase(
    `funding running: rate ${st.fundingRate}/s, F ${st.cumulativeFunding}, window premium sum ${st.premiumTimesSize}`,
  );

  const longs = specs.filter((s) => s.isLong);
  const shorts = specs.filter((s) => !s.isLong);
  const pick = <T>(r: () => number, xs: T[]): T => xs[Math.floor(r() * xs.length)];

  // ---------------------------------------------------------------- increase / reduce samples
  /**
   * SAMPLES trades between a random preloaded long and short, each at a fresh index within 1% of
   * 2,000 and filled 1 above it, 5-30% of the smaller position: `increase` (the long buys, the
   * short sells, each at its own current leverage) or `reduce` (the opposite; both stay open).
   * A pair whose trade would not pass (e.g. a position liquidatable at the drawn index) is redrawn.
   */
  async function samplePairs(kind: "increase" | "reduce", seed: number): Promise<{ gas: number[]; hashes: string[] }> {
    const r = prng(seed);
    const gas: number[] = [];
    const hashes: string[] = [];
    let skipped = 0;
    while (gas.length < SAMPLES) {
      if (skipped > 4 * SAMPLES) throw new Error(`${kind}: too many pairs skipped`);
      const L = pick(r, longs);
      const S = pick(r, shorts);
      const index = BigInt(Math.round(2000 * (0.99 + 0.02 * r()))) * WAD;
      const price = index + WAD;
      const smaller = L.size < S.size ? L.size : S.size;
      const size = (smaller * BigInt(5 + Math.floor(25 * r()))) / 100n;
      if (kind === "increase") {
        for (const x of [L, S]) await depositFor(v, x.wallet.address, 20_000n * WAD);
      }
      await setPrice(v, index);
      const legL = { signer: L.wallet, leverage: await leverageOf(b, L.wallet.address, price) };
      const legS = { signer: S.wallet, leverage: await leverageOf(b, S.wallet.address, price) };
      // Increase: the long buys (maker) from the short. Reduce: the short buys (maker) from the long.
      const data =
        kind === "increase" ? await matchData(b, legL, legS, size, price) : await matchData(b, legS, legL, size, price);
      if (!(await wouldSucceed(b.keeper, ch, data))) {
        skipped++;
        continue;
      }
      const sent = await measureTx(`${kind} sample`, b.keeper, ch, data);
      gas.push(sent.gasUsed);
      hashes.push(sent.hash);
    }
    if (skipped)
      notes.push(`${kind} samples: ${skipped} drawn pairs skipped (the trade would revert at the drawn index)`);
    return { gas, hashes };
  }

  const inc = await samplePairs("increase", 23);
  measurements.trade_increase_median = median(inc.gas);
  scenarios.trade_increase_median = { samples: inc.gas };
  phase(`increase: median ${measurements.trade_increase_median}`);

  // The rank index's share of each increase trade: the calls from the clearinghouse into the
  // deleverager (IRankIndex.reindex), read from the transaction's trace.
  const indexGas: number[] = [];
  const indexCalls: number[] = [];
  for (const h of inc.hashes) {
    const g = await gasIntoTarget(h, deleverager);
    indexGas.push(g.gas);
    indexCalls.push(g.calls);
  }
  if (indexCalls.every((n) => n === 0)) {
    // The index is no longer a separate contract: its cost cannot be told apart by call frames.
    measurements.index_per_trade_median = null;
    notes.push(
      "index_per_trade_median: no increase trade calls the deleverager, so the rank index is not an external call and its gas cannot be separated by call frames; not measured",
    );
  } else {
    measurements.index_per_trade_median = median(indexGas);
  }
  scenarios.index_per_trade_median = { samples: indexGas, callsPerTrade: indexCalls };
  phase(`index per increase trade: median ${measurements.index_per_trade_median}`);

  const red = await samplePairs("reduce", 29);
  measurements.trade_reduce_median = median(red.gas);
  const redIndexCalls: number[] = [];
  for (const h of red.hashes) redIndexCalls.push((await gasIntoTarget(h, deleverager)).calls);
  scenarios.trade_reduce_median = { samples: red.gas, indexCallsPerTrade: redIndexCalls };
  profiles.trade_increase = await profileOf(inc.hashes[medianIndex(inc.gas)]);
  profiles.trade_reduce = await profileOf(red.hashes[medianIndex(red.gas)]);
  phase(`reduce: median ${measurements.trade_reduce_median}`);

  // ---------------------------------------------------------------- two new positions
  {
    const r = prng(31);
    const gas: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const long = traderWallet("bench-gas-open", 2 * i);
      const short = traderWallet("bench-gas-open", 2 * i + 1);
      for (const w of [long, short]) await depositFor(v, w.address, 20_000n * WAD);
      const index = BigInt(Math.round(2000 * (0.99 + 0.02 * r()))) * WAD;
      const price = index + WAD;
      const size = wad(logUniform(r, 100, 10_000) / Number(price / WAD), 6);
      const lm = wad(logUniform(r, 1, 50), 2);
      const lt = wad(logUniform(r, 1, 50), 2);
      await setPrice(v, index);
      const data = await matchData(b, { signer: long, leverage: lm }, { signer: short, leverage: lt }, size, price);
      gas.push((await measureTx("open two", b.keeper, ch, data)).gasUsed);
    }
    measurements.trade_open_two_median = median(gas);
    scenarios.trade_open_two_median = { samples: gas };
    phase(`open two: median ${measurements.trade_open_two_median}`);
  }

  // ---------------------------------------------------------------- add margin
  await setPrice(v, usd(2010));
  await trade(
    b,
    "alice/bob open",
    { signer: alice, leverage: lev(5) },
    { signer: bob, leverage: lev(5) },
    2n * WAD,
    usd(2011),
  );
  {
    const leafBefore = (await sys.clearinghouse.getPosition(id, alice.address)).leaf;
    const sent = await measureTx("addMargin", alice.address, ch, chI.encodeFunctionData("addMargin", [id, 100n * WAD]));
    const leafAfter = (await sys.clearinghouse.getPosition(id, alice.address)).leaf;
    measurements.add_margin = sent.gasUsed;
    scenarios.add_margin = {
      scenario: "100 quote to a 2-unit 5x long opened at 2,011 (index 2,010)",
      leafBefore: Number(leafBefore),
      leafAfter: Number(leafAfter),
    };
    phase(`addMargin: ${sent.gasUsed} (leaf ${leafBefore} -> ${leafAfter})`);
  }

  // ---------------------------------------------------------------- batched match
  {
    // Not in the typechain types yet: a hand-written fragment, used only if the compiled
    // clearinghouse has a function of exactly this signature.
    const batchIface = new Interface([
      `function matchOrderBatch((${ORDER_TUPLE} maker, bytes makerSignature, ${ORDER_TUPLE} taker, bytes takerSignature, uint256 fillSize)[] matches)`,
    ]);
    const wanted = batchIface.getFunction("matchOrderBatch")!;
    const chIface: Interface = chI;
    const fn = chIface.getFunction("matchOrderBatch");
    if (fn === null || fn.selector !== wanted.selector) {
      measurements.batch5_mean_per_fill = null;
      const line =
        fn === null
          ? "batch5_mean_per_fill: the clearinghouse has no matchOrderBatch entry point; not measured"
          : `batch5_mean_per_fill: matchOrderBatch has another signature (${fn.format("sighash")}); not measured`;
      console.log(line);
      notes.push(line);
    } else {
      // Five increase/increase fills between distinct preloaded pairs, at index + 1, each leg at its own leverage.
      const r = prng(37);
      const index = usd(2000);
      const price = index + WAD;
      await setPrice(v, index);
      const matches: [Order, string, Order, string, bigint][] = [];
      const used = new Set<string>();
      let tries = 0;
      while (matches.length < 5) {
        if (++tries > 200) throw new Error("batch: no five passing pairs");
        const L = pick(r, longs);
        const S = pick(r, shorts);
        if (used.has(L.wallet.address) || used.has(S.wallet.address)) continue;
        const smaller = L.size < S.size ? L.size : S.size;
        const size = (smaller * BigInt(5 + Math.floor(25 * r()))) / 100n;
        for (const x of [L, S]) await depositFor(v, x.wallet.address, 20_000n * WAD);
        const legL = { signer: L.wallet, leverage: await leverageOf(b, L.wallet.address, price) };
        const legS = { signer: S.wallet, leverage: await leverageOf(b, S.wallet.address, price) };
        const parts = await matchParts(b, legL, legS, size, price);
        if (!(await wouldSucceed(b.keeper, ch, chI.encodeFunctionData("matchOrders", parts)))) continue;
        used.add(L.wallet.address);
        used.add(S.wallet.address);
        matches.push(parts);
      }
      const data = batchIface.encodeFunctionData("matchOrderBatch", [matches]);
      const sent = await measureTx("matchOrderBatch", b.keeper, ch, data);
      measurements.batch5_mean_per_fill = Math.round(sent.gasUsed / 5);
      scenarios.batch5_mean_per_fill = { batchGas: sent.gasUsed, fills: 5 };
      phase(`batch of 5: ${sent.gasUsed} (${measurements.batch5_mean_per_fill} per fill)`);
    }
  }

  const fundingNow = await sys.clearinghouse.marketState(id);
  if (fundingNow.windowStart !== fundingWindowStart)
    notes.push("a funding window closed during the trade measurements: one of them paid for closing it");

  // ---------------------------------------------------------------- liquidations
  // erin long 1 at 5x (at 1,617 its equity is about 0.5% of notional, under the 1% at which the
  // capped size is the whole position; solvent); kate long 1 at 10x (bankrupt at 1,617). The fund
  // holds 50,000; the liquidator already holds a long opened at the new price.
  await trade(b, "erin opens", { signer: erin, leverage: lev(5) }, { signer: frank, leverage: lev(5) }, WAD, usd(2011));
  await trade(
    b,
    "kate opens",
    { signer: kate, leverage: lev(10) },
    { signer: frank, leverage: lev(5) },
    WAD,
    usd(2011),
  );
  const fund = sys.insuranceFund;
  await (await sys.token.mint(staker.address, 50_000n * USDC)).wait();
  await (await sys.token.connect(staker).approve(await fund.getAddress(), ethers.MaxUint256)).wait();
  await (await fund.connect(staker).deposit(50_000n * USDC, staker.address)).wait();
  await setPrice(v, usd(1617));
  await trade(
    b,
    "liquidator opens",
    { signer: liq, leverage: lev(5) },
    { signer: ivan, leverage: lev(5) },
    WAD,
    usd(1617),
  );
  {
    const size = (await sys.clearinghouse.getPosition(id, erin.address)).size;
    const max = await sys.lens.maxLiquidationSize(id, erin.address);
    if (max !== size) throw new Error(`erin: capped size ${max} is not the whole position ${size}`);
    if (await sys.lens.isBankrupt(id, erin.address)) throw new Error("erin is bankrupt");
    const data = chI.encodeFunctionData("liquidate", [id, erin.address, size, lev(5)]);
    measurements.liquidation_full = (await measureTx("liquidate erin", liq.address, ch, data)).gasUsed;
    scenarios.liquidation_full = {
      scenario: "1-unit 5x long from 2,011 at index 1,617, taken whole by a liquidator already long",
    };
  }
  {
    const size = (await sys.clearinghouse.getPosition(id, kate.address)).size;
    if (!(await sys.lens.isBankrupt(id, kate.address))) throw new Error("kate is solvent");
    const data = chI.encodeFunctionData("liquidate", [id, kate.address, size, lev(5)]);
    measurements.liquidation_bankrupt_covered = (await measureTx("liquidate kate", liq.address, ch, data)).gasUsed;
    scenarios.liquidation_bankrupt_covered = {
      scenario: "1-unit 10x long from 2,011 at index 1,617 (bankrupt), fund of 50,000 covers, liquidator already long",
    };
  }
  phase(`liquidations: ${measurements.liquidation_full}, ${measurements.liquidation_bankrupt_covered}`);

  // ---------------------------------------------------------------- ADL
  await adl(signers);
  phase(`deleverage: ${measurements.adl_per_counterparty} per extra counterparty`);

  // ---------------------------------------------------------------- ADL at N = 10,000 (bench:adl)
  measurements.adl_n10000_k5 = null;
  if (existsSync(ADL_JSON_PATH)) {
    const adlRun = JSON.parse(readFileSync(ADL_JSON_PATH, "utf8")) as {
      commit?: string;
      rows?: { N: number; k: number; proof: string; totalGas: number | null }[];
    };
    const row = adlRun.rows?.find((x) => x.N === 10_000 && x.k === 5 && x.proof === "tree");
    measurements.adl_n10000_k5 = row?.totalGas ?? null;
    scenarios.adl_n10000_k5 = { source: ADL_JSON_PATH, measuredAtCommit: adlRun.commit ?? null };
    if (row?.totalGas != null)
      notes.push(
        `adl_n10000_k5 is not measured by this run: copied from ${ADL_JSON_PATH} (commit ${adlRun.commit ?? "unknown"})`,
      );
  }
  if (measurements.adl_n10000_k5 === null)
    notes.push(`adl_n10000_k5: no N = 10,000, k = 5 tree row in ${ADL_JSON_PATH}`);

  // ---------------------------------------------------------------- socialized loss (bench:adl)
  measurements.socialize_loss = null;
  if (existsSync(ADL_JSON_PATH)) {
    const adlRun = JSON.parse(readFileSync(ADL_JSON_PATH, "utf8")) as {
      commit?: string;
      socialize?: { N: number; gas: number; gasOppositeHolder?: number }[];
    };
    const byN = Object.fromEntries((adlRun.socialize ?? []).map((x) => [x.N, x.gas]));
    const oppositeByN = Object.fromEntries((adlRun.socialize ?? []).map((x) => [x.N, x.gasOppositeHolder ?? null]));
    measurements.socialize_loss = byN[10_000] ?? null;
    scenarios.socialize_loss = {
      source: ADL_JSON_PATH,
      measuredAtCommit: adlRun.commit ?? null,
      gasByBookSize: byN,
      gasByBookSizeCallerAlreadyShort: oppositeByN,
    };
  }
  if (measurements.socialize_loss === null) notes.push(`socialize_loss: no N = 10,000 figure in ${ADL_JSON_PATH}`);

  // ---------------------------------------------------------------- report
  const seconds = Math.round((Date.now() - t0) / 1000);
  const commit = git(["rev-parse", "HEAD"]);
  const dirty = git(["status", "--porcelain", "--", "contracts", "lib", "scripts"]) !== "";
  if (dirty) notes.push("measured with uncommitted changes under contracts/, lib/ or scripts/");
  notes.push(`run time ${seconds} s`);
  const ordered: Record<string, number | null> = {};
  for (const t of TARGETS) ordered[t.id] = measurements[t.id] ?? null;
  const described: Record<string, Record<string, unknown>> = {};
  for (const t of TARGETS) described[t.id] = { what: t.what, target: t.target, ...scenarios[t.id] };
  writeFileSync(
    JSON_PATH,
    JSON.stringify({ commit, measurements: ordered, scenarios: described, profiles, notes }, null, 2) + "\n",
  );

  const status = (t: Target): string => {
    const m = ordered[t.id];
    return m === null ? "not measured" : m <= t.target ? "met" : "missed";
  };
  const fmt = (n: number | null) => (n === null ? "-" : n.toLocaleString("en-US"));
  console.log(`\n${"id".padEnd(30)} ${"measured".padStart(10)} ${"target".padStart(10)}  result`);
  for (const t of TARGETS)
    console.log(
      `${t.id.padEnd(30)} ${fmt(ordered[t.id]).padStart(10)} ${("<= " + fmt(t.target)).padStart(10)}  ${status(t)}`,
    );
  for (const n of notes) console.log(`note: ${n}`);

  const table = [
    `Measured by \`npm run bench:gas\` at commit \`${commit.slice(0, 7)}\`${dirty ? " (with uncommitted changes)" : ""}, run time ${seconds} s.`,
    "",
    `Steady-state book: ${PRELOAD.toLocaleString("en-US")} positions preloaded (alternating sides, 1x-50x asked, entries within 5% of 2,000, notional 100-10,000 quote, seeded PRNG); funding running (a window that held an off-index fill has closed, so the rate is non-zero, and one off-index fill has been made in the new window). Each measured transaction is the first of its block and every measured fill is 1 above the index. \`index_per_trade_median\` is the gas of the calls from the clearinghouse into the deleverager (the rank index) in each increase trade, read from the trace: the callee's whole execution plus the CALL's own charge, before refunds, without the caller's argument encoding. \`adl_per_counterparty\` is measured on a separate small book (8 shorts of 1 unit; a 10x long of 1 and one of 5 gapped to bankruptcy beyond what the fund, holding only fee income, can pay).`,
    "",
    "| id | what it measures | target | measured | |",
    "| --- | --- | ---: | ---: | --- |",
    ...TARGETS.map(
      (t) =>
        `| \`${t.id}\` | ${t.what} | <= ${fmt(t.target)} | ${fmt(ordered[t.id])} | ${status(t) === "missed" ? "**missed**" : status(t)} |`,
    ),
    ...(notes.length > 1 ? ["", ...notes.slice(0, -1).map((n) => `- ${n}`)] : []),
    "",
    "Where the median trades' gas goes, by EIP-2929/2200 charge class over every call depth (the trade",
    "nearest the median; gas before refunds as the trace reports it; `rest` is everything else: calls,",
    "hashing, signature recovery, ABI work and arithmetic):",
    "",
    "| trade | gas used | intrinsic | cold SLOAD | warm SLOAD | SSTORE 0->x | SSTORE x->y | SSTORE other | storage gas | LOG (gas) | calls | rest |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...Object.entries(profiles).map(
      ([k, p]) =>
        `| ${k} | ${fmt(p.gasUsed)} | ${fmt(p.intrinsic)} | ${p.coldSloads} | ${p.warmSloads} | ${p.freshSstores} | ${p.updateSstores} | ${p.otherSstores} | ${fmt(p.storageGas)} | ${p.logs} (${fmt(p.logGas)}) | ${p.calls} | ${fmt(p.gasUsed - p.intrinsic - p.storageGas - p.logGas)} |`,
    ),
  ].join("\n");
  const doc = readFileSync(DOC_PATH, "utf8");
  const i = doc.indexOf(DOC_BEGIN);
  const j = doc.indexOf(DOC_END);
  if (i < 0 || j < i) throw new Error(`${DOC_PATH} has no ${DOC_BEGIN} ... ${DOC_END} block`);
  writeFileSync(DOC_PATH, doc.slice(0, i + DOC_BEGIN.length) + "\n" + table + "\n" + doc.slice(j));
  console.log(`\nwrote ${JSON_PATH} and ${DOC_PATH} (${seconds} s)`);
}

function git(args: string[]): string {
  return execFileSync("git", args, { encoding: "utf8" }).trim();
}

/**
 * A small book on a separate deployment: shorts of 1 unit at 2x-9x; B1 long 1 and B5 long 5 at
 * 10x; a 1x whale long takes the rest; all at the index, then a gap to 1,700 makes B1 and B5
 * bankrupt beyond what the (nearly empty) fund can pay. Deleverage B1 (1 counterparty) and B5
 * (5 counterparties) from the same state, each the first transaction of its block.
 */
async function adl(signers: Awaited<ReturnType<typeof ethers.getSigners>>): Promise<void> {
  const [admin, keeper, b1, b5, whale, ...rest] = signers;
  const shorts = rest.slice(0, 8);
  const fromBlock = await ethers.provider.getBlockNumber();
  const b = await deployBook(admin.address, keeper.address, 2);
  const { sys, v, id } = b;
  const del = await sys.deleverager.getAddress();
  await fundAdmin(v, 10_000_000n * USDC);
  for (const t of [b1, b5, whale, ...shorts]) await depositFor(v, t.address, 100_000n * WAD);
  const P = 2000n * WAD;
  await trade(b, "B1 opens", { signer: b1, leverage: lev(10) }, { signer: shorts[0], leverage: lev(2) }, WAD, P);
  for (let i = 1; i <= 5; i++)
    await trade(b, "B5 opens", { signer: b5, leverage: lev(10) }, { signer: shorts[i], leverage: lev(i + 2) }, WAD, P);
  for (let i = 6; i < 8; i++)
    await trade(
      b,
      "whale opens",
      { signer: whale, leverage: lev(1) },
      { signer: shorts[i], leverage: lev(i + 2) },
      WAD,
      P,
    );
  await setPrice(v, 1700n * WAD);
  const gas: Record<number, number> = {};
  const proofs: Record<number, number> = {};
  for (const [k, bankrupt] of [
    [1, b1],
    [5, b5],
  ] as const) {
    const book = await fromEvents(
      sys.clearinghouse,
      sys.deleverager,
      fromBlock,
      await ethers.provider.getBlockNumber(),
    );
    const [price] = await sys.oracle.getPrice(id, true);
    const funding = await sys.lens.currentFunding(id);
    const available = (await sys.insuranceFund.available()) * SCALE + (await sys.clearinghouse.pendingFundFees());
    const d = adlDelta(book, id, bankrupt.address, price, funding, available);
    if (d.delta === 0n) throw new Error(`ADL: ${bankrupt.address} is not beyond the fund`);
    const plan = buildDeleverage(book, id, bankrupt.address, price, funding, d.delta, 64);
    if (plan.counterparties.length !== k)
      throw new Error(`ADL: ${plan.counterparties.length} counterparties, expected ${k}`);
    const data = sys.deleverager.interface.encodeFunctionData("deleverage", [
      id,
      bankrupt.address,
      plan.counterparties,
      plan.proof,
    ]);
    gas[k] = (await measureTx(`deleverage k=${k}`, keeper.address, del, data, false)).gasUsed;
    proofs[k] = plan.proof.length;
  }
  measurements.adl_per_counterparty = Math.round((gas[5] - gas[1]) / 4);
  scenarios.adl_per_counterparty = {
    gasWith1: gas[1],
    gasWith5: gas[5],
    proofNodesWith1: proofs[1],
    proofNodesWith5: proofs[5],
  };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
