/**
 * The ADL score chain (docs/mechanism.md sections 2-4): contracts/libraries/ScoreMath.sol against its
 * TypeScript mirror lib/score.ts, and the properties the completeness proof relies on.
 *
 * 1. Differential: every ScoreMath function through contracts/test/ScoreHarness.sol on seeded random
 *    inputs (fast-check `fc.sample`, a fixed seed per property) plus explicit extremes, eth_calls
 *    batched with Promise.all. Where the mirror throws or its result does not fit the return type,
 *    the harness must revert; otherwise the results must be equal.
 * 2. Monotonicity: S_fin never decreases when a grows with x fixed, and never decreases when x grows
 *    with a fixed, including across x = 0 (losses score <= 0 <= profits). Checked on unit steps and
 *    on random pairs in the mirror, and spot-checked on the harness's own outputs.
 * 3. Node bound: for any members (a_i, K_i) of one side, S_fin(max a_i, best K) is at least every
 *    member's score (minus infinity trivially), including at the minus-infinity boundary.
 * 4. ranksBelow is a strict total order (irreflexive, antisymmetric, transitive, total on distinct
 *    accounts) with the address tie-break and minus infinity last; compareQueue sorts by it.
 * 5. Eligibility: isEligible equals floor(W*W/a) + x >= delta, and the key form E +/- (P - F)
 *    equals floor(W*W/a) + x on both sides.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { MAX_I256, MAX_U256, MIN_I256, bigintGenerators, fitsI256 } from "../helpers/generators";
import type { ScoreHarness } from "../../typechain-types";
import { WAD, mulDivUp } from "../../lib/math";
import { leverageUp, pnlPerUnit } from "../../lib/position";
import {
  MINUS_INFINITY_VALUE,
  WAD_SQUARED,
  compareQueue,
  eligibilityKey,
  isEligible,
  isMinusInfinity,
  keyCovers,
  nodeBound,
  ranksBelow,
  score,
  scoreFinite,
  type QueueEntry,
} from "../../lib/score";

// ---------------------------------------------------------------------------------------------
// Ranges and generators
// ---------------------------------------------------------------------------------------------

const SEED = 0x5c0e_2026;
/** Random cases per differential property. */
const CASES = 500;
/** Random cases per mirror-only property (cheap). */
const MIRROR_CASES = 5000;
const CHUNK = 250;

/** The design's cap on a. */
const A_MAX = 1n << 128n;
/** |K|, q, P stay below 2^128. */
const M128 = (1n << 128n) - 1n;
const M120 = (1n << 120n) - 1n;
/** Funding "far from zero". */
const FUND = 1n << 127n;
/** |x| reachable in the domain: |(P - F) - K| < 2^129 + 2^127. */
const X_MAX = (1n << 129n) + FUND;

const always = (): boolean => true;

const U_EDGES = [0n, 1n, 2n, WAD - 1n, WAD, WAD + 1n, 10n ** 36n - 1n, 10n ** 36n, M120, M128, A_MAX];
const { uint, sint } = bigintGenerators(U_EDGES);

/** x near 0: within a few thousand wei, 0 included. */
const xNearZero = fc.oneof(fc.constantFrom(-1n, 0n, 1n), fc.bigInt(-5000n, 5000n));

/** Any x in the domain, with near-zero values and deep losses overweighted. */
const anyX = fc.oneof(
  { weight: 3, arbitrary: sint(X_MAX) },
  { weight: 1, arbitrary: xNearZero },
  { weight: 1, arbitrary: fc.bigInt(-X_MAX, -(10n ** 36n)) },
);

/** Any a in [0, 2^128] with the tiny-margin end (a near 2^128) and a = 1 overweighted. */
const anyA = fc.oneof(
  { weight: 3, arbitrary: uint(A_MAX) },
  { weight: 1, arbitrary: fc.bigInt(A_MAX - 10n ** 6n, A_MAX) },
  { weight: 1, arbitrary: fc.constantFrom(1n, 2n, 3n) },
);

/** Any P in [1, 2^128 - 1] with P = 1 and P near 2^120 overweighted. */
const anyP = fc.oneof(
  { weight: 3, arbitrary: uint(M128, 1n) },
  { weight: 1, arbitrary: fc.constantFrom(1n, 2n, M120, M120 + 1n, M120 - 1n) },
  { weight: 1, arbitrary: fc.bigInt(M120 - 10n ** 9n, M120 + 10n ** 9n) },
);

/**
 * A realistic position: price 0.001 to 100,000, leverage 1x to 100x (100x overweighted), entry
 * within +/-60% of the price, funding up to +/-1,000 per unit; returns (isLong, a, K, P, F).
 */
const realistic = fc
  .tuple(
    fc.boolean(),
    fc.bigInt(10n ** 15n, 10n ** 23n),
    fc.bigInt(10n ** 12n, 10n ** 26n),
    fc.oneof(fc.constant(1_000_000n), fc.bigInt(10_000n, 1_000_000n)),
    fc.bigInt(-600_000n, 600_000n),
    fc.bigInt(-(10n ** 21n), 10n ** 21n),
  )
  .map(([isLong, p, q, levBp, movePpm, f]) => {
    // Leverage levBp / 10,000: margin c = ceil(q * P / (lev * W)), then a = ceil(q * W / c).
    const c = mulDivUp(q, p * 10_000n, levBp * WAD);
    const a = leverageUp(q, c);
    const entry = (p * (1_000_000n + movePpm)) / 1_000_000n;
    const k = entry - f; // funding-adjusted entry at the time of opening
    return [isLong, a, k, p, f] as [boolean, bigint, bigint, bigint, bigint];
  });

/** (isLong, a, K, P, F) anywhere in the domain. */
const anyPosition = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.boolean(), anyA, sint(M128), anyP, sint(FUND)) },
  { weight: 2, arbitrary: realistic },
);

const sample = <T>(arb: fc.Arbitrary<T>, salt: number, n = CASES): T[] =>
  fc.sample(arb, { seed: SEED + salt, numRuns: n });

const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Addresses from a small pool so that ties on address happen, in random order. */
const ADDRESSES = [
  "0x0000000000000000000000000000000000000000",
  "0x0000000000000000000000000000000000000001",
  "0x00000000000000000000000000000000000000ff",
  "0x7fffffffffffffffffffffffffffffffffffffff",
  "0x8000000000000000000000000000000000000000",
  "0xffffffffffffffffffffffffffffffffffffffff",
  "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
];
const anyAddress = fc.oneof(
  fc.constantFrom(...ADDRESSES),
  fc.bigInt(0n, (1n << 160n) - 1n).map((v) => ethers.getAddress("0x" + v.toString(16).padStart(40, "0"))),
);

/** A queue key with scores from a small pool (so ties happen) or anywhere finite. */
const queueKey: fc.Arbitrary<QueueEntry> = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.constantFrom(-1n, 0n, 1n, 7n, MINUS_INFINITY_VALUE, MAX_I256), sint(1n << 200n)),
    anyAddress,
  )
  .map(([inf, value, account]) => ({ minusInf: inf, value: inf ? MINUS_INFINITY_VALUE : value, account }));

// ---------------------------------------------------------------------------------------------
// Differential harness
// ---------------------------------------------------------------------------------------------

let totalCases = 0;

type Outcome<T> = { revert: true } | { revert: false; value: T };

/** Runs `chunkCalls` over `items` CHUNK at a time, each chunk's calls concurrently. */
async function batched<C, T>(items: C[], call: (c: C) => Promise<T>): Promise<Outcome<T>[]> {
  const out: Outcome<T>[] = [];
  for (let i = 0; i < items.length; i += CHUNK) {
    const chunk = items.slice(i, i + CHUNK);
    out.push(
      ...(await Promise.all(
        chunk.map(async (c): Promise<Outcome<T>> => {
          try {
            return { revert: false, value: await call(c) };
          } catch {
            return { revert: true };
          }
        }),
      )),
    );
  }
  return out;
}

/** Compares harness and mirror on `cases`; fails with the first mismatching inputs. Returns the revert count. */
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
  const chain = await batched(cases, onChain);
  cases.forEach((c, j) => {
    let expected: Outcome<T>;
    try {
      const v = mirror(c);
      expected = inRange(v) ? { revert: false, value: v } : { revert: true };
    } catch {
      expected = { revert: true };
    }
    const got = chain[j];
    const ok = expected.revert === got.revert && (expected.revert || same(expected.value, (got as { value: T }).value));
    if (expected.revert) reverts += 1;
    if (!ok && failures.length < 5) failures.push(`input ${show(c)}: mirror ${show(expected)}, harness ${show(got)}`);
  });
  expect(failures, failures.join("\n")).to.deep.equal([]);
  return reverts;
}

/** The values of a harness call that must not revert (fails on a revert). */
async function values<C, T>(items: C[], call: (c: C) => Promise<T>): Promise<T[]> {
  const out = await batched(items, call);
  return out.map((o, i) => {
    if (o.revert) expect.fail(`harness reverted on ${show(items[i])}`);
    return o.value;
  });
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe("ADL score: ScoreMath vs lib/score.ts and the properties completeness relies on", function () {
  let h: ScoreHarness;

  before(async function () {
    h = await (await ethers.getContractFactory("ScoreHarness")).deploy();
  });

  after(function () {
    console.log(`      ${totalCases} inputs compared between the mirror and the harness`);
  });

  describe("differential: harness == mirror bit for bit", function () {
    /** (a, x, P) for the score functions. */
    const scoreCases: [bigint, bigint, bigint][] = [
      ...sample(fc.tuple(anyA, anyX, anyP), 1),
      ...sample(
        realistic.map(([l, a, k, p, f]) => [a, pnlPerUnit(l, k, p, f), p] as [bigint, bigint, bigint]),
        2,
      ),
      // x near 0 at every scale of a and P.
      ...sample(fc.tuple(anyA, xNearZero, anyP), 3, 200),
      // Extremes: a = 0, 1, 2^128; P = 1, near 2^120, 2^128 - 1; x = 0, +/-1, deep loss, the domain edge.
      ...[0n, 1n, WAD, 10n ** 36n, A_MAX - 1n, A_MAX].flatMap((a) =>
        [-X_MAX, -(10n ** 36n), -WAD, -1n, 0n, 1n, WAD, 10n ** 36n, X_MAX].flatMap((x) =>
          [1n, WAD, M120, M128].map((p) => [a, x, p] as [bigint, bigint, bigint]),
        ),
      ),
      // Outside the domain: P == 0 (reverts for x <= 0 only), overflowing products, int256 min.
      [WAD, -1n, 0n],
      [WAD, 0n, 0n],
      [WAD, 1n, 0n],
      [MAX_U256, MAX_I256, M128],
      [A_MAX, MAX_I256, 1n],
      [A_MAX, MIN_I256, 1n],
      [1n, MIN_I256 + 1n, 1n],
      [1n, MIN_I256 + 1n, WAD],
    ];

    it("x: per-unit PnL, as PositionMath.pnlPerUnit", async function () {
      await differential(
        sample(anyPosition, 10),
        ([l, , k, p, f]) => h.x(l, k, p, f),
        ([l, , k, p, f]) => pnlPerUnit(l, k, p, f),
        fitsI256,
      );
    });

    it("scoreFinite: S_fin (tiny margin, 100x, deep losses, x near and at 0, a = 1, P = 1, P near 2^120)", async function () {
      const reverts = await differential(
        scoreCases,
        ([a, x, p]) => h.scoreFinite(a, x, p),
        ([a, x, p]) => scoreFinite(a, x, p),
        fitsI256,
      );
      expect(reverts).to.be.greaterThan(0).and.lessThan(10); // only the out-of-domain rows
    });

    it("isMinusInfinity: x < 0 and a * (-x) >= W*W on the exact product", async function () {
      const boundary = [1n, 2n, 5n, 1000n, WAD, 10n ** 35n, 10n ** 36n].flatMap((a) => [
        [a, -(WAD_SQUARED / a)] as [bigint, bigint],
        [a, -(WAD_SQUARED / a) + 1n] as [bigint, bigint],
        [a, -(WAD_SQUARED / a) - 1n] as [bigint, bigint],
      ]);
      await differential(
        [...scoreCases.map(([a, x]) => [a, x] as [bigint, bigint]), ...boundary, [MAX_U256, MIN_I256]],
        ([a, x]) => h.isMinusInfinity(a, x),
        ([a, x]) => isMinusInfinity(a, x),
        always,
      );
    });

    it("score: (minusInf, value)", async function () {
      await differential(
        scoreCases,
        async ([a, x, p]) => {
          const r = await h.score(a, x, p);
          return { minusInf: r.minusInf, value: r.value };
        },
        ([a, x, p]) => score(a, x, p),
        (v) => fitsI256(v.value),
        (u, v) => u.minusInf === v.minusInf && u.value === v.value,
      );
    });

    it("ranksBelow: queue order with the address tie-break", async function () {
      await differential(
        sample(fc.tuple(queueKey, queueKey), 20),
        ([a, b]) => h.ranksBelow(a.value, a.minusInf, a.account, b.value, b.minusInf, b.account),
        ([a, b]) => ranksBelow(a.value, a.minusInf, a.account, b.value, b.minusInf, b.account),
        always,
      );
    });

    it("eligibilityKey: floor(W*W/a) -/+ K (a == 0 reverts)", async function () {
      const reverts = await differential(
        [
          ...sample(anyPosition, 30).map(([l, a, k]) => [l, a, k] as [boolean, bigint, bigint]),
          [true, 0n, 0n],
          [false, 0n, 5n],
          [true, 1n, M128],
          [false, 1n, -M128],
          [true, 1n, MIN_I256],
          [false, 1n, MAX_I256],
        ] as [boolean, bigint, bigint][],
        ([l, a, k]) => h.eligibilityKey(l, a, k),
        ([l, a, k]) => eligibilityKey(l, a, k),
        fitsI256,
      );
      expect(reverts).to.be.greaterThan(0);
    });

    /** (isLong, a, K, P, F, delta) with delta near the equity per unit so both outcomes occur. */
    const eligibilityCases = sample(
      fc
        .tuple(anyPosition, fc.boolean(), uint(1n << 130n), fc.bigInt(-3n, 3n))
        .map(([[l, a0, k, p, f], near, far, wiggle]) => {
          const a = a0 === 0n ? 1n : a0;
          const perUnit = WAD_SQUARED / a + pnlPerUnit(l, k, p, f);
          const delta = near ? maxBig(0n, perUnit + wiggle) : far;
          return [l, a, k, p, f, delta] as [boolean, bigint, bigint, bigint, bigint, bigint];
        }),
      31,
    );

    it("keyCovers and isEligible: E +/- (P - F) >= delta", async function () {
      await differential(
        eligibilityCases,
        ([l, a, k, p, f, d]) => h.isEligible(l, a, k, p, f, d),
        ([l, a, k, p, f, d]) => isEligible(l, a, k, p, f, d),
        always,
      );
      await differential(
        [
          ...eligibilityCases.map(
            ([l, a, k, p, f, d]) => [l, eligibilityKey(l, a, k), p, f, d] as [boolean, bigint, bigint, bigint, bigint],
          ),
          [true, MAX_I256, M128, -FUND, 1n],
          [false, MIN_I256, M128, FUND, 1n],
          [true, 0n, 1n, 0n, MAX_U256],
        ] as [boolean, bigint, bigint, bigint, bigint][],
        ([l, e, p, f, d]) => h.keyCovers(l, e, p, f, d),
        ([l, e, p, f, d]) => keyCovers(l, e, p, f, d),
        always,
      );
    });

    it("nodeBound: S_fin(max a, x(best K))", async function () {
      await differential(
        sample(anyPosition, 40),
        ([l, a, k, p, f]) => h.nodeBound(a, k, l, p, f),
        ([l, a, k, p, f]) => nodeBound(a, k, l, p, f),
        fitsI256,
      );
    });
  });

  describe("monotonicity of S_fin (a node's bound relies on it)", function () {
    // Property: for a fixed P, S_fin(a, x) never decreases when a grows (x fixed) and never
    // decreases when x grows (a fixed), including from x <= 0 to x > 0; so losses score <= 0,
    // x = 0 scores 0 and profits score >= 0.
    const steps = fc.tuple(anyA, anyX, anyP, uint(A_MAX), uint(X_MAX));

    it(`mirror: unit steps and random steps in a and in x (${MIRROR_CASES} cases each)`, function () {
      const bad: string[] = [];
      for (const [a, x, p, da, dx] of sample(steps, 50, MIRROR_CASES)) {
        const s = scoreFinite(a, x, p);
        const a2 = minBig(a + da, A_MAX);
        const x2 = minBig(x + dx, X_MAX);
        if (a < A_MAX && scoreFinite(a + 1n, x, p) < s) bad.push(`a+1 ${show([a, x, p])}`);
        if (scoreFinite(a2, x, p) < s) bad.push(`a->${a2} ${show([a, x, p])}`);
        if (scoreFinite(a, x + 1n, p) < s) bad.push(`x+1 ${show([a, x, p])}`);
        if (scoreFinite(a, x2, p) < s) bad.push(`x->${x2} ${show([a, x, p])}`);
        if (Math.sign(Number(s)) * Math.sign(Number(x)) < 0) bad.push(`sign ${show([a, x, p, s])}`);
      }
      expect(bad.slice(0, 5)).to.deep.equal([]);
    });

    it("mirror: each step of the chain is non-decreasing, and every unit step across x = 0", function () {
      const bad: string[] = [];
      for (const [a, x, p] of sample(fc.tuple(anyA, fc.bigInt(-20n, 20n), anyP), 51, MIRROR_CASES)) {
        const row = [-2n, -1n, 0n, 1n, 2n].map((d) => scoreFinite(a, x + d, p));
        for (let i = 1; i < row.length; i += 1) if (row[i] < row[i - 1]) bad.push(show([a, x, p, row]));
        if (scoreFinite(a, 0n, p) !== 0n) bad.push(`S(x=0) ${show([a, p])}`);
      }
      // The chain's steps on their own: y -> g and (Pa/W, g) -> S, with unit steps in y.
      for (const [y, pa, g] of sample(fc.tuple(uint(1n << 200n), uint(1n << 197n), uint(WAD - 1n)), 52, 2000)) {
        if ((y * WAD) / (WAD + y) > ((y + 1n) * WAD) / (WAD + y + 1n)) bad.push(`g(y) ${y}`);
        if ((y * WAD) / (WAD + y) >= WAD) bad.push(`g < W ${y}`);
        if ((pa * g) / WAD > ((pa + 1n) * g) / WAD || (pa * g) / WAD > (pa * (g + 1n)) / WAD) bad.push(`S ${pa} ${g}`);
      }
      expect(bad.slice(0, 5)).to.deep.equal([]);
    });

    it("harness: the on-chain values are monotone too (spot check)", async function () {
      const base = sample(steps, 53, 150).map(([a, x, p, da, dx]) => ({ a, x, p, da, dx }));
      // Around x = 0: x from -2 to 2 at the same (a, P).
      const zero = sample(fc.tuple(anyA, anyP), 54, 50);
      const rows = base.flatMap(({ a, x, p, da, dx }) => {
        const aUp = minBig(a + 1n, A_MAX);
        return [
          [a, x, p],
          [aUp, x, p],
          [minBig(a + da, A_MAX), x, p],
          [a, x + 1n, p],
          [a, minBig(x + dx, X_MAX), p],
        ] as [bigint, bigint, bigint][];
      });
      const zeroRows = zero.flatMap(([a, p]) =>
        [-2n, -1n, 0n, 1n, 2n].map((x) => [a, x, p] as [bigint, bigint, bigint]),
      );
      const got = await values([...rows, ...zeroRows], ([a, x, p]) => h.scoreFinite(a, x, p));
      const bad: string[] = [];
      for (let i = 0; i < base.length; i += 1) {
        const [s, ...after] = got.slice(5 * i, 5 * i + 5);
        if (after.some((t) => t < s)) bad.push(show({ ...base[i], got: got.slice(5 * i, 5 * i + 5) }));
      }
      for (let i = 0; i < zero.length; i += 1) {
        const row = got.slice(rows.length + 5 * i, rows.length + 5 * i + 5);
        for (let j = 1; j < 5; j += 1) if (row[j] < row[j - 1]) bad.push(show({ ap: zero[i], row }));
        if (row[2] !== 0n) bad.push(show({ ap: zero[i], row }));
      }
      expect(bad.slice(0, 5)).to.deep.equal([]);
    });
  });

  describe("a node's bound is never below a member's score", function () {
    /** A node: one side, 1 to 8 members (a_i, K_i), one (P, F). */
    const node = fc
      .tuple(
        fc.boolean(),
        anyP,
        sint(FUND),
        fc.array(fc.tuple(anyA, sint(M128)), { minLength: 1, maxLength: 8 }),
        fc.array(realistic, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
      )
      .map(([isLong, p, f, wild, real, useReal]) => {
        if (!useReal) return { isLong, p, f, members: wild.map(([a, k]) => ({ a, k })) };
        // Realistic members share the first one's side, P and F.
        const [l0, , , p0, f0] = real[0];
        return { isLong: l0, p: p0, f: f0, members: real.map(([, a, k]) => ({ a, k })) };
      });

    type Node = { isLong: boolean; p: bigint; f: bigint; members: { a: bigint; k: bigint }[] };

    const aggregate = (n: Node): { maxA: bigint; bestK: bigint } => ({
      maxA: n.members.reduce((m, { a }) => maxBig(m, a), 0n),
      bestK: n.members.reduce((b, { k }) => (n.isLong ? minBig(b, k) : maxBig(b, k)), n.members[0].k),
    });

    /** Members at the minus-infinity boundary: a * (-x) == W*W exactly, one below and one above. */
    function boundaryNode(isLong: boolean, a: bigint, p: bigint, f: bigint, shift: bigint): Node {
      const loss = WAD_SQUARED / a + shift; // -x
      // x = -loss: for a long K = (P - F) + loss, for a short K = (P - F) - loss.
      const k = isLong ? p - f + loss : p - f - loss;
      return { isLong, p, f, members: [{ a, k }] };
    }

    const boundaryNodes: Node[] = [1n, 2n, 4n, 5n, 8n, 1000n, WAD, 10n ** 35n, 10n ** 36n].flatMap((a) =>
      [true, false].flatMap((isLong) =>
        [-1n, 0n, 1n].map((shift) => boundaryNode(isLong, a, 2000n * WAD, 3n * WAD, shift)),
      ),
    );

    /** Returns a description of every violation of bound >= member score in `n`. */
    function check(n: Node, bound: bigint): string[] {
      const bad: string[] = [];
      for (const { a, k } of n.members) {
        const x = pnlPerUnit(n.isLong, k, n.p, n.f);
        const s = score(a, x, n.p);
        if (scoreFinite(a, x, n.p) > bound) bad.push(show({ n, a, k, bound }));
        if (!s.minusInf && s.value > bound) bad.push(show({ n, a, k, bound }));
        if (s.minusInf && ranksBelow(bound, false, ADDRESSES[0], s.value, true, ADDRESSES[5])) {
          bad.push(`minus infinity above a bound ${show({ n, a, k })}`);
        }
      }
      return bad;
    }

    it(`mirror: random nodes (${MIRROR_CASES}) and the minus-infinity boundary`, function () {
      const bad: string[] = [];
      for (const n of [...sample(node, 60, MIRROR_CASES), ...boundaryNodes]) {
        const { maxA, bestK } = aggregate(n);
        bad.push(...check(n, nodeBound(maxA, bestK, n.isLong, n.p, n.f)));
      }
      expect(bad.slice(0, 5)).to.deep.equal([]);
      // The boundary rows classify as designed: exactly W*W and above are minus infinity, one below is not.
      for (const n of boundaryNodes) {
        const { a, k } = n.members[0];
        const x = pnlPerUnit(n.isLong, k, n.p, n.f);
        expect(isMinusInfinity(a, x), show(n)).to.equal(a * -x >= WAD_SQUARED);
      }
      const exact = boundaryNodes.filter((n) => {
        const { a, k } = n.members[0];
        return a * -pnlPerUnit(n.isLong, k, n.p, n.f) === WAD_SQUARED;
      });
      expect(exact.length).to.be.greaterThan(0);
      expect(exact.every((n) => score(n.members[0].a, -(WAD_SQUARED / n.members[0].a), n.p).minusInf)).to.equal(true);
      expect(isMinusInfinity(1n, -(WAD_SQUARED - 1n))).to.equal(false);
      expect(isMinusInfinity(1n, -WAD_SQUARED)).to.equal(true);
    });

    it("harness: bounds and member scores from the contract (spot check)", async function () {
      const nodes = [...sample(node, 61, 120), ...boundaryNodes];
      const bounds = await values(nodes, (n) => {
        const { maxA, bestK } = aggregate(n);
        return h.nodeBound(maxA, bestK, n.isLong, n.p, n.f);
      });
      const members = nodes.flatMap((n, i) => n.members.map((m) => ({ n, i, ...m })));
      const scores = await values(members, async ({ n, a, k }) => {
        const x = pnlPerUnit(n.isLong, k, n.p, n.f);
        const r = await h.score(a, x, n.p);
        return { minusInf: r.minusInf, value: r.value, fin: await h.scoreFinite(a, x, n.p) };
      });
      const bad: string[] = [];
      members.forEach((m, j) => {
        const s = scores[j];
        if (s.fin > bounds[m.i] || (!s.minusInf && s.value > bounds[m.i])) bad.push(show({ m, s, b: bounds[m.i] }));
        if (s.minusInf && s.value !== MINUS_INFINITY_VALUE) bad.push(show({ m, s }));
      });
      expect(bad.slice(0, 5)).to.deep.equal([]);
    });
  });

  describe("ranksBelow: a strict total order on queue keys", function () {
    const below = (a: QueueEntry, b: QueueEntry): boolean =>
      ranksBelow(a.value, a.minusInf, a.account, b.value, b.minusInf, b.account);

    it(`irreflexive, antisymmetric, total on distinct accounts, transitive (${MIRROR_CASES} triples)`, function () {
      const bad: string[] = [];
      for (const [a, b, c] of sample(fc.tuple(queueKey, queueKey, queueKey), 70, MIRROR_CASES)) {
        if (below(a, a)) bad.push(`reflexive ${show(a)}`);
        if (below(a, b) && below(b, a)) bad.push(`symmetric ${show([a, b])}`);
        if (BigInt(a.account) !== BigInt(b.account) && !below(a, b) && !below(b, a)) {
          bad.push(`not total ${show([a, b])}`);
        }
        if (below(a, b) && below(b, c) && !below(a, c)) bad.push(`not transitive ${show([a, b, c])}`);
      }
      expect(bad.slice(0, 5)).to.deep.equal([]);
    });

    it("higher score first, ties by lower address first, minus infinity last", function () {
      const lo = ADDRESSES[1];
      const hi = ADDRESSES[5];
      expect(ranksBelow(1n, false, lo, 2n, false, hi)).to.equal(true);
      expect(ranksBelow(2n, false, hi, 1n, false, lo)).to.equal(false);
      expect(ranksBelow(5n, false, hi, 5n, false, lo)).to.equal(true);
      expect(ranksBelow(5n, false, lo, 5n, false, hi)).to.equal(false);
      // Minus infinity below the lowest finite score, whatever the addresses and carried values.
      expect(ranksBelow(MAX_I256, true, lo, MIN_I256, false, hi)).to.equal(true);
      expect(ranksBelow(MIN_I256, false, hi, MAX_I256, true, lo)).to.equal(false);
      // Two minus infinities: address only, values ignored.
      expect(ranksBelow(7n, true, hi, -7n, true, lo)).to.equal(true);
      expect(ranksBelow(-7n, true, lo, 7n, true, hi)).to.equal(false);
      // Address comparison is numeric, not by checksum case.
      expect(ranksBelow(0n, false, ADDRESSES[7].toLowerCase(), 0n, false, ADDRESSES[6])).to.equal(true);
    });

    it("compareQueue sorts into queue order", function () {
      for (const keys of sample(fc.array(queueKey, { minLength: 2, maxLength: 30 }), 71, 500)) {
        const sorted = [...keys].sort(compareQueue);
        for (let i = 1; i < sorted.length; i += 1) {
          expect(below(sorted[i - 1], sorted[i]), show([sorted[i - 1], sorted[i]])).to.equal(false);
          expect(compareQueue(sorted[i - 1], sorted[i])).to.be.at.most(0);
        }
        const finite = sorted.filter((k) => !k.minusInf).length;
        expect(sorted.slice(finite).every((k) => k.minusInf)).to.equal(true);
      }
    });
  });

  describe("eligibility", function () {
    const cases = sample(
      fc
        .tuple(anyPosition, fc.boolean(), uint(1n << 130n, 1n), fc.bigInt(-3n, 3n))
        .map(([[l, a0, k, p, f], near, far, wiggle]) => {
          const a = a0 === 0n ? 1n : a0;
          const perUnit = WAD_SQUARED / a + pnlPerUnit(l, k, p, f);
          // delta > 0 as ADL step 1 guarantees (docs/mechanism.md section 3): near the equity per unit, or anywhere.
          const delta = near ? maxBig(1n, perUnit + wiggle) : far;
          return { l, a, k, p, f, delta };
        }),
      80,
      MIRROR_CASES,
    );

    it(`isEligible == (floor(W*W/a) + x >= delta) on both sides, and the key form agrees (${MIRROR_CASES} cases)`, function () {
      let eligible = 0;
      const bad: string[] = [];
      for (const c of cases) {
        const x = pnlPerUnit(c.l, c.k, c.p, c.f);
        const real = WAD_SQUARED / c.a + x >= c.delta;
        const e = eligibilityKey(c.l, c.a, c.k);
        // E + (P - F) for a long and E - (P - F) for a short both equal floor(W*W/a) + x.
        const keyForm = c.l ? e + (c.p - c.f) : e - (c.p - c.f);
        if (keyForm !== WAD_SQUARED / c.a + x) bad.push(`key form ${show(c)}`);
        if (isEligible(c.l, c.a, c.k, c.p, c.f, c.delta) !== real) bad.push(`isEligible ${show(c)}`);
        if (keyCovers(c.l, e, c.p, c.f, c.delta) !== real) bad.push(`keyCovers ${show(c)}`);
        // delta >= 1: an eligible position never has a minus-infinity score.
        if (real && isMinusInfinity(c.a, x)) bad.push(`eligible but minus infinity ${show(c)}`);
        if (real) eligible += 1;
      }
      expect(bad.slice(0, 5)).to.deep.equal([]);
      expect(eligible).to.be.greaterThan(cases.length / 5);
      expect(cases.length - eligible).to.be.greaterThan(cases.length / 5);
    });

    it("a node whose largest key fails is wholly ineligible", function () {
      const bad: string[] = [];
      for (let i = 0; i + 4 <= cases.length; i += 4) {
        const group = cases.slice(i, i + 4);
        const { l, p, f, delta } = group[0];
        const keys = group.map((c) => eligibilityKey(l, c.a, c.k));
        const maxE = keys.reduce(maxBig);
        if (!keyCovers(l, maxE, p, f, delta) && keys.some((e) => keyCovers(l, e, p, f, delta))) {
          bad.push(show(group));
        }
      }
      expect(bad).to.deep.equal([]);
    });
  });
});
