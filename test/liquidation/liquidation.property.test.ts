/**
 * Property: random books with trades, price gaps that create bad debt, fund stakes, time passing
 * and liquidations (full, up to the cap, partial, bankrupt, refused) keep the system's books.
 *
 * fast-check (fixed seed, 20 runs of short sequences) draws the steps. Every liquidation is first
 * decided by the TypeScript mirror (test/helpers/liquidation.ts) at the (P, F) of the block it
 * lands in (the timestamp is pinned so F can be projected): it must revert with exactly the
 * predicted custom error and values and leave everything untouched, or succeed with exactly the
 * predicted post-state to the wei (both positions and free balances, pending fund fees,
 * treasury, rounding reserve, fund and clearinghouse token balances, events).
 *
 * Invariants checked after EVERY step, in words:
 *  1. Open interest is balanced: in each market the long sizes add up to the short sizes, and the
 *     stored open interests equal the sums over the positions.
 *  2. Conservation (docs/mechanism.md section 5): with balance = (clearinghouse + insurance fund token
 *     balances) * 1e12, fund = fund tokens * 1e12 + pendingFundFees and treasury =
 *     treasuryBalance + the rounding reserves,
 *        dust = W * (balance - free - sum c - fund - treasury) + sum s*K
 *     is never negative and never decreases (only floors in the protocol's favour add to it).
 *     sum s*K is read from marketState(id).sumSizeTimesEntry and must equal the sum recomputed
 *     from the positions.
 *  3. The insurance fund never goes negative, and never has more reserved than it holds.
 *  4. Every open position has margin c > 0.
 *  5. A partial take up to the cap of a position that was not bankrupt leaves it healthy.
 */
import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, BTC, USDC, type Fixture } from "../helpers/fixture";
import {
  conservation,
  fullSnapshot,
  health,
  liqParams,
  liquidateExactly,
  maxTake,
  now,
  positionOf,
  predict,
  readLiqState,
  stake,
} from "../helpers/liquidation";
import { buildOrder, signAndMatch } from "../../lib/matching";
import { projectFunding } from "../../lib/funding";
import { WAD } from "../../lib/math";
import type { PositionRecord } from "../../lib/position";

const SEED = Number(process.env.LIQ_SEED ?? 4_242_031);
const RUNS = Number(process.env.LIQ_RUNS ?? 20);
const FEED = 10n ** 10n; // 8-decimal feeds: prices are multiples of 1e10

type Step =
  | { kind: "trade"; m: number; i: number; j: number; size: number; levL: number; levS: number; offBps: number }
  | { kind: "gap"; m: number; pct: number }
  | { kind: "stress"; m: number; t: number; u: number }
  | { kind: "stake"; i: number; tokens: number }
  | { kind: "wait"; seconds: number }
  | {
      kind: "liquidate";
      m: number;
      t: number;
      l: number;
      mode: "full" | "cap" | "part";
      frac: number;
      lev: number;
      /** If set, first gap the price so the target's equity is this % of its maintenance. */
      pre: number | undefined;
    };

const trader = fc.integer({ min: 0, max: 9 });
const market = fc.integer({ min: 0, max: 1 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("trade" as const),
      m: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
      i: trader,
      j: trader,
      size: fc.integer({ min: 1, max: 100 }),
      levL: fc.integer({ min: 2, max: 12 }),
      levS: fc.integer({ min: 2, max: 12 }),
      offBps: fc.integer({ min: -50, max: 50 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("gap" as const),
      m: market,
      pct: fc.oneof(fc.integer({ min: -8, max: 8 }), fc.integer({ min: -20, max: 20 })),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("stress" as const),
      m: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
      t: fc.nat(20),
      u: fc.integer({ min: -60, max: 110 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("stake" as const), i: trader, tokens: fc.integer({ min: 1, max: 3000 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("wait" as const), seconds: fc.integer({ min: 1, max: 900 }) }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("liquidate" as const),
      m: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
      t: fc.nat(20),
      l: fc.integer({ min: 0, max: 10 }), // 10 is the keeper, who has no free collateral
      mode: fc.constantFrom("full" as const, "cap" as const, "part" as const),
      frac: fc.integer({ min: 1, max: 100 }),
      lev: fc.integer({ min: 1, max: 10 }),
      pre: fc.oneof(fc.constant(undefined), fc.integer({ min: -60, max: 110 }), fc.integer({ min: 0, max: 99 })),
    }),
  },
);

const SYMBOLS = [ETH, BTC];
/** Base size units per drawn size step: 0.05 ETH, 0.002 BTC. */
const UNIT = [WAD / 20n, WAD / 500n];

describe("Liquidation property: random books keep conservation, balance and margins", function () {
  it(`holds the invariants after every step (seed ${SEED}, ${RUNS} runs)`, async function () {
    const stats: Record<string, number> = { trades: 0, liquidations: 0, bankrupt: 0, partial: 0, rejected: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 10, maxLength: 18 }), async (steps) => {
        const f = await loadFixture(systemFixture);
        const ids = [f.ethId, f.btcId];
        const signers = [...f.traders, f.keeper];
        const accounts = signers.map((s) => s.address);
        let dust = await conservation(f, ids, accounts);
        expect(dust).to.equal(0n);
        for (const step of steps) {
          await runStep(f, step, accounts, stats);
          const next = await conservation(f, ids, accounts);
          expect(next, "dust >= 0").to.be.greaterThanOrEqual(0n);
          expect(next, `dust non-decreasing after ${step.kind}`).to.be.greaterThanOrEqual(dust);
          dust = next;
          const fund = f.insuranceFund;
          expect(await fund.totalReserved()).to.be.lessThanOrEqual(await fund.balance());
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(`      steps exercised: ${JSON.stringify(stats)}`);
    expect(stats.liquidations).to.be.greaterThan(0);
    expect(stats.bankrupt).to.be.greaterThan(0);
    expect(stats.partial).to.be.greaterThan(0);
  });
});

async function runStep(f: Fixture, step: Step, accounts: string[], stats: Record<string, number>): Promise<void> {
  const ch = f.clearinghouse;
  switch (step.kind) {
    case "trade": {
      if (step.i === step.j) return;
      const id = [f.ethId, f.btcId][step.m];
      const [index] = await f.oracle.getPrice(id, false);
      const price = (index * BigInt(10_000 + step.offBps)) / 10_000n;
      const size = BigInt(step.size) * UNIT[step.m];
      const [long, short] = [f.traders[step.i], f.traders[step.j]];
      const maker = buildOrder(long.address, {
        marketId: id,
        size,
        limitPrice: price,
        leverage: BigInt(step.levL) * WAD,
      });
      const taker = buildOrder(short.address, {
        marketId: id,
        size: -size,
        limitPrice: price,
        leverage: BigInt(step.levS) * WAD,
      });
      try {
        await (
          await signAndMatch(ch, f.keeper, { signer: long, order: maker }, { signer: short, order: taker })
        ).wait();
        stats.trades++;
      } catch {
        // Trades that break a trading rule (minimum notional, free collateral) are not the subject.
      }
      return;
    }
    case "gap": {
      const symbol = SYMBOLS[step.m];
      const [index] = await f.oracle.getPrice(f.markets.get(symbol)!.id, false);
      const moved = ((index * BigInt(100 + step.pct)) / 100n / FEED) * FEED;
      await f.setPrice(symbol, moved > 0n ? moved : FEED);
      return;
    }
    case "stress": {
      // Gap the index so that one holder's equity lands at u% of its maintenance requirement
      // (negative u: bankrupt), which the next liquidation steps then find.
      const id = [f.ethId, f.btcId][step.m];
      const holders: PositionRecord[] = [];
      for (const a of accounts) {
        const pos = await positionOf(f, id, a);
        if (pos.size > 0n) holders.push(pos);
      }
      if (holders.length === 0) return;
      const pos = holders[step.t % holders.length];
      const [index] = await f.oracle.getPrice(id, false);
      const funding = (await ch.marketState(id)).cumulativeFunding;
      const wanted = (BigInt(step.u) * ((pos.size * index) / WAD)) / 2000n; // u% of 5% of notional
      const perUnit = ((wanted - pos.margin) * WAD) / pos.size; // x that gives that equity
      const target = pos.isLong ? pos.entry + funding + perUnit : pos.entry + funding - perUnit;
      const moved = (target / FEED) * FEED;
      if (moved <= 0n || moved > index * 2n || moved < index / 2n) return;
      await f.setPrice(SYMBOLS[step.m], moved);
      return;
    }
    case "stake":
      await stake(f, f.traders[step.i], BigInt(step.tokens) * USDC);
      return;
    case "wait": {
      await time.increase(step.seconds);
      // Keep both feeds inside the strict window: refresh them at the same prices.
      for (const symbol of SYMBOLS) {
        const [index] = await f.oracle.getPrice(f.markets.get(symbol)!.id, false);
        await f.setPrice(symbol, index);
      }
      return;
    }
    case "liquidate":
      if (step.pre !== undefined)
        await runStep(f, { kind: "stress", m: step.m, t: step.t, u: step.pre }, accounts, stats);
      return liquidateStep(f, step, accounts, stats);
  }
}

async function liquidateStep(
  f: Fixture,
  step: Extract<Step, { kind: "liquidate" }>,
  accounts: string[],
  stats: Record<string, number>,
): Promise<void> {
  const ch = f.clearinghouse;
  const id = [f.ethId, f.btcId][step.m];
  // Pin the block so (P, F) of the call are known in advance.
  const p = await liqParams(f, id);
  const [price] = await f.oracle.getPrice(id, true);
  const ts = (await now()) + 1n;
  const st = await ch.marketState(id);
  const mp = await ch.marketParams(id);
  const funding = projectFunding(
    {
      cumulativeFunding: st.cumulativeFunding,
      fundingRate: st.fundingRate,
      lastFundingTime: st.lastFundingTime,
      windowStart: st.windowStart,
      premiumTimesSize: st.premiumTimesSize,
      windowSize: st.windowSize,
    },
    mp.fundingWindow,
    mp.fundingPeriod,
    price,
    ts,
    st.longOpenInterest,
  ).cumulativeFunding;
  // Mostly aim at liquidatable positions; one step in four picks any holder (usually refused).
  const holders: string[] = [];
  const liquidatable: string[] = [];
  for (const a of accounts) {
    const pos = await positionOf(f, id, a);
    if (pos.size === 0n) continue;
    holders.push(a);
    if (health(pos, price, funding, p).liquidatable) liquidatable.push(a);
  }
  if (holders.length === 0) return;
  const pool = step.t % 4 !== 0 && liquidatable.length > 0 ? liquidatable : holders;
  const target = pool[step.t % pool.length];
  const signers = [...f.traders, f.keeper];
  let liquidator = signers[step.l];
  if (liquidator.address === target) liquidator = signers[(step.l + 1) % signers.length];
  const before = await readLiqState(f, id, target, liquidator.address);
  const pos = before.target;
  const h = health(pos, price, funding, p);
  const lev = BigInt(step.lev) * WAD;
  const cap = h.liquidatable ? maxTake(pos.size, h.eq, price, p) : 0n;
  let size = pos.size;
  if (step.mode === "cap") size = cap;
  if (step.mode === "part") size = cap === 0n ? pos.size / 2n : (cap * BigInt(step.frac)) / 100n;
  if (size === 0n) size = 1n;

  let error: { name: string; args: unknown[] } | undefined;
  if (!h.liquidatable) error = { name: "PositionNotLiquidatable", args: [target, h.eq, h.maintenance] };
  else if (size > cap) error = { name: "LiquidationTooLarge", args: [size, cap] };
  else error = predict(before, id, target, liquidator.address, size, lev, price, funding, p).error;

  await time.setNextBlockTimestamp(ts);
  if (error) {
    const snap = await fullSnapshot(f, [f.ethId, f.btcId], accounts);
    await expect(ch.connect(liquidator).liquidate(id, target, size, lev))
      .to.be.revertedWithCustomError(ch, error.name)
      .withArgs(...error.args);
    expect(await fullSnapshot(f, [f.ethId, f.btcId], accounts)).to.deep.equal(snap);
    stats.rejected++;
    stats[error.name] = (stats[error.name] ?? 0) + 1;
    return;
  }
  const pred = await liquidateExactly(f, id, target, liquidator, size, lev);
  expect((await ch.marketState(id)).cumulativeFunding, "F projected for the pinned block").to.equal(funding);
  stats.liquidations++;
  if (pred.plan.takenEquity < 0n) stats.bankrupt++;
  if (size < pos.size) {
    stats.partial++;
    // The remainder of a bankrupt position keeps its deficit; any other stays funded.
    if (size === cap && pred.plan.takenEquity >= 0n) {
      const after = health(pred.after.target, price, funding, p);
      expect(after.liquidatable, "a take up to the cap restores health").to.equal(false);
    }
  }
}
