/**
 * Model-based property test of the Clearinghouse (docs/mechanism.md sections 2, 3 and 5).
 *
 * fast-check draws seeded random sequences of steps: deposits, withdrawals, matched trades
 * between random traders (open, increase, reduce, close, flip; leverage 1x to 20x, trade price
 * anywhere in and slightly outside the band), addMargin/removeMargin, index price moves (up to
 * +-40%, so deep losses and bankrupt positions appear), time jumps (funding windows close and F
 * moves), explicit funding accrual, fee sweeps to the insurance fund and treasury withdrawals.
 *
 * A TypeScript model built on lib/position.ts (`applyFill`) and lib/funding.ts (`projectFunding`,
 * `premiumOf`) runs every step in parallel with the chain and predicts, before the transaction
 * is sent, whether the contract accepts it (and with which custom error it rejects it) and the
 * complete post-state: every position, every free balance, fees, treasury, token balances and
 * every market's funding and open-interest fields, to the wei. Each transaction is pinned to the
 * next second (`setNextBlockTimestamp`) so the model knows the funding accrual in advance.
 *
 * After EVERY step the test reads the whole chain state and checks the invariants stated in
 * `checkInvariants` below, plus exact agreement with the model.
 *
 * Dust bound (derivation). Let Phi = W*(balance - free - sum c - fund - treasury) + sum s*K
 * (36 decimals). Deposits, withdrawals, margin moves, fee sweeps, treasury withdrawals and fees
 * move the same amount between two of the terms: Phi does not change. Price moves and funding
 * do not enter Phi at all (sum s = 0 and F lives in K). A trade leg of d units at price p under
 * funding F changes Phi by
 *   buy leg:  +d*(p - F) + e,   sell leg: -d*(p - F) + e,
 * so the two legs' d*(p - F) cancel and only the rounding terms e remain:
 *   - a reduction by r at x(p): e = r*x(p) - W*floor(r*x(p)/W), in [0, W - 1];
 *   - an increase of an open position to q' (blended K rounded up for a long, down for a
 *     short): e = |q'*K' - (q*K + d*(p - F))|, in [0, q' - 1]; a fresh open (or the opening leg
 *     of a flip) has K = p - F exactly, e = 0.
 * Hence per step 0 <= dPhi = sum over the two legs of e <= 2*(W - 1) + (q'_maker - 1) + (q'_taker
 * - 1) (the size terms only for legs that increased an open position), i.e. less than
 * 2 + (q'_maker + q'_taker)/W wei of 18-decimal value: a few wei for positions of a few units,
 * and exactly 0 for every step that is not a trade. The test asserts dust >= 0, dust
 * non-decreasing, dPhi equal to the model's exact rounding terms, and dPhi within that bound.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Interface } from "ethers";
import { WAD, mulDivDown, mulDivUp } from "../../lib/math";
import {
  EMPTY_POSITION,
  MAX_MAGNITUDE,
  applyFill,
  contribution,
  leverageUp,
  marginShortfall,
  pnlDown,
  pnlPerUnit,
  requirementUp,
  type PositionRecord,
} from "../../lib/position";
import { premiumOf, projectFunding, type FundingAccrual } from "../../lib/funding";
import { buildOrder, signAndMatch } from "../../lib/matching";
import type { Order } from "../../lib/orders";
import { systemFixture, ETH, BTC, USDC, SCALE, type Fixture } from "../helpers/fixture";

const SEED = 20_261_127;
const NUM_RUNS = Number(process.env.CONSERVATION_RUNS ?? 30);
/** Traders that take part (of the fixture's ten); fewer traders meet each other more often. */
const ACTIVE = 6;
const FEED_SCALE = 10n ** 10n; // the mock feeds have 8 decimals
/** Stored margins are uint112 (PositionBook.MAX_MARGIN). */
const MAX_MARGIN = (1n << 112n) - 1n;

// =============================================================================================
// The model
// =============================================================================================

interface Params {
  imr: bigint;
  mmr: bigint;
  makerFee: bigint;
  takerFee: bigint;
  priceBand: bigint;
  fundFeeShare: bigint;
  keeperFeeShare: bigint;
  maxPremium: bigint;
  minNotional: bigint;
  fundingPeriod: bigint;
  fundingWindow: bigint;
}

interface MState extends FundingAccrual {
  longOpenInterest: bigint;
  shortOpenInterest: bigint;
  sumSizeTimesEntry: bigint;
}

interface MarketModel {
  id: string;
  symbol: string;
  params: Params;
  state: MState;
  /** Index price in force (what the mock feed reports). */
  price: bigint;
}

/** K and a of a position whose last change was a reduction: they must not have moved since. */
interface ReductionRef {
  entry: bigint;
  leverage: bigint;
}

/** Everything the chain stores that the steps can touch, as the model predicts it. */
interface World {
  markets: MarketModel[];
  traders: string[];
  free: bigint[];
  wallets: bigint[];
  /** positions[market][trader] */
  positions: PositionRecord[][];
  /** reductionRef[market][trader]: set iff the last change to the open position was a reduction. */
  reductionRef: (ReductionRef | null)[][];
  pendingFundFees: bigint;
  treasuryBalance: bigint;
  roundingReserves: bigint[];
  keeperReserves: bigint[];
  chTokens: bigint;
  fundTokens: bigint;
}

/** A rejection the model predicts, named as the contract's custom error. */
class Reject extends Error {
  constructor(readonly errorName: string) {
    super(errorName);
  }
}

/** Rounding that a step adds to the conservation dust: exact value and the derived bound. */
interface Rounding {
  exact: bigint;
  bound: bigint;
}

const abs = (v: bigint): bigint => (v < 0n ? -v : v);

function debit(w: World, t: number, amount: bigint): void {
  if (w.free[t] < amount) throw new Reject("InsufficientFreeCollateral");
  w.free[t] -= amount;
}

/** FundingMath.project at `ts`, skipped when already accrued in this block (Clearinghouse._accrue). */
function accrue(m: MarketModel, ts: bigint): void {
  if (m.state.lastFundingTime === ts) return;
  const a = projectFunding(
    m.state,
    m.params.fundingWindow,
    m.params.fundingPeriod,
    m.price,
    ts,
    m.state.longOpenInterest,
  );
  Object.assign(m.state, a);
}

/**
 * One leg of a trade through the funnel (PositionBook._modifyPosition, FillKind.Trade), checks
 * in the contract's order; returns the rounding this leg adds to the dust.
 */
function tradeLeg(
  w: World,
  mi: number,
  t: number,
  delta: bigint,
  price: bigint,
  leverage: bigint,
  reduceOnly: boolean,
): Rounding {
  const m = w.markets[mi];
  const before = w.positions[mi][t];
  const funding = m.state.cumulativeFunding;
  const buying = delta > 0n;
  const amount = abs(delta);
  const reduceBy = before.size !== 0n && before.isLong !== buying ? (amount < before.size ? amount : before.size) : 0n;
  if (reduceOnly && (reduceBy === 0n || reduceBy !== amount)) throw new Reject("OrderReduceOnly");
  if (amount - reduceBy > 0n && leverage === 0n) throw new Reject("OrderInvalidLeverage");
  const r = applyFill(before, delta, price, leverage, m.price, funding, m.params.imr);
  if (r.reduced > 0n) {
    if (r.payout >= 0n) w.free[t] += r.payout;
    else debit(w, t, -r.payout);
  }
  if (r.increased > 0n) {
    if (r.position.size > MAX_MAGNITUDE) throw new Reject("PositionTooLarge");
    if (abs(r.position.entry) > MAX_MAGNITUDE) throw new Reject("EntryOutOfRange");
    debit(w, t, r.posted);
    if (r.position.margin > MAX_MARGIN) throw new Reject("MarginTooLarge");
  }
  if (r.position.size !== 0n && mulDivDown(r.position.size, m.price, WAD) < m.params.minNotional) {
    throw new Reject("NotionalBelowMinimum");
  }
  if (buying) {
    m.state.shortOpenInterest -= r.reduced;
    m.state.longOpenInterest += r.increased;
  } else {
    m.state.longOpenInterest -= r.reduced;
    m.state.shortOpenInterest += r.increased;
  }
  m.state.sumSizeTimesEntry += contribution(r.position) - contribution(before);
  w.positions[mi][t] = r.position;
  if (r.position.size === 0n) w.reductionRef[mi][t] = null;
  else if (r.increased > 0n) w.reductionRef[mi][t] = null;
  else w.reductionRef[mi][t] = w.reductionRef[mi][t] ?? { entry: before.entry, leverage: before.leverage };

  const rounding: Rounding = { exact: 0n, bound: 0n };
  if (r.reduced > 0n) {
    const x = pnlPerUnit(before.isLong, before.entry, price, funding);
    rounding.exact += r.reduced * x - WAD * pnlDown(r.reduced, x);
    rounding.bound += WAD - 1n;
  }
  if (r.increased > 0n) {
    const q0 = before.size - r.reduced; // 0 for a fresh open or the opening leg of a flip
    const k0 = q0 === 0n ? 0n : before.entry;
    const exactSum = q0 * k0 + r.increased * (price - funding);
    const stored = r.position.size * r.position.entry;
    rounding.exact += r.position.isLong ? stored - exactSum : exactSum - stored;
    if (q0 > 0n) rounding.bound += r.position.size - 1n;
  }
  return rounding;
}

/** Clearinghouse.matchOrders, check for check. Mutates `w`; throws Reject. */
function modelMatch(
  w: World,
  mi: number,
  maker: Order,
  taker: Order,
  fill: bigint,
  mk: number,
  tk: number,
  ts: bigint,
) {
  const m = w.markets[mi];
  if (fill === 0n || maker.size === 0n || taker.size === 0n) throw new Reject("OrderZeroSize");
  if (maker.size > 0n === taker.size > 0n) throw new Reject("OrderSameSide");
  if (maker.trader === taker.trader) throw new Reject("OrderSelfMatch");
  const price = maker.limitPrice;
  for (const [o, t] of [
    [maker, mk],
    [taker, tk],
  ] as [Order, number][]) {
    if (o.leverage === 0n) throw new Reject("OrderInvalidLeverage");
    if (fill > abs(o.size)) throw new Reject("OrderOverfilled");
    if (o.size > 0n ? price > o.limitPrice : price < o.limitPrice) throw new Reject("OrderLimitNotMet");
    const p = w.positions[mi][t];
    if (o.reduceOnly && (p.size < fill || p.isLong === o.size > 0n)) throw new Reject("OrderReduceOnly");
  }
  const gap = abs(price - m.price);
  if (gap * WAD > m.params.priceBand * m.price) throw new Reject("PriceOutsideBand");
  accrue(m, ts);
  const takerBuys = taker.size > 0n;
  const r1 = tradeLeg(w, mi, mk, takerBuys ? -fill : fill, price, maker.leverage, maker.reduceOnly);
  const r2 = tradeLeg(w, mi, tk, takerBuys ? fill : -fill, price, taker.leverage, taker.reduceOnly);
  const notional = mulDivUp(fill, price, WAD);
  const makerFee = mulDivUp(notional, m.params.makerFee, WAD);
  const takerFee = mulDivUp(notional, m.params.takerFee, WAD);
  debit(w, mk, makerFee);
  debit(w, tk, takerFee);
  const total = makerFee + takerFee;
  const toFund = mulDivDown(total, m.params.fundFeeShare, WAD);
  const toKeepers = mulDivDown(total, m.params.keeperFeeShare, WAD);
  w.pendingFundFees += toFund;
  w.keeperReserves[mi] += toKeepers;
  w.treasuryBalance += total - toFund - toKeepers;
  m.state.premiumTimesSize += premiumOf(price, m.price, m.params.maxPremium) * fill;
  m.state.windowSize += fill;
  return { exact: r1.exact + r2.exact, bound: r1.bound + r2.bound };
}

// =============================================================================================
// Steps
// =============================================================================================

type SizeMode = "open" | "increase" | "reduce" | "close" | "flip";

interface TradeStep {
  kind: "trade";
  market: number;
  maker: number;
  takerShift: number;
  mode: SizeMode;
  makerBuys: boolean;
  notionalExp: number;
  mantissa: bigint;
  fractionPpm: bigint;
  priceOffsetPpm: number;
  priceJitter: bigint;
  makerLev: bigint;
  takerLev: bigint;
  makerReduceOnly: boolean;
  takerReduceOnly: boolean;
  takerSlackPpm: number;
  makerOrderLarger: boolean;
}
interface DepositStep {
  kind: "deposit";
  from: number;
  to: number;
  tokens: bigint;
}
interface WithdrawStep {
  kind: "withdraw";
  who: number;
  fractionPpm: bigint;
}
interface MarginStep {
  kind: "addMargin" | "removeMargin";
  anyPosition: boolean;
  who: number;
  market: number;
  fractionPpm: bigint;
}
interface PriceStep {
  kind: "price";
  market: number;
  movePpm: number;
}
interface TimeStep {
  kind: "time";
  seconds: number;
}
interface PokeStep {
  kind: "accrue";
  market: number;
}
interface SweepStep {
  kind: "sweep";
}
interface TreasuryStep {
  kind: "treasury";
  fractionPpm: bigint;
}
type Step =
  | TradeStep
  | DepositStep
  | WithdrawStep
  | MarginStep
  | PriceStep
  | TimeStep
  | PokeStep
  | SweepStep
  | TreasuryStep;

const trader = fc.integer({ min: 0, max: ACTIVE - 1 });
const market = fc.integer({ min: 0, max: 1 });
const rarely = fc.integer({ min: 0, max: 9 }).map((v) => v === 0);
const veryRarely = fc.integer({ min: 0, max: 24 }).map((v) => v === 0);
/** Order leverage: 1x to 20x with wei-level noise (imr is 10%, so above 10x the margin test decides); rarely 0. */
const leverage = fc.oneof(
  { weight: 30, arbitrary: fc.bigInt(WAD, 20n * WAD) },
  { weight: 1, arbitrary: fc.constant(0n) },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("trade" as const),
      market,
      maker: fc.integer({ min: 0, max: 2 * ACTIVE - 1 }),
      takerShift: fc.integer({ min: 1, max: ACTIVE - 1 }),
      mode: fc.constantFrom<SizeMode>("open", "open", "increase", "reduce", "reduce", "close", "flip"),
      makerBuys: fc.boolean(),
      notionalExp: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 19, max: 21 }) }, fc.constantFrom(18, 22)),
      mantissa: fc.bigInt(1_000_000n, 9_999_999n),
      fractionPpm: fc.bigInt(1n, 999_999n),
      priceOffsetPpm: fc.oneof(
        { weight: 12, arbitrary: fc.integer({ min: -49_000, max: 49_000 }) },
        fc.integer({ min: -50_010, max: -49_990 }),
        fc.integer({ min: 49_990, max: 50_010 }),
      ),
      priceJitter: fc.bigInt(-(10n ** 12n), 10n ** 12n),
      makerLev: leverage,
      takerLev: leverage,
      makerReduceOnly: veryRarely,
      takerReduceOnly: veryRarely,
      takerSlackPpm: fc.oneof(
        { weight: 15, arbitrary: fc.integer({ min: 0, max: 5_000 }) },
        fc.integer({ min: -100, max: -1 }),
      ),
      makerOrderLarger: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("deposit" as const),
      from: trader,
      to: trader,
      tokens: fc.oneof({ weight: 10, arbitrary: fc.bigInt(1n, 20_000n * USDC) }, fc.constant(0n)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("withdraw" as const),
      who: trader,
      fractionPpm: fc.bigInt(0n, 1_100_000n),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom("addMargin" as const, "removeMargin" as const),
      anyPosition: rarely,
      who: fc.integer({ min: 0, max: 2 * ACTIVE - 1 }),
      market,
      fractionPpm: fc.bigInt(0n, 1_050_000n),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("price" as const),
      market,
      movePpm: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: -50_000, max: 50_000 }) },
        fc.integer({ min: -400_000, max: 400_000 }),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("time" as const),
      seconds: fc.oneof(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 600, max: 4 * 3600 }),
        fc.integer({ min: 4 * 3600, max: 20 * 3600 }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("accrue" as const), market }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("sweep" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("treasury" as const), fractionPpm: fc.bigInt(0n, 1_100_000n) }),
  },
);

// =============================================================================================
// The chain side
// =============================================================================================

interface Ctx {
  f: Fixture;
  fund: string;
  admin: string;
  ifaces: Interface[];
}

/** The chain state in the model's shape (reductionRef is model-only). */
async function readChain(ctx: Ctx, w: World): Promise<Omit<World, "reductionRef">> {
  const ch = f_ch(ctx);
  const token = ctx.f.token;
  const chAddress = await ch.getAddress();
  const reserveFn = ch.interface.getFunction("roundingReserve") ? ch.getFunction("roundingReserve") : null;
  const [
    free,
    wallets,
    positions,
    states,
    pendingFundFees,
    treasuryBalance,
    roundingReserves,
    keeperReserves,
    chTokens,
    fundTokens,
  ] = await Promise.all([
    Promise.all(w.traders.map((a) => ch.freeCollateral(a))),
    Promise.all(w.traders.map((a) => token.balanceOf(a))),
    Promise.all(
      w.markets.map((m) =>
        Promise.all(
          w.traders.map(async (a): Promise<PositionRecord> => {
            const p = await ch.getPosition(m.id, a);
            return { isLong: p.isLong, size: p.size, entry: p.entry, margin: p.margin, leverage: p.leverage };
          }),
        ),
      ),
    ),
    Promise.all(
      w.markets.map(async (m): Promise<MState> => {
        const s = await ch.marketState(m.id);
        return {
          cumulativeFunding: s.cumulativeFunding,
          fundingRate: s.fundingRate,
          lastFundingTime: s.lastFundingTime,
          windowStart: s.windowStart,
          premiumTimesSize: s.premiumTimesSize,
          windowSize: s.windowSize,
          longOpenInterest: s.longOpenInterest,
          shortOpenInterest: s.shortOpenInterest,
          sumSizeTimesEntry: s.sumSizeTimesEntry,
        };
      }),
    ),
    ch.pendingFundFees(),
    ch.treasuryBalance(),
    Promise.all(w.markets.map(async (m) => (reserveFn ? ((await reserveFn(m.id)) as bigint) : 0n))),
    Promise.all(w.markets.map((m) => ch.keeperReserve(m.id))),
    token.balanceOf(chAddress),
    token.balanceOf(ctx.fund),
  ]);
  return {
    markets: w.markets.map((m, i) => ({ ...m, state: states[i] })),
    traders: w.traders,
    free,
    wallets,
    positions,
    pendingFundFees,
    treasuryBalance,
    roundingReserves,
    keeperReserves,
    chTokens,
    fundTokens,
  };
}

const f_ch = (ctx: Ctx) => ctx.f.clearinghouse;

const norm = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)));

/** The part of the model that the chain must equal (prices and params are inputs, not state). */
function comparable(w: Omit<World, "reductionRef">): unknown {
  return norm({
    free: w.free,
    wallets: w.wallets,
    positions: w.positions,
    states: w.markets.map((m) => m.state),
    pendingFundFees: w.pendingFundFees,
    treasuryBalance: w.treasuryBalance,
    roundingReserves: w.roundingReserves,
    keeperReserves: w.keeperReserves,
    chTokens: w.chTokens,
    fundTokens: w.fundTokens,
  });
}

/** The conservation residue Phi of docs/mechanism.md section 5, from chain state only. */
function conservationDust(c: Omit<World, "reductionRef">): { dust: bigint; sumSK: bigint } {
  const balance = (c.chTokens + c.fundTokens) * SCALE;
  const free = c.free.reduce((a, b) => a + b, 0n);
  let sumC = 0n;
  let sumSK = 0n;
  for (const row of c.positions) {
    for (const p of row) {
      sumC += p.margin;
      sumSK += contribution(p);
    }
  }
  const fund = c.pendingFundFees + c.fundTokens * SCALE;
  const treasury =
    c.treasuryBalance + c.roundingReserves.reduce((a, b) => a + b, 0n) + c.keeperReserves.reduce((a, b) => a + b, 0n);
  return { dust: WAD * (balance - free - sumC - fund - treasury) + sumSK, sumSK };
}

/**
 * The invariants, checked on the chain state after every step:
 *
 * 1. Open interest is balanced: in every market longOpenInterest == shortOpenInterest, and each
 *    equals the sum of the long (resp. short) sizes of all positions.
 * 2. The market's stored sum of signed size times K equals the sum over its positions of
 *    (+size*K for a long, -size*K for a short).
 * 3. Conservation (docs/mechanism.md section 5): W*(balance - free - sum c - fund - treasury) + sum s*K
 *    == dust, with dust >= 0, where balance is the clearinghouse's and the insurance fund's
 *    collateral scaled to 18 decimals, free the sum of free collateral, sum c the sum of position
 *    margins, fund the pending fund fees plus the fund's collateral, treasury the treasury
 *    balance plus the rounding reserves. Dust never decreases, grows by exactly the rounding the
 *    model predicts for the step, and by no more than the bound derived in the header.
 * 4. Every open position has margin > 0; its stored leverage a == ceil(size*W/margin) capped at
 *    2^128 - 1, unless the last change to it was a reduction, in which case K and a equal their
 *    values before that reduction (and a >= ceil(size*W/margin) still). A closed record is all zero.
 */
function checkInvariants(
  c: Omit<World, "reductionRef">,
  refs: (ReductionRef | null)[][],
  prevDust: bigint,
  rounding: Rounding,
): bigint {
  c.markets.forEach((m, mi) => {
    let longs = 0n;
    let shorts = 0n;
    let sk = 0n;
    c.positions[mi].forEach((p, t) => {
      if (p.size === 0n) {
        expect(norm(p), `closed record ${m.symbol} trader ${t}`).to.deep.equal(norm(EMPTY_POSITION));
        return;
      }
      if (p.isLong) longs += p.size;
      else shorts += p.size;
      sk += contribution(p);
      expect(p.margin > 0n, `margin > 0 (${m.symbol} trader ${t})`).to.equal(true);
      const ref = refs[mi][t];
      if (ref === null) {
        expect(p.leverage, `a == ceil(q*W/c) (${m.symbol} trader ${t})`).to.equal(leverageUp(p.size, p.margin));
      } else {
        expect(p.entry, `K kept by reduction (${m.symbol} trader ${t})`).to.equal(ref.entry);
        expect(p.leverage, `a kept by reduction (${m.symbol} trader ${t})`).to.equal(ref.leverage);
        expect(p.leverage >= leverageUp(p.size, p.margin), "a >= ceil(q*W/c) after reduction").to.equal(true);
      }
    });
    expect(m.state.longOpenInterest, `${m.symbol} OI balanced`).to.equal(m.state.shortOpenInterest);
    expect(m.state.longOpenInterest, `${m.symbol} long OI == sum of long sizes`).to.equal(longs);
    expect(m.state.shortOpenInterest, `${m.symbol} short OI == sum of short sizes`).to.equal(shorts);
    expect(m.state.sumSizeTimesEntry, `${m.symbol} sumSizeTimesEntry == sum s*K`).to.equal(sk);
  });
  const { dust, sumSK } = conservationDust(c);
  expect(sumSK).to.equal(c.markets.reduce((a, m) => a + m.state.sumSizeTimesEntry, 0n));
  expect(dust >= 0n, `dust ${dust} >= 0`).to.equal(true);
  expect(dust >= prevDust, `dust non-decreasing (${prevDust} -> ${dust})`).to.equal(true);
  expect(dust - prevDust, "dust grows by exactly the predicted rounding").to.equal(rounding.exact);
  expect(dust - prevDust <= rounding.bound, `dust step ${dust - prevDust} <= bound ${rounding.bound}`).to.equal(true);
  return dust;
}

function errorName(e: unknown, ifaces: Interface[]): string {
  const err = e as { data?: unknown; error?: { data?: unknown }; shortMessage?: string; message?: string };
  const data = err?.data ?? err?.error?.data;
  if (typeof data === "string" && data.length >= 10) {
    for (const iface of ifaces) {
      try {
        const parsed = iface.parseError(data);
        if (parsed) return parsed.name;
      } catch {
        // try the next interface
      }
    }
    return `unknown error ${data.slice(0, 10)}`;
  }
  return `no revert data: ${err?.shortMessage ?? err?.message ?? String(e)}`;
}

/** Pins the next block to the next second, so the model knows the block time of the call. */
async function pinNextBlock(): Promise<bigint> {
  const ts = BigInt(await time.latest()) + 1n;
  await time.setNextBlockTimestamp(ts);
  return ts;
}

/** Sends a transaction; returns the custom error name if it reverted, else null. */
async function attempt(ctx: Ctx, send: () => Promise<{ wait(): Promise<unknown> }>): Promise<string | null> {
  try {
    await (await send()).wait();
    return null;
  } catch (e) {
    return errorName(e, ctx.ifaces);
  }
}

// =============================================================================================
// Driving one step
// =============================================================================================

interface StepResult {
  label: string;
  predicted: string | null;
  actual: string | null;
  rounding: Rounding;
  next: World;
}

const ZERO: Rounding = { exact: 0n, bound: 0n };

function clone(w: World): World {
  return structuredClone(w);
}

async function runStep(ctx: Ctx, w: World, step: Step): Promise<StepResult> {
  const ch = ctx.f.clearinghouse;
  const signers = ctx.f.traders;
  const next = clone(w);
  let rounding = ZERO;
  let predicted: string | null = null;
  const predict = (fn: () => Rounding | void): void => {
    try {
      rounding = fn() ?? ZERO;
    } catch (e) {
      if (!(e instanceof Reject)) throw e;
      predicted = e.errorName;
      rounding = ZERO;
    }
  };

  switch (step.kind) {
    case "trade": {
      const mi = step.market;
      const m = w.markets[mi];
      // Modes other than "open" act on an existing position: the maker is drawn among the
      // active traders holding one in this market (if any).
      const holders = [...Array(ACTIVE).keys()].filter((t) => w.positions[mi][t].size !== 0n);
      const mk =
        step.mode !== "open" && holders.length > 0 ? holders[step.maker % holders.length] : step.maker % ACTIVE;
      const tk = (mk + step.takerShift) % ACTIVE;
      const pos = w.positions[mi][mk];
      const openSize = (BigInt(step.mantissa) * 10n ** BigInt(step.notionalExp - 6) * WAD) / m.price + 1n;
      let makerBuys = step.makerBuys;
      let size = openSize;
      const mode: SizeMode = pos.size === 0n ? "open" : step.mode;
      if (mode === "increase") makerBuys = pos.isLong;
      else if (mode !== "open") {
        makerBuys = !pos.isLong;
        if (mode === "reduce") size = (pos.size * step.fractionPpm) / 1_000_000n + 1n;
        else if (mode === "close") size = pos.size;
        else size = pos.size + openSize;
      }
      let price = (m.price * BigInt(1_000_000 + step.priceOffsetPpm)) / 1_000_000n + step.priceJitter;
      if (price <= 0n) price = 1n;
      const takerBuys = !makerBuys;
      const slack = (price * BigInt(step.takerSlackPpm)) / 1_000_000n;
      const takerLimit = takerBuys ? price + slack : price - slack;
      const makerOrder = buildOrder(w.traders[mk], {
        marketId: m.id,
        size: (makerBuys ? 1n : -1n) * (step.makerOrderLarger ? size * 2n : size),
        limitPrice: price,
        leverage: step.makerLev,
        reduceOnly: step.makerReduceOnly,
      });
      const takerOrder = buildOrder(w.traders[tk], {
        marketId: m.id,
        size: (takerBuys ? 1n : -1n) * size,
        limitPrice: takerLimit,
        leverage: step.takerLev,
        reduceOnly: step.takerReduceOnly,
      });
      const ts = await pinNextBlock();
      predict(() => modelMatch(next, mi, makerOrder, takerOrder, size, mk, tk, ts));
      const actual = await attempt(ctx, () =>
        signAndMatch(
          ch,
          ctx.f.keeper,
          { signer: signers[mk], order: makerOrder },
          { signer: signers[tk], order: takerOrder },
          size,
        ),
      );
      // The fill counters move with the trade and only with it.
      const [fm, ft] = await Promise.all([
        ch.filled(await ch.hashOrder(makerOrder)),
        ch.filled(await ch.hashOrder(takerOrder)),
      ]);
      expect([fm, ft]).to.deep.equal(actual === null ? [size, size] : [0n, 0n]);
      const label = `trade ${m.symbol} ${mode} maker#${mk} ${makerBuys ? "buys" : "sells"} ${size} @ ${price} vs taker#${tk}`;
      return { label, predicted, actual, rounding, next };
    }
    case "deposit": {
      predict(() => {
        if (step.tokens === 0n) throw new Reject("ZeroAmount");
        if (next.wallets[step.from] < step.tokens) throw new Reject("ERC20InsufficientBalance");
        next.wallets[step.from] -= step.tokens;
        next.chTokens += step.tokens;
        next.free[step.to] += step.tokens * SCALE;
      });
      await pinNextBlock();
      const actual = await attempt(ctx, () => ch.connect(signers[step.from]).deposit(w.traders[step.to], step.tokens));
      return { label: `deposit ${step.tokens} from #${step.from} to #${step.to}`, predicted, actual, rounding, next };
    }
    case "withdraw": {
      const tokens = (w.free[step.who] * step.fractionPpm) / 1_000_000n / SCALE;
      predict(() => {
        if (tokens === 0n) throw new Reject("ZeroAmount");
        debit(next, step.who, tokens * SCALE);
        next.chTokens -= tokens;
        next.wallets[step.who] += tokens;
      });
      await pinNextBlock();
      const actual = await attempt(ctx, () => ch.connect(signers[step.who]).withdraw(w.traders[step.who], tokens));
      return { label: `withdraw ${tokens} by #${step.who}`, predicted, actual, rounding, next };
    }
    case "addMargin":
    case "removeMargin": {
      // Usually one of the open positions (so the step does something), else a random pair.
      const open = w.markets.flatMap((_, mi) =>
        [...Array(ACTIVE).keys()].filter((t) => w.positions[mi][t].size !== 0n).map((t) => [mi, t]),
      );
      const [mi, who] =
        step.anyPosition || open.length === 0 ? [step.market, step.who % ACTIVE] : open[step.who % open.length];
      const m = next.markets[mi];
      const pos = w.positions[mi][who];
      const ts = await pinNextBlock();
      let base = w.free[who];
      if (step.kind === "removeMargin") {
        // A fraction (up to 105%) of what the margin test lets go at the block's (P, F).
        const probe = structuredClone(m);
        accrue(probe, ts);
        const x = pnlPerUnit(pos.isLong, pos.entry, probe.price, probe.state.cumulativeFunding);
        const backing = pos.margin + (pnlDown(pos.size, x) < 0n ? pnlDown(pos.size, x) : 0n);
        const excess = backing - requirementUp(pos.size, probe.price, m.params.imr);
        base = excess > 0n ? excess : pos.margin;
      }
      const amount = (base * step.fractionPpm) / 1_000_000n;
      predict(() => {
        if (amount === 0n) throw new Reject("ZeroAmount");
        if (pos.size === 0n) throw new Reject("PositionNotFound");
        const p = { ...pos };
        if (step.kind === "addMargin") {
          // Adding margin reads neither P nor F: no oracle read, no funding accrual.
          debit(next, who, amount);
          p.margin += amount;
          if (p.margin > MAX_MARGIN) throw new Reject("MarginTooLarge");
        } else {
          accrue(m, ts);
          if (amount >= p.margin) throw new Reject("InsufficientMargin");
          p.margin -= amount;
          const x = pnlPerUnit(p.isLong, p.entry, m.price, m.state.cumulativeFunding);
          if (marginShortfall(p.margin, p.size, x, m.price, m.params.imr) !== 0n) {
            throw new Reject("InsufficientMargin");
          }
          next.free[who] += amount;
        }
        p.leverage = leverageUp(p.size, p.margin);
        next.positions[mi][who] = p;
        next.reductionRef[mi][who] = null;
      });
      const actual = await attempt(ctx, () =>
        step.kind === "addMargin"
          ? ch.connect(signers[who]).addMargin(m.id, amount)
          : ch.connect(signers[who]).removeMargin(m.id, amount),
      );
      return { label: `${step.kind} ${m.symbol} ${amount} by #${who}`, predicted, actual, rounding, next };
    }
    case "price": {
      const m = next.markets[step.market];
      let price = ((m.price * BigInt(1_000_000 + step.movePpm)) / 1_000_000n / FEED_SCALE) * FEED_SCALE;
      if (price < FEED_SCALE) price = FEED_SCALE;
      m.price = price;
      await ctx.f.setPrice(m.symbol, price);
      return { label: `price ${m.symbol} -> ${price}`, predicted: null, actual: null, rounding, next };
    }
    case "time": {
      await time.increase(step.seconds);
      // Keep the feeds fresh (24 h heartbeat): re-post the same prices.
      for (const m of next.markets) await ctx.f.setPrice(m.symbol, m.price);
      return { label: `time +${step.seconds}s`, predicted: null, actual: null, rounding, next };
    }
    case "accrue": {
      const m = next.markets[step.market];
      const ts = await pinNextBlock();
      predict(() => accrue(m, ts));
      const actual = await attempt(ctx, () => ch.connect(ctx.f.keeper).accrueFunding(m.id));
      return { label: `accrueFunding ${m.symbol}`, predicted, actual, rounding, next };
    }
    case "sweep": {
      predict(() => {
        const tokens = next.pendingFundFees / SCALE;
        next.pendingFundFees -= tokens * SCALE;
        next.chTokens -= tokens;
        next.fundTokens += tokens;
      });
      await pinNextBlock();
      const actual = await attempt(ctx, () => ch.connect(ctx.f.keeper).sweepFundFees());
      return { label: "sweepFundFees", predicted, actual, rounding, next };
    }
    case "treasury": {
      const tokens = (w.treasuryBalance * step.fractionPpm) / 1_000_000n / SCALE;
      predict(() => {
        if (tokens * SCALE > next.treasuryBalance) throw new Reject("InsufficientTreasury");
        next.treasuryBalance -= tokens * SCALE;
        next.chTokens -= tokens;
      });
      await pinNextBlock();
      const actual = await attempt(ctx, () => ch.connect(ctx.f.admin).withdrawTreasury(ctx.admin, tokens));
      return { label: `withdrawTreasury ${tokens}`, predicted, actual, rounding, next };
    }
  }
}

// =============================================================================================
// The property
// =============================================================================================

/**
 * The insurance fund of the shared system; the swept fees go there. If the fixture ever leaves it
 * unset, a plain account stands in so that sweeps have somewhere to go.
 */
async function insuranceFundOf(f: Fixture): Promise<string> {
  const fund = await f.clearinghouse.insuranceFund();
  if (fund !== ethers.ZeroAddress) return fund;
  const signers = await ethers.getSigners();
  const stand = signers[signers.length - 1].address;
  await (await f.clearinghouse.setInsuranceFund(stand)).wait();
  return stand;
}

async function initialWorld(ctx: Ctx): Promise<World> {
  const ch = ctx.f.clearinghouse;
  const symbols = [ETH, BTC];
  const markets: MarketModel[] = await Promise.all(
    symbols.map(async (symbol) => {
      const id = ctx.f.markets.get(symbol)!.id;
      const p = await ch.marketParams(id);
      const agg = ctx.f.markets.get(symbol)!.aggregator;
      const answer = (await agg.latestRoundData())[1];
      return {
        id,
        symbol,
        params: {
          imr: p.imr,
          mmr: p.mmr,
          makerFee: p.makerFee,
          takerFee: p.takerFee,
          priceBand: p.priceBand,
          fundFeeShare: p.fundFeeShare,
          keeperFeeShare: p.keeperFeeShare,
          maxPremium: p.maxPremium,
          minNotional: p.minNotional,
          fundingPeriod: p.fundingPeriod,
          fundingWindow: p.fundingWindow,
        },
        state: {} as MState,
        price: answer * FEED_SCALE,
      };
    }),
  );
  // Every trader of the fixture counts for the sums; only the first ACTIVE trade.
  const traders = ctx.f.traders.map((t) => t.address);
  const skeleton: World = {
    markets,
    traders,
    free: [],
    wallets: [],
    positions: [],
    reductionRef: markets.map(() => traders.map(() => null)),
    pendingFundFees: 0n,
    treasuryBalance: 0n,
    roundingReserves: [],
    keeperReserves: [],
    chTokens: 0n,
    fundTokens: 0n,
  };
  const c = await readChain(ctx, skeleton);
  return { ...c, markets: c.markets, reductionRef: skeleton.reductionRef };
}

describe("Conservation: model-based property test of the clearinghouse", function () {
  this.timeout(900_000);

  it(`keeps every invariant and matches the model over ${NUM_RUNS} seeded random sequences of 10-30 steps`, async function () {
    const stats = new Map<string, { ok: number; rejected: number }>();
    const reasons = new Map<string, number>();
    let steps = 0;
    let maxDust = 0n;
    let maxDustStep = 0n;
    const tally = (kind: string, ok: boolean): void => {
      const s = stats.get(kind) ?? { ok: 0, rejected: 0 };
      if (ok) s.ok += 1;
      else s.rejected += 1;
      stats.set(kind, s);
    };

    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 10, maxLength: 30 }), async (sequence) => {
        const f = await loadFixture(systemFixture);
        const [admin] = await ethers.getSigners();
        const ctx: Ctx = {
          f,
          fund: await insuranceFundOf(f),
          admin: admin.address,
          ifaces: [f.clearinghouse.interface, f.token.interface],
        };
        let world = await initialWorld(ctx);
        let chain = await readChain(ctx, world);
        let dust = checkInvariants(chain, world.reductionRef, 0n, ZERO);
        expect(dust).to.equal(0n);
        const log: string[] = [];
        for (const [i, step] of sequence.entries()) {
          const r = await runStep(ctx, world, step);
          const outcome = r.actual === null ? "ok" : `rejected ${r.actual}`;
          log.push(`#${i} ${r.label}: ${outcome}`);
          const where = `\n${log.join("\n")}`;
          expect(r.actual, `model predicted ${r.predicted ?? "success"}${where}`).to.equal(r.predicted);
          const after = await readChain(ctx, world);
          if (r.actual !== null) {
            // A rejected step leaves the state exactly as it was.
            expect(comparable(after), `rejected step changed state${where}`).to.deep.equal(comparable(chain));
          } else {
            world = r.next;
            expect(comparable(after), `chain differs from the model${where}`).to.deep.equal(comparable(world));
          }
          try {
            const before = dust;
            dust = checkInvariants(after, world.reductionRef, dust, r.actual === null ? r.rounding : ZERO);
            if (dust - before > maxDustStep) maxDustStep = dust - before;
          } catch (e) {
            (e as Error).message += where;
            throw e;
          }
          chain = after;
          tally(r.label.startsWith("trade") ? `trade:${r.label.split(" ")[2]}` : step.kind, r.actual === null);
          if (r.actual !== null) reasons.set(r.actual, (reasons.get(r.actual) ?? 0) + 1);
          steps += 1;
        }
        if (dust > maxDust) maxDust = dust;
      }),
      { seed: SEED, numRuns: NUM_RUNS, endOnFailure: process.env.SHRINK !== "1" },
    );

    const summary = [...stats.entries()].map(([k, s]) => `${k} ${s.ok} ok/${s.rejected} rejected`).join(", ");
    console.log(`      ${NUM_RUNS} runs, ${steps} steps: ${summary}`);
    console.log(`      rejections: ${[...reasons.entries()].map(([k, n]) => `${k} ${n}`).join(", ")}`);
    console.log(`      largest dust after a run ${maxDust} (36 dec), largest single-step increase ${maxDustStep}`);
    // The sequences must actually exercise trading, not only rejections.
    const tradesOk = [...stats.entries()].filter(([k]) => k.startsWith("trade")).reduce((a, [, v]) => a + v.ok, 0);
    expect(tradesOk).to.be.greaterThan(NUM_RUNS);
  });
});
