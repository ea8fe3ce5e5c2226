/**
 * The rank index (docs/mechanism.md section 4): contracts/libraries/RankTree.sol through
 * contracts/test/RankTreeHarness.sol against its TypeScript mirror lib/rank-tree.ts.
 *
 * 1. Bands: bandOf / leafOf on thousands of seeded random and edge inputs (a = 1, a = 2^128 - 1,
 *    every bit length of a and K at both ends, K <= 0, K = 1, K near 2^120, kRef 0 / 127 / 255),
 *    harness vs mirror vs an independent string-based reading of the spec; bands are monotone.
 * 2. Layout: heapIndex / leafRange on every level, and every rejected input reverts with the custom
 *    error and arguments the mirror throws.
 * 3. The one-slot codec: encodeA / encodeSigned / decode on chain vs mirror over random and edge
 *    values: a rounded up, K and E up or down as asked (decode(encode(v)) >= v up, <= v down, == v
 *    when v is representable), by less than one unit of the last place, monotone, codes canonical
 *    (encode(decode(code)) == code); member words and decoded slots equal on chain and in the mirror;
 *    a leaf at the largest count rejects an insert.
 * 4. Random operation sequences (fast-check, fixed seed, chain reset per run): insert, update,
 *    remove, move (remove + insert), refreshLeaf with the true member list, refreshInternal, and a
 *    path refresh. After every step the nodes the step can touch (the paths of its leaves and the
 *    siblings along them) are equal on chain and in the mirror field by field and slot by slot,
 *    every monitored node of that side (the paths and siblings of all leaves in play) is equal by
 *    digest (an XOR of per-slot hashes the mirror updates node by node), leaf counts equal the
 *    model's, and:
 *    - soundness: for every member currently in a leaf, the leaf and every ancestor have
 *      maxA >= a, bestK at least as good as K (<= for longs, >= for shorts) and maxE >= E, on the
 *      members' exact (unrounded) values;
 *    - every node dominates its children (the invariant the early stop of a merge relies on);
 *    - after refreshLeaf the leaf is exactly the rounded max / best over its members; after
 *      refreshInternal the node is exactly the join of its children.
 * 5. Tightness: after a bottom-up rebuild (every leaf in play, then every internal node on their
 *    paths), every node equals the rounded max / best over the current members below it.
 * 6. Gas (printed, not asserted), with the figures of the former two-slot node for comparison.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { RankTreeHarness } from "../../typechain-types";
import { WAD } from "../../lib/math";
import { eligibilityKey } from "../../lib/score";
import {
  HEIGHT,
  LEAVES,
  MAX_COUNT,
  RankTree,
  RankTreeError,
  bandOf,
  decodeA,
  decodeSigned,
  decodeWord,
  encodeA,
  encodeSigned,
  heapIndex,
  leafOf,
  leafRange,
  memberWord,
  pathOf,
  roundA,
  roundE,
  roundK,
  type RankNode,
} from "../../lib/rank-tree";

// ---------------------------------------------------------------------------------------------
// Ranges and generators
// ---------------------------------------------------------------------------------------------

const SEED = 0x7a4e_2026;
const CHUNK = 400;
const MAX_U256 = (1n << 256n) - 1n;
const MAX_I256 = (1n << 255n) - 1n;
const MIN_I256 = -(1n << 255n);
const M128 = (1n << 128n) - 1n;
const M120 = (1n << 120n) - 1n;

const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
const sample = <T>(arb: fc.Arbitrary<T>, salt: number, n: number): T[] =>
  fc.sample(arb, { seed: SEED + salt, numRuns: n });

/** An unsigned bigint in [lo, hi], log-uniform (random bit length, then uniform below it). */
function logUniform(hi: bigint, lo = 0n): fc.Arbitrary<bigint> {
  return fc
    .integer({ min: 0, max: hi.toString(2).length })
    .chain((b) => fc.bigInt(0n, (1n << BigInt(b)) - 1n))
    .map((v) => (v < lo ? lo + v : v > hi ? hi : v));
}

const signedLogUniform = (mag: bigint): fc.Arbitrary<bigint> =>
  fc.tuple(fc.boolean(), logUniform(mag)).map(([neg, v]) => (neg ? -v : v));

/** a, K and kRef for the band differential: anywhere in the ABI types, edges overweighted. */
const A_EDGES = [0n, 1n, 2n, 3n, 4n, WAD - 1n, WAD, 2n * WAD, 100n * WAD, M120, M128 - 1n, M128, M128 + 1n, MAX_U256];
const K_EDGES = [MIN_I256, -M120, -WAD, -1n, 0n, 1n, 2n, 127n, 128n, 255n, 256n, WAD, M120 - 1n, M120, M120 + 1n];
const K_EDGES_ALL = [...K_EDGES, M128, MAX_I256];
const KREF_EDGES = [0, 1, 8, 59, 60, 71, 120, 127, 128, 254, 255];
const bandInput = fc.tuple(
  fc.oneof(fc.constantFrom(...A_EDGES), logUniform(MAX_U256), logUniform(1n << 80n, 1n)),
  fc.oneof(fc.constantFrom(...K_EDGES_ALL), signedLogUniform(MAX_I256), signedLogUniform(1n << 130n)),
  fc.oneof(fc.constantFrom(...KREF_EDGES), fc.integer({ min: 0, max: 255 })),
);

/** Every bit length at both ends (2^(n-1), 1.5 * 2^(n-1), 2^n - 1) for a and for K. */
function bitBoundaries(maxBits: number): bigint[] {
  const out: bigint[] = [];
  for (let n = 1; n <= maxBits; n++) {
    const low = 1n << BigInt(n - 1);
    out.push(low, low + (low >> 1n), (low << 1n) - 1n);
  }
  return out;
}

type BandCase = [bigint, bigint, number];

/** The spec read independently: bit strings instead of shifts. */
function specBands(a: bigint, k: bigint, kRef: number): { aBand: number; kBand: number } {
  const clamp = (v: number, hi: number): number => Math.max(0, Math.min(v, hi));
  const as = a === 0n ? "" : a.toString(2);
  const t = 2 * as.length + (as.length >= 2 ? Number(as[1]) : 0);
  let kBand = 0;
  if (k > 0n) {
    const ks = k.toString(2);
    const mant7 = parseInt((ks.slice(1) + "0000000").slice(0, 7), 2);
    kBand = clamp((ks.length - kRef) * 128 + mant7, 255);
  }
  return { aBand: clamp(t + 2 * kRef - 200, 63), kBand };
}

/** Member values for the tree tests: a in [1, 2^128 - 1], |K| <= 2^120 - 1, repeats likely. */
const A_POOL = [1n, 2n, WAD / 2n, WAD, 2n * WAD, 5n * WAD, 10n * WAD, 20n * WAD, 100n * WAD, M128];
const K_POOL = [-M120, -(1000n * WAD), -1n, 0n, 1n, 1500n * WAD, 2999n * WAD, 3000n * WAD, 3001n * WAD, M120];
const memberA = fc.oneof(fc.constantFrom(...A_POOL), logUniform(M128, 1n), fc.bigInt(WAD / 10n, 200n * WAD));
const memberK = fc.oneof(fc.constantFrom(...K_POOL), signedLogUniform(M120), fc.bigInt(1000n * WAD, 5000n * WAD));

/** Leaves in play: neighbours, subtree edges, the two halves' borders and two realistic bands. */
const LEAF_POOL = [
  0,
  1,
  2,
  3,
  255,
  256,
  8191,
  8192,
  12345,
  16383,
  leafOf(5n * WAD, 3000n * WAD, 71),
  leafOf(WAD, 0n, 71),
];

/** Every node a step can touch: the path of each leaf in play and the siblings along it. */
function monitored(leaves: number[]): number[] {
  const set = new Set<number>();
  for (const leaf of leaves) {
    for (const i of pathOf(leaf)) {
      set.add(i);
      if (i > 1) set.add(i ^ 1);
    }
  }
  return [...set].sort((x, y) => x - y);
}
const MONITORED = monitored(LEAF_POOL);

// ---------------------------------------------------------------------------------------------
// Model: the members of each side, and the exact aggregates over them
// ---------------------------------------------------------------------------------------------

interface Member {
  isLong: boolean;
  leaf: number;
  a: bigint;
  k: bigint;
}

/** The node of a heap index as (level, first leaf, end leaf). */
function rangeOfIndex(index: number): [number, number] {
  const level = HEIGHT - (31 - Math.clz32(index));
  return leafRange(level, index - (1 << (HEIGHT - level)));
}

/**
 * The aggregates over `members` (one side) that a refresh stores: the max / best of the exact values, rounded
 * as the slot rounds them (a up, K toward best, E up). Empty list -> empty node. count = members.length.
 */
function exact(isLong: boolean, members: Member[]): RankNode {
  const n = exactUnrounded(isLong, members);
  if (members.length === 0) return n;
  return { maxA: roundA(n.maxA), bestK: roundK(isLong, n.bestK), maxE: roundE(n.maxE), count: n.count };
}

/** The max / best over `members` of their exact (unrounded) values. */
function exactUnrounded(isLong: boolean, members: Member[]): RankNode {
  if (members.length === 0) return { maxA: 0n, bestK: 0n, maxE: 0n, count: 0n };
  let [maxA, bestK, maxE] = [0n, members[0].k, eligibilityKey(isLong, members[0].a, members[0].k)];
  for (const m of members) {
    const e = eligibilityKey(isLong, m.a, m.k);
    if (m.a > maxA) maxA = m.a;
    if (isLong ? m.k < bestK : m.k > bestK) bestK = m.k;
    if (e > maxE) maxE = e;
  }
  return { maxA, bestK, maxE, count: BigInt(members.length) };
}

const withoutCount = (n: RankNode): Omit<RankNode, "count"> => ({ maxA: n.maxA, bestK: n.bestK, maxE: n.maxE });

/** True iff node `n` bounds (a, k, e): the soundness relation. */
function dominates(isLong: boolean, n: RankNode, a: bigint, k: bigint, e: bigint): boolean {
  return n.maxA >= a && (isLong ? n.bestK <= k : n.bestK >= k) && n.maxE >= e;
}

async function readNodes(h: RankTreeHarness, isLong: boolean, indices: number[]): Promise<Map<number, RankNode>> {
  const out = await h.nodes(isLong, indices);
  return new Map(
    indices.map((idx, i) => [idx, { maxA: out[i].maxA, bestK: out[i].bestK, maxE: out[i].maxE, count: out[i].count }]),
  );
}

/** Two's-complement hex of v in `bytes` bytes (abi.encodePacked of a uint/int of that width). */
const packed = (v: bigint, bytes: number): string =>
  BigInt.asUintN(bytes * 8, v)
    .toString(16)
    .padStart(bytes * 2, "0");

/** keccak256(abi.encodePacked(index, word)) of one node's slot, as a bigint. */
function nodeHash(index: number, word: bigint): bigint {
  return BigInt(ethers.keccak256("0x" + packed(BigInt(index), 32) + packed(word, 32)));
}

/**
 * The harness's digest (XOR of node hashes over `indices`), kept node by node: `refresh` rehashes the
 * nodes a step touched, `value` XORs the cached hashes.
 */
class Digest {
  private readonly hashes: Map<number, bigint>;
  constructor(
    private readonly tree: RankTree,
    private readonly indices: number[],
  ) {
    this.hashes = new Map(indices.map((i) => [i, EMPTY_HASHES.get(i)!]));
  }
  refresh(touched: number[]): void {
    for (const i of touched) if (this.hashes.has(i)) this.hashes.set(i, nodeHash(i, this.tree.word(i)));
  }
  value(): string {
    let d = 0n;
    for (const i of this.indices) d ^= this.hashes.get(i)!;
    return "0x" + d.toString(16).padStart(64, "0");
  }
}
const EMPTY_HASHES = new Map(MONITORED.map((i) => [i, nodeHash(i, 0n)]));

async function deployHarness(): Promise<RankTreeHarness> {
  return (await ethers.getContractFactory("RankTreeHarness")).deploy();
}

async function fixture(): Promise<{ h: RankTreeHarness }> {
  return { h: await deployHarness() };
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe("RankTree: the rank index of docs/mechanism.md section 4", function () {
  let h: RankTreeHarness;

  before(async function () {
    h = await deployHarness();
  });

  describe("bands", function () {
    const cases: BandCase[] = [
      ...sample(bandInput, 1, 4000),
      // Every bit length of a (and just past the uint128 cap) at kRef 0; K at every bit length, both ends.
      ...bitBoundaries(256).map((a): BandCase => [a, WAD, 0]),
      ...bitBoundaries(255).flatMap((k) => [0, 71, 127, 255].map((r): BandCase => [3n * WAD, k, r])),
      // The named edges crossed with each other.
      ...[1n, M128, 2n, WAD].flatMap((a) =>
        [0n, -1n, MIN_I256, 1n, M120 - 1n, M120, M120 + 1n, 1n << 119n].flatMap((k) =>
          [0, 127, 255].map((r): BandCase => [a, k, r]),
        ),
      ),
    ];

    it(`bandOf / leafOf equal on chain, in the mirror and in a string reading of the spec (${cases.length} inputs)`, async function () {
      const failures: string[] = [];
      for (let i = 0; i < cases.length; i += CHUNK) {
        const chunk = cases.slice(i, i + CHUNK);
        const [aBands, kBands, leaves] = await h.bandsOf(
          chunk.map((c) => c[0]),
          chunk.map((c) => c[1]),
          chunk.map((c) => c[2]),
        );
        chunk.forEach(([a, k, r], j) => {
          const mirror = bandOf(a, k, r);
          const spec = specBands(a, k, r);
          const ok =
            mirror.aBand === spec.aBand &&
            mirror.kBand === spec.kBand &&
            BigInt(mirror.aBand) === aBands[j] &&
            BigInt(mirror.kBand) === kBands[j] &&
            BigInt(leafOf(a, k, r)) === leaves[j] &&
            leafOf(a, k, r) === (spec.aBand << 8) + spec.kBand;
          if (!ok && failures.length < 5) {
            failures.push(
              `${show([a, k, r])}: mirror ${show(mirror)}, spec ${show(spec)}, chain ${aBands[j]}/${kBands[j]}`,
            );
          }
        });
      }
      expect(failures, failures.join("\n")).to.deep.equal([]);
    });

    it("the external bandOf / leafOf agree on a seeded subset and the named edges", async function () {
      const subset = [
        ...sample(bandInput, 2, 300),
        [1n, 1n, 0],
        [M128, M120, 127],
        [1n, 0n, 127],
        [M128, -M120, 0],
      ] as BandCase[];
      const got = await Promise.all(subset.map(([a, k, r]) => Promise.all([h.bandOf(a, k, r), h.leafOf(a, k, r)])));
      subset.forEach(([a, k, r], i) => {
        const m = bandOf(a, k, r);
        expect([got[i][0].aBand, got[i][0].kBand, got[i][1]], show([a, k, r])).to.deep.equal([
          BigInt(m.aBand),
          BigInt(m.kBand),
          BigInt(leafOf(a, k, r)),
        ]);
      });
    });

    it("edge values land where the spec says", function () {
      expect(bandOf(1n, 0n, 0)).to.deep.equal({ aBand: 0, kBand: 0 }); // t = 2
      expect(bandOf(M128, 1n, 0)).to.deep.equal({ aBand: 57, kBand: 128 }); // t = 257; b = 1: (1 - 0) * 128 + 0
      expect(bandOf(M128, 1n, 255).aBand).to.equal(63); // 257 + 510 - 200, clamped
      expect(bandOf(WAD, -WAD, 71).kBand).to.equal(0); // K <= 0
      expect(bandOf(WAD, 1n, 127).kBand).to.equal(0); // (1 - 127) * 128 < 0
      expect(bandOf(WAD, M120, 127)).to.deep.equal({ aBand: 63, kBand: 0 }); // (120 - 127) * 128 + 127 < 0
      expect(bandOf(WAD, M120, 119).kBand).to.equal(255); // 128 + 127
      expect(bandOf(WAD, M120, 0).kBand).to.equal(255); // clamped
      // 1x at 3,000 (kRef 71): a = W / 3000, bitlen 49, second bit 0: 98 + 142 - 200.
      expect(bandOf(WAD / 3000n, 3000n * WAD, 71)).to.deep.equal({ aBand: 40, kBand: 162 });
      // The a bands follow leverage, not raw a: 1x and 100x land in the same bands at 2,000 (kRef 70) and at 1
      // (kRef 59), though a differs by a factor of 2,000.
      expect(bandOf(WAD / 2000n, 0n, 70).aBand).to.equal(39);
      expect(bandOf(WAD, 0n, 59).aBand).to.equal(39);
      expect(bandOf((100n * WAD) / 2000n, 0n, 70).aBand).to.equal(52);
      expect(bandOf(100n * WAD, 0n, 59).aBand).to.equal(52);
      // Two bands per octave of a: just below 1.5 * 2^59 and from it on (second bit set).
      expect(bandOf(3n << 58n, 0n, 59).aBand).to.equal(bandOf((3n << 58n) - 1n, 0n, 59).aBand + 1);
      expect(bandOf(1n << 60n, 0n, 59).aBand).to.equal(bandOf(3n << 58n, 0n, 59).aBand + 1);
    });

    it("bands are non-decreasing in a and in K, and every leaf is below LEAVES (mirror, 5,000 pairs)", function () {
      const failures: string[] = [];
      for (const [[a1, k1, r], [a2, k2]] of sample(fc.tuple(bandInput, bandInput), 3, 5000)) {
        const [aLo, aHi] = a1 <= a2 ? [a1, a2] : [a2, a1];
        const [kLo, kHi] = k1 <= k2 ? [k1, k2] : [k2, k1];
        const ok =
          bandOf(aLo, kLo, r).aBand <= bandOf(aHi, kLo, r).aBand &&
          bandOf(aLo, kLo, r).kBand <= bandOf(aLo, kHi, r).kBand &&
          leafOf(a1, k1, r) >= 0 &&
          leafOf(a1, k1, r) < LEAVES;
        if (!ok && failures.length < 5) failures.push(show([a1, k1, a2, k2, r]));
      }
      expect(failures).to.deep.equal([]);
    });
  });

  describe("layout and rejected inputs", function () {
    it("heapIndex and leafRange on every level (first, last and middle positions)", async function () {
      for (let level = 0; level <= HEIGHT; level++) {
        const width = LEAVES >> level;
        for (const position of [...new Set([0, width >> 1, width - 1])]) {
          expect(await h.heapIndex(level, position)).to.equal(BigInt(heapIndex(level, position)));
          expect(heapIndex(level, position)).to.equal((1 << (HEIGHT - level)) + position);
          const [first, end] = await h.leafRange(level, position);
          expect([Number(first), Number(end)]).to.deep.equal(leafRange(level, position));
          expect(leafRange(level, position)).to.deep.equal([position << level, (position + 1) << level]);
        }
      }
      expect(heapIndex(HEIGHT, 0)).to.equal(1);
      expect(heapIndex(0, LEAVES - 1)).to.equal(2 * LEAVES - 1);
    });

    it("every bad input reverts with the custom error and values the mirror throws", async function () {
      const { h: fresh } = await loadFixture(fixture);
      await fresh.insert(true, 5, WAD, WAD);
      const tree = new RankTree(true);
      tree.insert(5, WAD, WAD);
      const cases: [string, bigint[], () => Promise<unknown>, () => unknown][] = [
        ["RankTreeLevelOutOfRange", [15n], () => fresh.heapIndex(15, 0), () => heapIndex(15, 0)],
        ["RankTreePositionOutOfRange", [3n, 2048n], () => fresh.leafRange(3, 2048), () => leafRange(3, 2048)],
        ["RankTreePositionOutOfRange", [14n, 1n], () => fresh.heapIndex(14, 1), () => heapIndex(14, 1)],
        [
          "RankTreeLeafOutOfRange",
          [16384n],
          () => fresh.insert(true, LEAVES, WAD, 0n),
          () => tree.insert(LEAVES, WAD, 0n),
        ],
        [
          "RankTreeLeafOutOfRange",
          [16384n],
          () => fresh.update(true, LEAVES, WAD, 0n),
          () => tree.update(LEAVES, WAD, 0n),
        ],
        ["RankTreeLeafOutOfRange", [99999n], () => fresh.remove(true, 99999), () => tree.remove(99999)],
        ["RankTreeCountUnderflow", [6n], () => fresh.remove(true, 6), () => tree.remove(6)],
        ["RankTreeHeapIndexOutOfRange", [0n], () => fresh.refreshInternal(true, 0), () => tree.refreshInternal(0)],
        [
          "RankTreeHeapIndexOutOfRange",
          [16384n],
          () => fresh.refreshInternal(true, LEAVES),
          () => tree.refreshInternal(LEAVES),
        ],
        ["RankTreeHeapIndexOutOfRange", [0n], () => fresh.node(true, 0), () => tree.node(0)],
        ["RankTreeHeapIndexOutOfRange", [32768n], () => fresh.node(true, 2 * LEAVES), () => tree.node(2 * LEAVES)],
        ["RankTreeZeroLeverage", [], () => fresh.insert(true, 5, 0n, 0n), () => tree.insert(5, 0n, 0n)],
        [
          "RankTreeMemberListMismatch",
          [5n, 1n, 2n, 2n],
          () => fresh.refreshLeaf(true, 5, [WAD, WAD], [0n, 0n]),
          () => tree.refreshLeaf(5, [WAD, WAD], [0n, 0n]),
        ],
        [
          "RankTreeMemberListMismatch",
          [5n, 1n, 1n, 0n],
          () => fresh.refreshLeaf(true, 5, [WAD], []),
          () => tree.refreshLeaf(5, [WAD], []),
        ],
      ];
      for (const [name, args, chain, mirror] of cases) {
        await expect(chain(), name)
          .to.be.revertedWithCustomError(fresh, name)
          .withArgs(...args);
        expect(mirror, name).to.throw(RankTreeError, `${name}(${args.join(", ")})`);
      }
      // Values that do not fit the node record: SafeCast reverts, the mirror throws RangeError.
      const overflow: [string, () => Promise<unknown>, () => unknown][] = [
        [
          "SafeCastOverflowedUintDowncast",
          () => fresh.insert(true, 5, M128 + 1n, 0n),
          () => tree.insert(5, M128 + 1n, 0n),
        ],
        [
          "SafeCastOverflowedIntDowncast",
          () => fresh.update(true, 5, WAD, 1n << 127n),
          () => tree.update(5, WAD, 1n << 127n),
        ],
        // E = floor(W*W/a) - K with K = -(2^127 - 1) does not fit int128.
        [
          "SafeCastOverflowedIntDowncast",
          () => fresh.update(true, 5, 1n, -M128 / 2n),
          () => tree.update(5, 1n, -M128 / 2n),
        ],
      ];
      for (const [name, chain, mirror] of overflow) {
        await expect(chain(), name).to.be.revertedWithCustomError(fresh, name);
        expect(mirror, name).to.throw(RangeError);
      }
      // Nothing moved.
      expect(await readNodes(fresh, true, pathOf(5))).to.deep.equal(new Map(pathOf(5).map((i) => [i, tree.node(i)])));
    });
  });

  describe("one-slot codec", function () {
    const M127 = (1n << 127n) - 1n;
    const MIN_I128 = -(1n << 127n);
    /** Least exponent the codec uses for a magnitude v with `bits` mantissa bits. */
    const ulpExp = (v: bigint, bits: number): bigint => {
      const len = v === 0n ? 0 : v.toString(2).length;
      return BigInt(Math.max(0, len - bits));
    };
    const representable = (v: bigint, bits: number): boolean => {
      const e = ulpExp(v < 0n ? -v : v, bits);
      return ((v < 0n ? -v : v) >> e) << e === (v < 0n ? -v : v);
    };
    const aEdges = [
      0n,
      1n,
      2n,
      (1n << 56n) - 1n,
      1n << 56n,
      (1n << 56n) + 1n,
      (1n << 57n) - 1n,
      (1n << 57n) + 1n,
      (1n << 57n) + 2n,
      WAD,
      7n * WAD,
      WAD / 3n,
      M120,
      1n << 127n,
      M128 - 1n,
      M128,
      ...bitBoundaries(128),
    ];
    const sEdges = [
      MIN_I128,
      MIN_I128 + 1n,
      M127,
      M127 - 1n,
      0n,
      ...[1n, (1n << 64n) - 1n, 1n << 64n, (1n << 64n) + 1n, (1n << 65n) + 1n, 3000n * WAD, M120].flatMap((v) => [
        v,
        -v,
      ]),
      ...bitBoundaries(127).flatMap((v) => [v, -v]),
    ];
    const aCases = [...aEdges, ...sample(logUniform(M128), 20, 1500)];
    const sCases = [
      ...sEdges,
      ...sample(signedLogUniform(M127), 21, 1500),
      ...sample(fc.bigInt(-(5000n * WAD), 5000n * WAD), 22, 300),
    ];

    it(`encode / decode on chain == mirror, rounded the asked way by less than one ulp, canonical (${aCases.length} a, ${sCases.length} signed)`, async function () {
      const failures: string[] = [];
      const fail = (msg: string): void => {
        if (failures.length < 8) failures.push(msg);
      };
      for (let i = 0; i < Math.max(aCases.length, sCases.length); i += CHUNK) {
        const as = aCases.slice(i, i + CHUNK);
        const ss = sCases.slice(i, i + CHUNK);
        const [aCodes, aDec, upCodes, upDec, downCodes, downDec] = await h.codecs(as, ss);
        as.forEach((v, j) => {
          const code = encodeA(v);
          const d = decodeA(code);
          if (aCodes[j] !== code || aDec[j] !== d) fail(`a ${v}: chain ${aCodes[j]}/${aDec[j]}, mirror ${code}/${d}`);
          const e = code >> 56n;
          const m = code & ((1n << 56n) - 1n);
          if (d < v || d - v >= 1n << ulpExp(v, 56)) fail(`a ${v} -> ${d}: not rounded up within one ulp`);
          if ((d === v) !== representable(v, 56)) fail(`a ${v} -> ${d}: representable iff unchanged`);
          if (e > 0n && m < 1n << 55n) fail(`a ${v}: code ${code} not normalized`);
          if ((v === 0n) !== (code === 0n)) fail(`a ${v}: code ${code} (0 only for 0)`);
          if (d <= M128 && encodeA(d) !== code) fail(`a ${v}: encode(decode(code)) != code`);
        });
        ss.forEach((v, j) => {
          for (const [up, chainCode, chainDec] of [
            [true, upCodes[j], upDec[j]],
            [false, downCodes[j], downDec[j]],
          ] as const) {
            const code = encodeSigned(v, up);
            const d = decodeSigned(code);
            if (chainCode !== code || chainDec !== d)
              fail(`s ${v} up=${up}: chain ${chainCode}/${chainDec}, mirror ${code}/${d}`);
            const gap = up ? d - v : v - d;
            if (gap < 0n || gap >= 1n << ulpExp(v < 0n ? -v : v, 64))
              fail(`s ${v} up=${up} -> ${d}: not within one ulp`);
            if ((d === v) !== representable(v, 64)) fail(`s ${v} up=${up} -> ${d}: representable iff unchanged`);
            if ((code >> 71n === 1n) !== v < 0n) fail(`s ${v}: sign bit of ${code}`);
            const e = (code >> 64n) & 127n;
            if (e > 0n && (code & ((1n << 64n) - 1n)) < 1n << 63n) fail(`s ${v}: code ${code} not normalized`);
            if (d >= MIN_I128 && d <= M127 && (encodeSigned(d, true) !== code || encodeSigned(d, false) !== code)) {
              fail(`s ${v}: encode(decode(code)) != code`);
            }
          }
        });
      }
      expect(failures, failures.join("\n")).to.deep.equal([]);
    });

    it("rounding is monotone (what makes the rounded max / best the max / best of the rounded values)", function () {
      const as = [...aCases].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      const ss = [...sCases].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      for (let i = 1; i < as.length; i++)
        expect(roundA(as[i - 1]) <= roundA(as[i]), show(as.slice(i - 1, i + 1))).to.equal(true);
      for (const isLong of [true, false]) {
        for (let i = 1; i < ss.length; i++) {
          expect(roundK(isLong, ss[i - 1]) <= roundK(isLong, ss[i])).to.equal(true);
          expect(roundE(ss[i - 1]) <= roundE(ss[i])).to.equal(true);
        }
      }
    });

    it("member words and decoded slots are equal on chain and in the mirror, and bound the member", async function () {
      const members = sample(fc.tuple(fc.boolean(), memberA, memberK), 23, 800).filter(([isLong, a, k]) => {
        const e = eligibilityKey(isLong, a, k);
        return e >= MIN_I128 && e <= M127;
      });
      for (const isLong of [true, false]) {
        const list = members.filter((m) => m[0] === isLong);
        for (let i = 0; i < list.length; i += CHUNK) {
          const chunk = list.slice(i, i + CHUNK);
          const got = await h.memberWords(
            isLong,
            chunk.map((m) => m[1]),
            chunk.map((m) => m[2]),
          );
          chunk.forEach(([, a, k], j) => {
            const w = memberWord(isLong, a, k);
            expect(got[j], show([isLong, a, k])).to.equal(w);
            const n = decodeWord(w);
            const e = eligibilityKey(isLong, a, k);
            expect([n.maxA, n.bestK, n.maxE, n.count]).to.deep.equal([roundA(a), roundK(isLong, k), roundE(e), 0n]);
            expect(dominates(isLong, n, a, k, e), show([isLong, a, k])).to.equal(true);
          });
        }
        // The chain decodes stored-format words as the mirror does (with a count in the low bits).
        for (const [j, [, a, k]] of list.slice(0, 40).entries()) {
          const w = memberWord(isLong, a, k) | BigInt(j * 7919);
          const d = await h.decode(w);
          expect([d.maxA, d.bestK, d.maxE, d.count]).to.deep.equal(Object.values(decodeWord(w)));
        }
      }
      expect(decodeWord(0n)).to.deep.equal({ maxA: 0n, bestK: 0n, maxE: 0n, count: 0n });
    });

    it("a leaf at the largest count (2^48 - 1) rejects an insert with RankTreeCountOverflow", async function () {
      const { h: fresh } = await loadFixture(fixture);
      const leaf = 77;
      const full = memberWord(true, WAD, 3000n * WAD) | MAX_COUNT;
      // _longs is the harness's slot 0 and its mapping the Tree's only member: words[i] at keccak256(i . 0).
      const slot = ethers.keccak256(
        ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "uint256"], [LEAVES + leaf, 0]),
      );
      await ethers.provider.send("hardhat_setStorageAt", [await fresh.getAddress(), slot, ethers.toBeHex(full, 32)]);
      const tree = new RankTree(true);
      tree.words.set(LEAVES + leaf, full);
      expect(Array.from(await fresh.node(true, LEAVES + leaf))).to.deep.equal(Object.values(tree.node(LEAVES + leaf)));
      await expect(fresh.insert(true, leaf, WAD, 0n))
        .to.be.revertedWithCustomError(fresh, "RankTreeCountOverflow")
        .withArgs(leaf);
      expect(() => tree.insert(leaf, WAD, 0n)).to.throw(RankTreeError, `RankTreeCountOverflow(${leaf})`);
      // A removal still works and frees the room.
      await fresh.remove(true, leaf);
      await fresh.insert(true, leaf, WAD, 0n);
      tree.remove(leaf);
      tree.insert(leaf, WAD, 0n);
      expect((await fresh.words(true, [LEAVES + leaf]))[0]).to.equal(tree.word(LEAVES + leaf));
    });
  });

  describe("random operation sequences: chain vs mirror, soundness, exact refreshes", function () {
    type Op =
      | { kind: "insert"; isLong: boolean; slot: number; a: bigint; k: bigint }
      | { kind: "update"; pick: number; a: bigint; k: bigint }
      | { kind: "remove"; pick: number }
      | { kind: "move"; pick: number; slot: number; a: bigint; k: bigint }
      | { kind: "refreshLeaf"; isLong: boolean; slot: number }
      | { kind: "refreshInternal"; isLong: boolean; slot: number; level: number }
      | { kind: "refreshPath"; isLong: boolean; slot: number };

    const slot = fc.integer({ min: 0, max: LEAF_POOL.length - 1 });
    const pick = fc.nat();
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant("insert" as const),
          isLong: fc.boolean(),
          slot,
          a: memberA,
          k: memberK,
        }),
      },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("update" as const), pick, a: memberA, k: memberK }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("remove" as const), pick }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("move" as const), pick, slot, a: memberA, k: memberK }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("refreshLeaf" as const), isLong: fc.boolean(), slot }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("refreshInternal" as const),
          isLong: fc.boolean(),
          slot,
          level: fc.integer({ min: 1, max: HEIGHT }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("refreshPath" as const), isLong: fc.boolean(), slot }) },
    );
    const RUNS = 24;
    const STEPS = 24;
    const stats: Record<string, number> = {};
    let checks = 0;

    after(function () {
      console.log(`      ops: ${show(stats)}; member-vs-ancestor soundness checks: ${checks}`);
    });

    it(`${RUNS} seeded runs of up to ${STEPS} steps keep chain == mirror, sound and exact where refreshed`, async function () {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: STEPS / 2, maxLength: STEPS }), async (ops) => {
          const { h: c } = await loadFixture(fixture);
          const trees = { true: new RankTree(true), false: new RankTree(false) };
          const digests = { true: new Digest(trees.true, MONITORED), false: new Digest(trees.false, MONITORED) };
          const members: Member[] = [];
          const on = (isLong: boolean): Member[] => members.filter((m) => m.isLong === isLong);
          const inLeaf = (isLong: boolean, leaf: number): Member[] => on(isLong).filter((m) => m.leaf === leaf);

          for (const o of ops) {
            let isLong: boolean;
            const touchedLeaves: number[] = [];
            const exactLeaves: number[] = [];
            const exactInternals: number[] = [];
            if (o.kind === "insert") {
              isLong = o.isLong;
              const leaf = LEAF_POOL[o.slot];
              await c.insert(isLong, leaf, o.a, o.k);
              trees[`${isLong}`].insert(leaf, o.a, o.k);
              members.push({ isLong, leaf, a: o.a, k: o.k });
              touchedLeaves.push(leaf);
            } else if (o.kind === "update" || o.kind === "remove" || o.kind === "move") {
              if (members.length === 0) continue;
              const idx = o.pick % members.length;
              const m = members[idx];
              isLong = m.isLong;
              touchedLeaves.push(m.leaf);
              if (o.kind === "update") {
                await c.update(isLong, m.leaf, o.a, o.k);
                trees[`${isLong}`].update(m.leaf, o.a, o.k);
                members[idx] = { ...m, a: o.a, k: o.k };
              } else {
                await c.remove(isLong, m.leaf);
                trees[`${isLong}`].remove(m.leaf);
                members.splice(idx, 1);
                if (o.kind === "move") {
                  const leaf = LEAF_POOL[o.slot];
                  await c.insert(isLong, leaf, o.a, o.k);
                  trees[`${isLong}`].insert(leaf, o.a, o.k);
                  members.push({ isLong, leaf, a: o.a, k: o.k });
                  touchedLeaves.push(leaf);
                }
              }
            } else {
              isLong = o.isLong;
              const leaf = LEAF_POOL[o.slot];
              const path = pathOf(leaf);
              touchedLeaves.push(leaf);
              const refreshLeaf = o.kind === "refreshLeaf" || o.kind === "refreshPath";
              if (refreshLeaf) {
                const list = inLeaf(isLong, leaf);
                const [as, ks] = [list.map((m) => m.a), list.map((m) => m.k)];
                await c.refreshLeaf(isLong, leaf, as, ks);
                trees[`${isLong}`].refreshLeaf(leaf, as, ks);
                exactLeaves.push(leaf);
              }
              let internals: number[] = [];
              if (o.kind === "refreshInternal") internals = [path[o.level]];
              if (o.kind === "refreshPath") internals = path.slice(1);
              for (const i of internals) {
                await c.refreshInternal(isLong, i);
                trees[`${isLong}`].refreshInternal(i);
                exactInternals.push(i);
              }
            }
            stats[o.kind] = (stats[o.kind] ?? 0) + 1;

            // Chain == mirror: field by field on the nodes this step can touch (the paths of its leaves
            // and their siblings), and by digest on every monitored node of the side.
            const tree = trees[`${isLong}`];
            const touched = monitored(touchedLeaves);
            const chain = await readNodes(c, isLong, touched);
            for (const i of touched) expect(chain.get(i), `node ${i} after ${show(o)}`).to.deep.equal(tree.node(i));
            expect(await c.words(isLong, touched), `slots after ${show(o)}`).to.deep.equal(
              touched.map((i) => tree.word(i)),
            );
            digests[`${isLong}`].refresh(touched);
            expect(await c.digest(isLong, MONITORED), `monitored nodes after ${show(o)}`).to.equal(
              digests[`${isLong}`].value(),
            );
            // The checks below read the mirror, equal to the chain on every monitored node (digest above).
            for (const leaf of LEAF_POOL) {
              expect(tree.node(LEAVES + leaf).count).to.equal(BigInt(inLeaf(isLong, leaf).length));
            }
            // Soundness: every member is bounded by its leaf and every ancestor.
            for (const m of on(isLong)) {
              const e = eligibilityKey(isLong, m.a, m.k);
              for (const i of pathOf(m.leaf)) {
                checks += 1;
                if (!dominates(isLong, tree.node(i), m.a, m.k, e)) expect.fail(`node ${i} does not bound ${show(m)}`);
              }
            }
            // Every non-empty child is dominated by its parent (what the early stop of a merge relies on).
            for (const i of MONITORED) {
              const child = tree.node(i);
              if (i === 1 || child.maxA === 0n) continue;
              if (!dominates(isLong, tree.node(i >> 1), child.maxA, child.bestK, child.maxE)) {
                expect.fail(`node ${i >> 1} does not dominate its child ${i}`);
              }
            }
            // Exactness where refreshed.
            for (const leaf of exactLeaves) {
              expect(withoutCount(chain.get(LEAVES + leaf)!)).to.deep.equal(
                withoutCount(exact(isLong, inLeaf(isLong, leaf))),
              );
            }
            for (const i of exactInternals) {
              const joined = exactJoin(isLong, chain.get(2 * i)!, chain.get(2 * i + 1)!);
              expect(withoutCount(chain.get(i)!), `refreshed node ${i}`).to.deep.equal(withoutCount(joined));
            }
          }
          // Both sides still equal at the end of the run.
          for (const side of [true, false])
            expect(await c.digest(side, MONITORED)).to.equal(digests[`${side}`].value());
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });
  });

  describe("tightness", function () {
    it("after refreshLeaf on every leaf in play and refreshInternal bottom-up, every node is exact", async function () {
      const scenario = fc.array(
        fc.record({
          isLong: fc.boolean(),
          slot: fc.integer({ min: 0, max: LEAF_POOL.length - 1 }),
          a: memberA,
          k: memberK,
          removed: fc.boolean(),
        }),
        { minLength: 20, maxLength: 30 },
      );
      const leaves = LEAF_POOL.slice(0, 8);
      // Internal nodes on the paths of the leaves in play, deeper first (a higher heap index is never shallower).
      const byLevel = [...new Set(leaves.flatMap((l) => pathOf(l).slice(1)))].sort((x, y) => y - x);
      for (const [run, list] of sample(scenario, 10, 2).entries()) {
        const { h: c } = await loadFixture(fixture);
        const trees = { true: new RankTree(true), false: new RankTree(false) };
        const live: Member[] = [];
        for (const m of list) {
          const leaf = leaves[m.slot % leaves.length];
          await c.insert(m.isLong, leaf, m.a, m.k);
          trees[`${m.isLong}`].insert(leaf, m.a, m.k);
          if (m.removed) {
            await c.remove(m.isLong, leaf);
            trees[`${m.isLong}`].remove(leaf);
          } else {
            live.push({ isLong: m.isLong, leaf, a: m.a, k: m.k });
          }
        }
        for (const side of [true, false]) {
          for (const leaf of leaves) {
            const ms = live.filter((m) => m.isLong === side && m.leaf === leaf);
            await c.refreshLeaf(
              side,
              leaf,
              ms.map((m) => m.a),
              ms.map((m) => m.k),
            );
            trees[`${side}`].refreshLeaf(
              leaf,
              ms.map((m) => m.a),
              ms.map((m) => m.k),
            );
          }
          for (const i of byLevel) {
            await c.refreshInternal(side, i);
            trees[`${side}`].refreshInternal(i);
          }
          const chain = await readNodes(c, side, MONITORED);
          for (const i of MONITORED) {
            const [first, end] = rangeOfIndex(i);
            const below = live.filter((m) => m.isLong === side && m.leaf >= first && m.leaf < end);
            const want = exact(side, below);
            expect(withoutCount(chain.get(i)!), `run ${run} side ${side} node ${i}`).to.deep.equal(withoutCount(want));
            expect(chain.get(i)).to.deep.equal(trees[`${side}`].node(i));
            if (i >= LEAVES) expect(chain.get(i)!.count).to.equal(want.count);
          }
          // The root is the exact max / best over the side's live members.
          expect(withoutCount(chain.get(1)!)).to.deep.equal(
            withoutCount(
              exact(
                side,
                live.filter((m) => m.isLong === side),
              ),
            ),
          );
        }
      }
    });

    it("removing every member and refreshing the path empties it", async function () {
      const { h: c } = await loadFixture(fixture);
      const leaf = 4242;
      await c.insert(false, leaf, 3n * WAD, 2000n * WAD);
      await c.insert(false, leaf, 7n * WAD, 2100n * WAD);
      await c.remove(false, leaf);
      await c.remove(false, leaf);
      const stale = await c.node(false, 1);
      expect(stale.maxA).to.equal(roundA(7n * WAD)); // stale but sound
      expect(stale.maxA).to.equal(7n * WAD); // 7e18 = 7 * 5^18 * 2^18: 45 significant bits, representable
      await c.refreshLeaf(false, leaf, [], []);
      for (const i of pathOf(leaf).slice(1)) await c.refreshInternal(false, i);
      for (const i of pathOf(leaf)) expect((await c.node(false, i)).maxA).to.equal(0n);
    });
  });

  describe("gas (printed, not asserted)", function () {
    /** Gas of a mined call: the receipt's figure and the part left after the 21,000 base and the calldata. */
    async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<string> {
      const sent = await tx;
      const receipt = (await sent.wait())!;
      const data = ethers.getBytes(sent.data);
      const calldata = data.reduce((s, b) => s + (b === 0 ? 4 : 16), 0);
      const body = Number(receipt.gasUsed) - 21_000 - calldata;
      return `${receipt.gasUsed} (tx), ~${body} after base + calldata`;
    }

    it("insert / update figures", async function () {
      const c = await deployHarness();
      const leaf = leafOf(5n * WAD, 3000n * WAD, 71);
      const rows: [string, string][] = [];
      rows.push([
        "insert into an empty tree (15 nodes, one slot each; two-slot node: 692,276)",
        await gasOf(c.insert(true, leaf, 5n * WAD, 3000n * WAD)),
      ]);
      rows.push([
        "insert into a non-empty leaf that changes nothing upward (two-slot node: 31,483)",
        await gasOf(c.insert(true, leaf, 4n * WAD, 3100n * WAD)),
      ]);
      rows.push([
        "update that climbs to the root, maxA only (two-slot node: 145,576)",
        await gasOf(c.update(true, leaf, 10n * WAD, 3000n * WAD)),
      ]);
      rows.push([
        "update that climbs to the root, maxA, bestK and maxE (two-slot node: 191,326)",
        await gasOf(c.update(true, leaf, 11n * WAD, 2000n * WAD)),
      ]);
      rows.push([
        "insert into an empty leaf of a non-empty tree, meets the path at the root (two-slot node: 652,439)",
        await gasOf(c.insert(true, 3, WAD, 5000n * WAD)),
      ]);
      rows.push(["remove (two-slot node: 27,682)", await gasOf(c.remove(true, leaf))]);
      rows.push([
        "refreshLeaf, 1 member (two-slot node: 29,544)",
        await gasOf(c.refreshLeaf(true, leaf, [11n * WAD], [2000n * WAD])),
      ]);
      rows.push([
        "refreshInternal, parent of the leaf (two-slot node: 35,907)",
        await gasOf(c.refreshInternal(true, (LEAVES + leaf) >> 1)),
      ]);
      const many = Array.from({ length: 20 }, (_, i) => [BigInt(i + 2) * WAD, BigInt(2500 + i) * WAD] as const);
      for (const [a, k] of many) await c.insert(false, 77, a, k);
      rows.push([
        "refreshLeaf, 20 members (two-slot node: 58,275)",
        await gasOf(
          c.refreshLeaf(
            false,
            77,
            many.map((m) => m[0]),
            many.map((m) => m[1]),
          ),
        ),
      ]);
      for (const [label, g] of rows) console.log(`      ${label}: ${g}`);
    });
  });
});

/** The exact join of two node records (the refreshInternal rule). */
function exactJoin(isLong: boolean, l: RankNode, r: RankNode): RankNode {
  if (l.maxA === 0n) return { ...r, count: 0n };
  if (r.maxA === 0n) return { ...l, count: 0n };
  return {
    maxA: l.maxA >= r.maxA ? l.maxA : r.maxA,
    bestK: (isLong ? r.bestK < l.bestK : r.bestK > l.bestK) ? r.bestK : l.bestK,
    maxE: l.maxE >= r.maxE ? l.maxE : r.maxE,
    count: 0n,
  };
}
