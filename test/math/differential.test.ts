/**
 * Differential tests: the TypeScript mirror (lib/math.ts, lib/position.ts, lib/funding.ts) against
 * the Solidity libraries, bit for bit.
 *
 * Part 1 runs every FixedPointMath / PositionMath / FundingMath function through
 * contracts/test/MathHarness.sol on seeded random inputs (fast-check `fc.sample`, a fixed seed per
 * property) plus explicit edge cases, with the eth_calls batched through `Promise.all`.
 * Inputs are drawn from the domain the contracts can reach (sizes, |K| and prices at most
 * 2^120 - 1, margins at most 2^128 - 1, ratios at most 2^64 - 1, funding far from zero) and,
 * where the function is total over uint256, beyond it. Whenever the exact mirror result does
 * not fit the Solidity return type, or the mirror throws (division by zero), the harness must
 * revert; otherwise both results must be equal.
 *
 * Part 2 opens random positions on the real Clearinghouse through signed, matched orders
 * (lib/matching.ts), predicts every fill with `applyFill` (plus fees, funding accrual and every
 * revert condition), moves the index price and the clock, and compares the contract's views
 * `equity`, `isLiquidatable`, `isBankrupt`, `marginRatio` and `currentFunding` with lib
 * computations to the wei.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { MAX_I256, MAX_U256, MIN_I256, bigintGenerators, fitsI256, fitsU256 } from "../helpers/generators";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { MathHarness, Clearinghouse } from "../../typechain-types";
import { WAD, divCeil, divFloor, mulDivDown, mulDivUp, minBig } from "../../lib/math";
import {
  MAX_LEVERAGE,
  MAX_MAGNITUDE,
  applyFill,
  blendEntry,
  equityOf,
  leverageUp,
  marginShortfall,
  pnlDown,
  pnlPerUnit,
  releasedMargin,
  requirementUp,
  type PositionRecord,
} from "../../lib/position";
import { premiumOf, projectFunding, type FundingAccrual } from "../../lib/funding";
import { buildOrder, signAndMatch } from "../../lib/matching";
import { systemWith, ETH, BTC, type Fixture } from "../helpers/fixture";
import { fundingStateOf as accrualOf } from "../helpers/clearinghouse";

// ---------------------------------------------------------------------------------------------
// Ranges and generators
// ---------------------------------------------------------------------------------------------

const SEED = 0x5eed_2026;
/** Random cases per pure-function property. */
const CASES = 400;
const CHUNK = 200;

const M120 = MAX_MAGNITUDE; // 2^120 - 1
const M128 = (1n << 128n) - 1n;
const M64 = (1n << 64n) - 1n;

/** Edge values every unsigned generator mixes in. */
const U_EDGES = [0n, 1n, 2n, WAD - 1n, WAD, WAD + 1n, 10n ** 36n, M64, M120 - 1n, M120, M128];
const { uint, sint } = bigintGenerators(U_EDGES);

const sample = <T>(arb: fc.Arbitrary<T>, salt: number, n = CASES): T[] =>
  fc.sample(arb, { seed: SEED + salt, numRuns: n });

const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

/** Inputs compared across all pure-function properties (reported at the end). */
let totalCases = 0;

type Outcome<T> = { revert: true } | { revert: false; value: T };

/**
 * Runs `cases` through the harness (batched) and the mirror; fails with the exact inputs of the
 * first mismatches. The mirror "expects a revert" when it throws or its result is out of range.
 */
async function differential<C, T>(
  cases: C[],
  onChain: (c: C) => Promise<T>,
  mirror: (c: C) => T,
  inRange: (v: T) => boolean,
  same: (a: T, b: T) => boolean = (a, b) => a === b,
): Promise<number> {
  const failures: string[] = [];
  let reverts = 0;
  totalCases += cases.length;
  for (let i = 0; i < cases.length; i += CHUNK) {
    const chunk = cases.slice(i, i + CHUNK);
    const chain = await Promise.all(
      chunk.map(async (c): Promise<Outcome<T>> => {
        try {
          return { revert: false, value: await onChain(c) };
        } catch {
          return { revert: true };
        }
      }),
    );
    chunk.forEach((c, j) => {
      let expected: Outcome<T>;
      try {
        const v = mirror(c);
        expected = inRange(v) ? { revert: false, value: v } : { revert: true };
      } catch {
        expected = { revert: true };
      }
      const got = chain[j];
      const ok =
        expected.revert === got.revert && (expected.revert || same(expected.value, (got as { value: T }).value));
      if (expected.revert) reverts += 1;
      if (!ok && failures.length < 5) failures.push(`input ${show(c)}: mirror ${show(expected)}, harness ${show(got)}`);
    });
  }
  expect(failures, failures.join("\n")).to.deep.equal([]);
  return reverts;
}

// ---------------------------------------------------------------------------------------------
// Part 1: pure functions against MathHarness
// ---------------------------------------------------------------------------------------------

describe("Math differential: TypeScript mirror vs Solidity libraries", function () {
  let h: MathHarness;

  before(async function () {
    h = await (await ethers.getContractFactory("MathHarness")).deploy();
  });

  after(function () {
    console.log(`      ${totalCases} inputs compared between the mirror and the harness`);
  });

  describe("FixedPointMath", function () {
    const mulDivCases = [
      ...sample(fc.tuple(uint(MAX_U256), uint(MAX_U256), uint(MAX_U256)), 1),
      // In-range products: the common case of 18-decimal operands.
      ...sample(fc.tuple(uint(M128), uint(M128), uint(M128, 1n)), 2),
      // Explicit edges: 0, 1, W-1, 2^120-1, a zero divisor, results at and just past 2^256-1.
      ...[0n, 1n, WAD - 1n, M120].flatMap((a) =>
        [0n, 1n, WAD - 1n, M120].flatMap((b) => [0n, 1n, WAD, M120].map((d) => [a, b, d] as [bigint, bigint, bigint])),
      ),
      [MAX_U256, 1n, 1n],
      [MAX_U256, MAX_U256, MAX_U256],
      [MAX_U256, 2n, 2n],
      [MAX_U256, MAX_U256, MAX_U256 - 1n],
      [MAX_U256 - 1n, MAX_U256, MAX_U256],
      [1n << 255n, 2n, 1n],
      [(1n << 255n) + 1n, 2n, 2n],
    ] as [bigint, bigint, bigint][];

    it(`mulDivDown: floor(a*b/d), reverting exactly when d == 0 or the result exceeds 2^256-1`, async function () {
      const reverts = await differential(
        mulDivCases,
        ([a, b, d]) => h.mulDivDown(a, b, d),
        ([a, b, d]) => mulDivDown(a, b, d),
        fitsU256,
      );
      expect(reverts).to.be.greaterThan(0);
    });

    it(`mulDivUp: ceil(a*b/d), reverting exactly when d == 0 or the result exceeds 2^256-1`, async function () {
      await differential(
        mulDivCases,
        ([a, b, d]) => h.mulDivUp(a, b, d),
        ([a, b, d]) => mulDivUp(a, b, d),
        fitsU256,
      );
    });

    // divFloor/divCeil cast d to int256 without a check, so their domain is 0 < d <= 2^255 - 1:
    // for d >= 2^255 the cast wraps and the result is wrong (divFloor(10, 2^256 - 1) returns -10,
    // divFloor(-2^255, 2^255) returns 1). Every caller passes W or q + d < 2^121, so that range
    // is unreachable and is left out here.
    const divCases = [
      ...sample(fc.tuple(sint(MAX_I256), uint(MAX_I256, 1n)), 3),
      ...sample(fc.tuple(sint(1n << 247n), fc.constantFrom(WAD, 1n, 2n, 3n, M120, M120 + 1n)), 4),
      ...[
        MIN_I256,
        MIN_I256 + 1n,
        -M120,
        -WAD - 1n,
        -WAD,
        -WAD + 1n,
        -1n,
        0n,
        1n,
        WAD - 1n,
        WAD,
        M120,
        MAX_I256,
      ].flatMap((a) => [1n, 2n, 3n, WAD - 1n, WAD, WAD + 1n, M120, MAX_I256].map((d) => [a, d] as [bigint, bigint])),
      [5n, 0n],
      [-5n, 0n],
    ] as [bigint, bigint][];

    it("divFloor: floor(a/d) toward negative infinity for signed a", async function () {
      await differential(
        divCases,
        ([a, d]) => h.divFloor(a, d),
        ([a, d]) => divFloor(a, d),
        fitsI256,
      );
    });

    it("divCeil: ceil(a/d) toward positive infinity for signed a", async function () {
      await differential(
        divCases,
        ([a, d]) => h.divCeil(a, d),
        ([a, d]) => divCeil(a, d),
        fitsI256,
      );
    });

    it("min: the smaller of two signed values", async function () {
      await differential(
        sample(fc.tuple(sint(MAX_I256), sint(MAX_I256)), 5),
        ([a, b]) => h.min(a, b),
        ([a, b]) => minBig(a, b),
        fitsI256,
      );
    });
  });

  describe("PositionMath", function () {
    /** Funding "far from zero": up to 2^124 either way (F is a cumulative 18-decimal index). */
    const FUND = 1n << 124n;

    it("pnlPerUnit: x = (P - F) - K for a long, K - (P - F) for a short", async function () {
      await differential(
        sample(fc.tuple(fc.boolean(), sint(M120), uint(M120), sint(FUND)), 10),
        ([isLong, entry, price, funding]) => h.pnlPerUnit(isLong, entry, price, funding),
        ([isLong, entry, price, funding]) => pnlPerUnit(isLong, entry, price, funding),
        fitsI256,
      );
    });

    it("pnlDown: floor(q * x / W), deep losses included", async function () {
      await differential(
        [
          ...sample(fc.tuple(uint(M120), sint(1n << 126n)), 11),
          [M120, -(1n << 126n)],
          [M120, (1n << 126n) - 1n],
          [1n, -1n],
          [1n, -(WAD - 1n)],
          [WAD - 1n, -1n],
          [0n, -(1n << 126n)],
        ] as [bigint, bigint][],
        ([q, x]) => h.pnlDown(q, x),
        ([q, x]) => pnlDown(q, x),
        fitsI256,
      );
    });

    it("equity: c + floor(q * x / W)", async function () {
      await differential(
        sample(fc.tuple(uint(M128), uint(M120), sint(1n << 126n)), 12),
        ([c, q, x]) => h.equity(c, q, x),
        ([c, q, x]) => equityOf(c, q, x),
        fitsI256,
      );
    });

    it("requirementUp: ceil(ceil(q * P / W) * ratio / W)", async function () {
      await differential(
        [
          ...sample(fc.tuple(uint(M128), uint(M128), uint(M64)), 13),
          ...sample(fc.tuple(uint(M120), uint(M120), fc.constantFrom(10n ** 16n, 5n * 10n ** 15n, WAD / 10n)), 14),
        ],
        ([q, p, r]) => h.requirementUp(q, p, r),
        ([q, p, r]) => requirementUp(q, p, r),
        fitsU256,
      );
    });

    it("marginShortfall: the one margin test (losses count, profit never does)", async function () {
      const sizeAndPrice = fc.tuple(uint(M120, 1n), uint(M120, 1n));
      // Margins near the requirement so both outcomes appear: c = req +/- a little, 100x at imr = 1%.
      const nearBoundary = fc
        .tuple(sizeAndPrice, fc.constantFrom(10n ** 16n, WAD / 10n, WAD / 2n), sint(1n << 20n), sint(WAD * 10n ** 6n))
        .map(([[q, p], imr, wiggle, x]) => {
          const req = requirementUp(q, p, imr);
          const c = req + wiggle < 0n ? 0n : req + wiggle;
          return [c > M128 ? M128 : c, q, x, p, imr] as [bigint, bigint, bigint, bigint, bigint];
        });
      await differential(
        [
          ...sample(fc.tuple(uint(M128), uint(M120), sint(1n << 126n), uint(M120), uint(M64)), 15),
          ...sample(nearBoundary, 16),
        ],
        ([c, q, x, p, imr]) => h.marginShortfall(c, q, x, p, imr),
        ([c, q, x, p, imr]) => marginShortfall(c, q, x, p, imr),
        fitsU256,
      );
    });

    it("blendEntry: (q*K + d*(p - F)) / (q + d), up for a long, down for a short", async function () {
      await differential(
        [
          ...sample(fc.tuple(fc.boolean(), uint(M120), sint(M120), uint(M120), uint(M120), sint(FUND)), 17),
          // Realistic prices with wei-level sizes, where the rounding direction decides the last wei.
          ...sample(
            fc.tuple(
              fc.boolean(),
              uint(10n ** 24n),
              sint(10n ** 24n),
              uint(10n ** 24n, 1n),
              fc.bigInt(1n, 10n ** 24n),
              sint(10n ** 22n),
            ),
            18,
          ),
          [true, 0n, 0n, 0n, 1n, 0n],
          [false, 0n, 0n, 0n, 1n, 0n],
          [true, M120, -M120, M120, M120, -M120],
          [false, M120, M120, M120, M120, M120],
          [true, 1n, -1n, 1n, 0n, 1n],
          [false, 1n, -1n, 1n, 0n, 1n],
        ] as [boolean, bigint, bigint, bigint, bigint, bigint][],
        ([l, q, k, d, p, f]) => h.blendEntry(l, q, k, d, p, f),
        ([l, q, k, d, p, f]) => blendEntry(l, q, k, d, p, f),
        fitsI256,
      );
    });

    it("releasedMargin: floor(c * d / q)", async function () {
      await differential(
        [
          ...sample(
            fc
              .tuple(uint(M128), uint(M120, 1n), fc.bigInt(0n, 10n ** 6n))
              .map(([c, q, f]) => [c, (q * f) / 10n ** 6n, q]),
            19,
          ),
          ...sample(fc.tuple(uint(M128), uint(M120), uint(M120)), 20),
          [M128, M120, M120],
          [M128, M120 - 1n, M120],
          [1n, 1n, 2n],
          [5n, 0n, 0n],
        ] as [bigint, bigint, bigint][],
        ([c, d, q]) => h.releasedMargin(c, d, q),
        ([c, d, q]) => releasedMargin(c, d, q),
        fitsU256,
      );
    });

    it("leverageUp: ceil(q * W / c) saturating at 2^128 - 1 (tiny margin, 100x, c == 0)", async function () {
      const hundredX = fc
        .tuple(uint(10n ** 24n, 1n), fc.bigInt(10n ** 18n, 10n ** 23n))
        .map(([q, p]) => [q, mulDivUp(q, p, 100n * WAD)] as [bigint, bigint]);
      await differential(
        [
          ...sample(fc.tuple(uint(M120), uint(M128, 1n)), 21),
          ...sample(hundredX, 22, 100),
          [M120, 1n],
          [M120, 2n],
          [M128, 1n],
          [1n, 1n],
          [1n, M128],
          [0n, 1n],
          [1n, 0n],
          // The cap boundary: q*W/c just below, at and above 2^128 - 1.
          [MAX_LEVERAGE, WAD],
          [MAX_LEVERAGE + 1n, WAD],
          [M120, (M120 * WAD) / MAX_LEVERAGE],
        ] as [bigint, bigint][],
        ([q, c]) => h.leverageUp(q, c),
        ([q, c]) => leverageUp(q, c),
        fitsU256,
      );
    });
  });

  describe("FundingMath", function () {
    it("premium: clamped (p - P) / P truncated toward zero", async function () {
      await differential(
        [
          ...sample(fc.tuple(uint(M120), uint(M120, 1n), uint(M64)), 30),
          ...sample(
            fc
              .tuple(fc.bigInt(10n ** 18n, 10n ** 23n), fc.integer({ min: -200_000, max: 200_000 }), sint(10n ** 9n))
              .map(([p, ppm, jitter]) => {
                const fill = (p * BigInt(1_000_000 + ppm)) / 1_000_000n + jitter;
                return [fill < 0n ? 0n : fill, p, 10n ** 16n] as [bigint, bigint, bigint];
              }),
            31,
          ),
          [0n, 1n, 0n],
          [M120, 1n, M64],
          [1n, M120, M64],
          [7n, 3n, WAD * 10n],
          [3n, 0n, 0n],
        ] as [bigint, bigint, bigint][],
        ([fill, index, cap]) => h.premium(fill, index, cap),
        ([fill, index, cap]) => premiumOf(fill, index, cap),
        fitsI256,
      );
    });

    interface ProjectCase {
      a: FundingAccrual;
      window: bigint;
      period: bigint;
      price: bigint;
      now: bigint;
    }

    /**
     * Accrual states the contract can hold: windowStart <= lastFundingTime <= now, with
     * lastFundingTime inside the current window, or (a quarter of the cases) beyond its end, as
     * after a parameter change shortened the window; |rate| and the window's average premium up to
     * 2^60 per second (far beyond the 10% / 1 hour the parameter bounds allow), F up to 2^200
     * either way, and gaps from 0 seconds to 2^34 seconds (many empty windows).
     */
    const projectArb: fc.Arbitrary<ProjectCase> = fc
      .record({
        window: fc.oneof(fc.constantFrom(60n, 3600n, 86_400n), fc.bigInt(60n, 86_400n)),
        period: fc.oneof(fc.constantFrom(3600n, 8n * 3600n, 30n * 86_400n), fc.bigInt(3600n, 30n * 86_400n)),
        windowStart: fc.bigInt(0n, 1n << 40n),
        into: fc.bigInt(0n, 1n << 20n),
        shortened: fc.integer({ min: 0, max: 3 }).map((v) => v === 0),
        gap: fc.oneof(fc.constantFrom(0n, 1n), uint((1n << 34n) - 1n)),
        funding: sint(1n << 200n),
        rate: fc.oneof(fc.constant(0n), sint(1n << 60n)),
        windowSize: fc.oneof(fc.constant(0n), uint(M128, 1n)),
        avgPremium: sint(1n << 60n),
        noise: fc.bigInt(0n, 1n << 64n),
        price: uint(M120, 1n),
      })
      .map((r) => {
        const lastFundingTime = r.windowStart + (r.shortened ? r.into : r.into % r.window);
        return {
          a: {
            cumulativeFunding: r.funding,
            fundingRate: r.rate,
            lastFundingTime,
            windowStart: r.windowStart,
            premiumTimesSize: r.avgPremium * r.windowSize + (r.windowSize === 0n ? 0n : r.noise % r.windowSize),
            windowSize: r.windowSize,
          },
          window: r.window,
          period: r.period,
          price: r.price,
          now: lastFundingTime + r.gap,
        };
      });

    const fields = [
      "cumulativeFunding",
      "fundingRate",
      "lastFundingTime",
      "windowStart",
      "premiumTimesSize",
      "windowSize",
    ] as const;

    it("project: accrual across partial, closing, empty and shortened windows (every field)", async function () {
      const edges: ProjectCase[] = [
        // Fresh market, no time passed; exactly at the window end; one second before it.
        { a: accrual(0n, 0n, 1000n, 1000n, 0n, 0n), window: 3600n, period: 28_800n, price: 2000n * WAD, now: 1000n },
        {
          a: accrual(0n, 0n, 1000n, 1000n, 5n * WAD, 10n * WAD),
          window: 3600n,
          period: 28_800n,
          price: 2000n * WAD,
          now: 4600n,
        },
        {
          a: accrual(-M120, 347_222_222_222n, 4599n, 1000n, -(10n ** 17n) * WAD, WAD),
          window: 3600n,
          period: 3600n,
          price: M120,
          now: 4599n + 3600n * 1000n,
        },
        // A window shortened below the time already accrued: F must not run backwards.
        {
          a: accrual(5n * WAD, 10n ** 12n, 10_000n, 1000n, 3n * WAD, WAD),
          window: 60n,
          period: 3600n,
          price: 2000n * WAD,
          now: 10_030n,
        },
        {
          a: accrual(5n * WAD, -(10n ** 12n), 10_000n, 1000n, -3n * WAD, WAD),
          window: 60n,
          period: 3600n,
          price: 2000n * WAD,
          now: 10_000n,
        },
        // Negative premium average that truncates toward zero.
        { a: accrual(1n, -1n, 10n, 10n, -7n, 2n), window: 60n, period: 3600n, price: 1n, now: 10_000n },
      ];
      // Each case runs without an open-interest floor and with one above the window's size.
      const withOpenInterest = [...sample(projectArb, 32), ...edges].flatMap((c) => [
        { ...c, oi: 0n },
        { ...c, oi: minBig(c.a.windowSize * 3n + 1n, (1n << 256n) - 1n) },
      ]);
      await differential(
        withOpenInterest,
        async (c) => {
          const r = await h.project(c.a, c.window, c.period, c.price, c.now, c.oi);
          return {
            cumulativeFunding: r.cumulativeFunding,
            fundingRate: r.fundingRate,
            lastFundingTime: r.lastFundingTime,
            windowStart: r.windowStart,
            premiumTimesSize: r.premiumTimesSize,
            windowSize: r.windowSize,
          };
        },
        (c) => projectFunding(c.a, c.window, c.period, c.price, c.now, c.oi),
        (v) =>
          fitsI256(v.cumulativeFunding) &&
          fitsI256(v.fundingRate) &&
          fitsU256(v.lastFundingTime) &&
          fitsU256(v.windowStart) &&
          fitsI256(v.premiumTimesSize) &&
          fitsU256(v.windowSize),
        (x, y) => fields.every((k) => x[k] === y[k]),
      );
    });
  });
});

function accrual(
  cumulativeFunding: bigint,
  fundingRate: bigint,
  lastFundingTime: bigint,
  windowStart: bigint,
  premiumTimesSize: bigint,
  windowSize: bigint,
): FundingAccrual {
  return { cumulativeFunding, fundingRate, lastFundingTime, windowStart, premiumTimesSize, windowSize };
}

// ---------------------------------------------------------------------------------------------
// Part 2: applyFill and the position views against the real Clearinghouse
// ---------------------------------------------------------------------------------------------

const FEED_SCALE = 10n ** 10n; // the mock feeds have 8 decimals: index prices are multiples of 1e10
const ROUNDS = 8;
const TRADES_PER_ROUND = 16;

/** A rejection the prediction expects, named as the contract's custom error. */
class Reject extends Error {
  constructor(readonly errorName: string) {
    super(errorName);
  }
}

interface TradePlan {
  market: number;
  maker: number;
  takerShift: number;
  mode: "open" | "increase" | "reduce" | "close" | "flip";
  makerBuys: boolean;
  notionalExp: number;
  mantissa: bigint;
  fractionPpm: bigint;
  priceOffsetPpm: number;
  priceJitter: bigint;
  makerLevBp: bigint;
  takerLevBp: bigint;
}

interface RoundPlan {
  trades: TradePlan[];
  seconds: number;
  movesPpm: [number, number];
  laterSeconds: number;
}

const tradePlanArb: fc.Arbitrary<TradePlan> = fc.record({
  market: fc.integer({ min: 0, max: 1 }),
  maker: fc.integer({ min: 0, max: 9 }),
  takerShift: fc.integer({ min: 1, max: 9 }),
  mode: fc.constantFrom(
    "open" as const,
    "open" as const,
    "increase" as const,
    "reduce" as const,
    "close" as const,
    "flip" as const,
  ),
  makerBuys: fc.boolean(),
  notionalExp: fc.integer({ min: 19, max: 22 }),
  mantissa: fc.bigInt(1_000_000n, 9_999_999n),
  fractionPpm: fc.bigInt(1n, 999_999n),
  priceOffsetPpm: fc.integer({ min: -9_900, max: 9_900 }),
  priceJitter: fc.bigInt(-(10n ** 12n), 10n ** 12n),
  // Leverage in basis points of 1x: 1x to 100x (ETH allows 100x here; BTC's 10% imr caps it).
  makerLevBp: fc.oneof(fc.bigInt(10_000n, 200_000n), fc.bigInt(200_000n, 1_000_000n), fc.constant(1_000_000n)),
  takerLevBp: fc.oneof(fc.bigInt(10_000n, 200_000n), fc.bigInt(200_000n, 1_000_000n), fc.constant(1_000_000n)),
});

const roundArb: fc.Arbitrary<RoundPlan> = fc.record({
  trades: fc.array(tradePlanArb, { minLength: TRADES_PER_ROUND, maxLength: TRADES_PER_ROUND }),
  seconds: fc.oneof(fc.integer({ min: 1, max: 1800 }), fc.integer({ min: 1800, max: 4 * 3600 })),
  // Small moves, and gaps up to 35% (deep losses at 100x).
  movesPpm: fc.tuple(
    fc.oneof(fc.integer({ min: -20_000, max: 20_000 }), fc.integer({ min: -350_000, max: 350_000 })),
    fc.oneof(fc.integer({ min: -20_000, max: 20_000 }), fc.integer({ min: -350_000, max: 350_000 })),
  ),
  laterSeconds: fc.integer({ min: 1, max: 3 * 3600 }),
});

function customError(e: unknown, ch: Clearinghouse): string {
  const err = e as { data?: unknown; shortMessage?: string; message?: string };
  if (typeof err?.data === "string" && err.data.length >= 10) {
    const parsed = ch.interface.parseError(err.data);
    return parsed ? parsed.name : `unknown error ${err.data.slice(0, 10)}`;
  }
  return `no revert data: ${err?.shortMessage ?? err?.message ?? String(e)}`;
}

async function positionOf(ch: Clearinghouse, id: string, account: string): Promise<PositionRecord> {
  const p = await ch.getPosition(id, account);
  return { isLong: p.isLong, size: p.size, entry: p.entry, margin: p.margin, leverage: p.leverage };
}

/** ETH-USD listed at up to 100x (imr 1%, mmr 0.5%); BTC-USD keeps the defaults (10x, 5%). */
async function leveragedFixture(): Promise<Fixture> {
  return systemWith({ eth: { imr: 10n ** 16n, mmr: 5n * 10n ** 15n } });
}

describe("Clearinghouse differential: applyFill and the position views", function () {
  this.timeout(600_000);

  it(`${ROUNDS * TRADES_PER_ROUND} random matched fills equal applyFill to the wei; equity, isLiquidatable, isBankrupt, marginRatio and currentFunding equal lib after price moves and funding`, async function () {
    const f: Fixture = await loadFixture(leveragedFixture);
    const ch = f.clearinghouse;
    const lens = f.lens;
    const symbols = [ETH, BTC];
    const ids = [f.ethId, f.btcId];
    const params = await Promise.all(ids.map((id) => ch.marketParams(id)));
    const prices = await Promise.all(
      symbols.map(async (s) => (await f.markets.get(s)!.aggregator.latestRoundData())[1] * FEED_SCALE),
    );
    const traders: HardhatEthersSigner[] = f.traders;
    const stats = { ok: 0, rejected: new Map<string, number>(), views: 0, healthy: 0, liquidatable: 0, bankrupt: 0 };

    async function trade(plan: TradePlan): Promise<void> {
      const mi = plan.market;
      const id = ids[mi];
      const p = params[mi];
      const index = prices[mi];
      const mk = plan.maker;
      const tk = (plan.maker + plan.takerShift) % traders.length;
      const [mkPos, tkPos, mkFree, tkFree, accrual, pending, treasury] = await Promise.all([
        positionOf(ch, id, traders[mk].address),
        positionOf(ch, id, traders[tk].address),
        ch.freeCollateral(traders[mk].address),
        ch.freeCollateral(traders[tk].address),
        accrualOf(ch, id),
        ch.pendingFundFees(),
        ch.treasuryBalance(),
      ]);
      // The long open interest before the fill floors the weight of a window closed by this call.
      const openInterest = (await ch.marketState(id)).longOpenInterest;
      const openSize = (plan.mantissa * 10n ** BigInt(plan.notionalExp - 6) * WAD) / index + 1n;
      let makerBuys = plan.makerBuys;
      let size = openSize;
      const mode = mkPos.size === 0n ? "open" : plan.mode;
      if (mode === "increase") makerBuys = mkPos.isLong;
      else if (mode !== "open") {
        makerBuys = !mkPos.isLong;
        size =
          mode === "reduce"
            ? (mkPos.size * plan.fractionPpm) / 1_000_000n + 1n
            : mode === "close"
              ? mkPos.size
              : mkPos.size + openSize;
      }
      const price = (index * BigInt(1_000_000 + plan.priceOffsetPpm)) / 1_000_000n + plan.priceJitter;
      const makerLev = (plan.makerLevBp * WAD) / 10_000n;
      const takerLev = (plan.takerLevBp * WAD) / 10_000n;
      const maker = buildOrder(traders[mk].address, {
        marketId: id,
        size: makerBuys ? size : -size,
        limitPrice: price,
        leverage: makerLev,
      });
      const taker = buildOrder(traders[tk].address, {
        marketId: id,
        size: makerBuys ? -size : size,
        limitPrice: price,
        leverage: takerLev,
      });

      // Pin the block time so F of the call is known: FundingMath.project at that second.
      const ts = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(ts);
      const funding =
        accrual.lastFundingTime === ts
          ? accrual.cumulativeFunding
          : projectFunding(accrual, p.fundingWindow, p.fundingPeriod, index, ts, openInterest).cumulativeFunding;

      // The prediction: both legs through applyFill, free collateral settled in the contract's
      // order (reducing leg, increasing leg's margin, then fees), every revert condition.
      let predicted: string | null = null;
      const makerLeg = applyFill(mkPos, makerBuys ? size : -size, price, makerLev, index, funding, p.imr);
      const takerLeg = applyFill(tkPos, makerBuys ? -size : size, price, takerLev, index, funding, p.imr);
      const notional = mulDivUp(size, price, WAD);
      const makerFee = mulDivUp(notional, p.makerFee, WAD);
      const takerFee = mulDivUp(notional, p.takerFee, WAD);
      const settle = (free: bigint, leg: typeof makerLeg): bigint => {
        let v = free + leg.payout; // payout is 0 without a reducing part
        if (v < 0n) throw new Reject("InsufficientFreeCollateral");
        v -= leg.posted;
        if (v < 0n) throw new Reject("InsufficientFreeCollateral");
        if (leg.position.size !== 0n && mulDivDown(leg.position.size, index, WAD) < p.minNotional) {
          throw new Reject("NotionalBelowMinimum");
        }
        return v;
      };
      let mkFreeAfter = 0n;
      let tkFreeAfter = 0n;
      try {
        if (abs(price - index) * WAD > p.priceBand * index) throw new Reject("PriceOutsideBand");
        mkFreeAfter = settle(mkFree, makerLeg);
        tkFreeAfter = settle(tkFree, takerLeg);
        if (mkFreeAfter < makerFee) throw new Reject("InsufficientFreeCollateral");
        mkFreeAfter -= makerFee;
        if (tkFreeAfter < takerFee) throw new Reject("InsufficientFreeCollateral");
        tkFreeAfter -= takerFee;
      } catch (e) {
        if (!(e instanceof Reject)) throw e;
        predicted = e.errorName;
      }

      let actual: string | null = null;
      try {
        await (
          await signAndMatch(
            ch,
            f.keeper,
            { signer: traders[mk], order: maker },
            { signer: traders[tk], order: taker },
            size,
          )
        ).wait();
      } catch (e) {
        actual = customError(e, ch);
      }
      const where = `${show({ plan, mode, size, price, index, funding, mkPos, tkPos, mkFree, tkFree })}`;
      expect(actual, `acceptance of ${where}`).to.equal(predicted);
      if (actual !== null) {
        stats.rejected.set(actual, (stats.rejected.get(actual) ?? 0) + 1);
        return;
      }
      stats.ok += 1;
      const [mkAfter, tkAfter, mkFreeNow, tkFreeNow, accrualNow, pendingNow, treasuryNow] = await Promise.all([
        positionOf(ch, id, traders[mk].address),
        positionOf(ch, id, traders[tk].address),
        ch.freeCollateral(traders[mk].address),
        ch.freeCollateral(traders[tk].address),
        accrualOf(ch, id),
        ch.pendingFundFees(),
        ch.treasuryBalance(),
      ]);
      expect(accrualNow.cumulativeFunding, `F of ${where}`).to.equal(funding);
      expect(show(mkAfter), `maker position of ${where}`).to.equal(show(makerLeg.position));
      expect(show(tkAfter), `taker position of ${where}`).to.equal(show(takerLeg.position));
      expect(mkFreeNow, `maker free collateral of ${where}`).to.equal(mkFreeAfter);
      expect(tkFreeNow, `taker free collateral of ${where}`).to.equal(tkFreeAfter);
      const toFund = mulDivDown(makerFee + takerFee, p.fundFeeShare, WAD);
      expect(pendingNow - pending).to.equal(toFund);
      const toKeepers = mulDivDown(makerFee + takerFee, p.keeperFeeShare, WAD);
      expect(treasuryNow - treasury).to.equal(makerFee + takerFee - toFund - toKeepers);
      expect(accrualNow.premiumTimesSize).to.equal(
        (accrual.lastFundingTime === ts
          ? accrual
          : projectFunding(accrual, p.fundingWindow, p.fundingPeriod, index, ts, openInterest)
        ).premiumTimesSize +
          premiumOf(price, index, p.maxPremium) * size,
      );
    }

    /** Every view of every (market, trader) against lib, at the latest block's time. */
    async function checkViews(): Promise<void> {
      const now = BigInt(await time.latest());
      for (const [mi, id] of ids.entries()) {
        const p = params[mi];
        const P = prices[mi];
        const accrual = await accrualOf(ch, id);
        const openInterest = (await ch.marketState(id)).longOpenInterest;
        const F = projectFunding(accrual, p.fundingWindow, p.fundingPeriod, P, now, openInterest).cumulativeFunding;
        expect(await lens.currentFunding(id), `currentFunding ${symbols[mi]}`).to.equal(F);
        await Promise.all(
          traders.map(async (t) => {
            const [pos, eqView, liqView, bankView, ratioView] = await Promise.all([
              positionOf(ch, id, t.address),
              lens.equity(id, t.address),
              lens.isLiquidatable(id, t.address),
              lens.isBankrupt(id, t.address),
              lens.marginRatio(id, t.address),
            ]);
            const open = pos.size !== 0n;
            const eq = open ? equityOf(pos.margin, pos.size, pnlPerUnit(pos.isLong, pos.entry, P, F)) : 0n;
            const liquidatable = open && eq < requirementUp(pos.size, P, p.mmr);
            const bankrupt = open && eq < 0n;
            const ratio = open ? divFloor(eq * WAD, mulDivUp(pos.size, P, WAD)) : MAX_I256;
            const where = `${symbols[mi]} ${t.address} ${show({ pos, P, F })}`;
            expect(eqView, `equity ${where}`).to.equal(eq);
            expect(liqView, `isLiquidatable ${where}`).to.equal(liquidatable);
            expect(bankView, `isBankrupt ${where}`).to.equal(bankrupt);
            expect(ratioView, `marginRatio ${where}`).to.equal(ratio);
            // Stored leverage is never below ceil(q*W/c) (equal unless the last change was a reduction).
            if (open) expect(pos.leverage >= leverageUp(pos.size, pos.margin)).to.equal(true);
            stats.views += 1;
            if (open) {
              if (bankrupt) stats.bankrupt += 1;
              else if (liquidatable) stats.liquidatable += 1;
              else stats.healthy += 1;
            }
          }),
        );
      }
    }

    for (const round of sample(roundArb, 100, ROUNDS)) {
      // A fresh oracle round at the same prices: opening and increasing need a price within the
      // strict window, and the previous round may have let more than that pass.
      for (const [mi, s] of symbols.entries()) await f.setPrice(s, prices[mi]);
      for (const plan of round.trades) await trade(plan);
      await checkViews();
      await time.increase(round.seconds);
      for (const [mi, s] of symbols.entries()) {
        let next = ((prices[mi] * BigInt(1_000_000 + round.movesPpm[mi])) / 1_000_000n / FEED_SCALE) * FEED_SCALE;
        if (next < FEED_SCALE) next = FEED_SCALE;
        prices[mi] = next;
        await f.setPrice(s, next);
      }
      await checkViews();
      // Funding accrues virtually in the views: time passes with no transaction touching F.
      await time.increase(round.laterSeconds);
      await checkViews();
    }

    const rejected = [...stats.rejected.entries()].map(([k, n]) => `${k} ${n}`).join(", ");
    console.log(`      fills: ${stats.ok} executed, rejected as predicted: ${rejected || "none"}`);
    console.log(
      `      views: ${stats.views} (market, trader) checks; open positions seen ${stats.healthy} healthy, ${stats.liquidatable} liquidatable, ${stats.bankrupt} bankrupt`,
    );
    expect(stats.ok).to.be.greaterThan(ROUNDS * TRADES_PER_ROUND * 0.5);
    expect(stats.liquidatable + stats.bankrupt).to.be.greaterThan(0);
    expect(stats.bankrupt).to.be.greaterThan(0);
  });
});

const abs = (v: bigint): bigint => (v < 0n ? -v : v);
