/**
 * The rank index of DESIGN.md section 4, bit for bit as contracts/libraries/RankTree.sol computes it:
 * the band assignment (leafOf / bandOf) and an in-memory tree per (market, side) with the same
 * operations, aggregates and stopping rule. Every operation throws exactly where the Solidity library
 * reverts: a RankTreeError named like the custom error (with the same arguments), or a RangeError where
 * SafeCast reverts (a value that does not fit uint128 / int128).
 */
import { eligibilityKey } from "./score";

/** Tree height: level 0 holds the leaves, level HEIGHT the root. */
export const HEIGHT = 14;
/** Number of leaves, 2^HEIGHT; leaf number = (aBand << K_BAND_BITS) | kBand. */
export const LEAVES = 1 << HEIGHT;
/** Low bits of the leaf number that hold the K band. */
export const K_BAND_BITS = 8;
export const MAX_A_BAND = 63;
export const MAX_K_BAND = 255;
/** aBand = clamp(2 * bitlen(a) + secondBit(a) - A_BAND_OFFSET, 0, MAX_A_BAND). */
export const A_BAND_OFFSET = 60;

const MAX_U128 = (1n << 128n) - 1n;
const MAX_I128 = (1n << 127n) - 1n;
const MIN_I128 = -(1n << 127n);
const MAX_U256 = (1n << 256n) - 1n;
const MAX_I256 = (1n << 255n) - 1n;
const MIN_I256 = -(1n << 255n);

/** A node record. Empty iff maxA == 0 (then every field but count is 0); count is meaningful on leaves only. */
export interface RankNode {
  maxA: bigint;
  bestK: bigint;
  maxE: bigint;
  count: bigint;
}

export const EMPTY_NODE: Readonly<RankNode> = Object.freeze({ maxA: 0n, bestK: 0n, maxE: 0n, count: 0n });

/** A revert of RankTree.sol with its custom error name and arguments. */
export class RankTreeError extends Error {
  constructor(
    readonly errorName: string,
    readonly args: bigint[] = [],
  ) {
    super(`${errorName}(${args.join(", ")})`);
    this.name = "RankTreeError";
  }
}

/** Number of bits of v >= 0 (0 for 0). */
export function bitLength(v: bigint): number {
  if (v < 0n) throw new RangeError("bitLength of a negative value");
  return v === 0n ? 0 : v.toString(2).length;
}

function checkUint(v: bigint, max: bigint, what: string): void {
  if (v < 0n || v > max) throw new RangeError(`${what} out of range`);
}

/**
 * The two bands of a position with stored (a, k) in a market with reference exponent kRef (uint8).
 * aBand = clamp(2 * bitlen(a) + secondBit(a) - 60, 0, 63); kBand = 0 for k <= 0, else
 * clamp((bitlen(k) - kRef) * 128 + mant7(k), 0, 255), mant7 the 7 bits below the leading one.
 */
export function bandOf(a: bigint, k: bigint, kRef: number): { aBand: number; kBand: number } {
  checkUint(a, MAX_U256, "a");
  if (k < MIN_I256 || k > MAX_I256) throw new RangeError("k out of range");
  if (!Number.isInteger(kRef) || kRef < 0 || kRef > 255) throw new RangeError("kRef out of range");
  const aBits = bitLength(a);
  const t = 2 * aBits + (aBits >= 2 ? Number((a >> BigInt(aBits - 2)) & 1n) : 0);
  const aBand = t <= A_BAND_OFFSET ? 0 : Math.min(t - A_BAND_OFFSET, MAX_A_BAND);
  let kBand = 0;
  if (k > 0n) {
    const b = bitLength(k);
    const mant7 = Number((b >= 8 ? k >> BigInt(b - 8) : k << BigInt(8 - b)) & 127n);
    const raw = (b - kRef) * 128 + mant7;
    kBand = raw <= 0 ? 0 : Math.min(raw, MAX_K_BAND);
  }
  return { aBand, kBand };
}

/** The leaf (aBand << 8) | kBand of a position with stored (a, k). */
export function leafOf(a: bigint, k: bigint, kRef: number): number {
  const { aBand, kBand } = bandOf(a, k, kRef);
  return (aBand << K_BAND_BITS) | kBand;
}

function checkNode(level: number, position: number): void {
  if (!Number.isInteger(level) || level < 0 || level > HEIGHT) {
    throw new RankTreeError("RankTreeLevelOutOfRange", [BigInt(level)]);
  }
  if (!Number.isInteger(position) || position < 0 || position >= LEAVES >> level) {
    throw new RankTreeError("RankTreePositionOutOfRange", [BigInt(level), BigInt(position)]);
  }
}

/** Heap index 2^(HEIGHT - level) + position of the node at (level, position). */
export function heapIndex(level: number, position: number): number {
  checkNode(level, position);
  return (1 << (HEIGHT - level)) + position;
}

/** The leaves [firstLeaf, endLeaf) below the node at (level, position). */
export function leafRange(level: number, position: number): [firstLeaf: number, endLeaf: number] {
  checkNode(level, position);
  return [position * 2 ** level, (position + 1) * 2 ** level];
}

/** The heap indices of `leaf` and its ancestors, leaf first, root last. */
export function pathOf(leaf: number): number[] {
  checkLeaf(leaf);
  const path: number[] = [];
  for (let i = LEAVES + leaf; i !== 0; i >>= 1) path.push(i);
  return path;
}

function checkLeaf(leaf: number): void {
  if (!Number.isInteger(leaf) || leaf < 0 || leaf >= LEAVES) {
    throw new RankTreeError("RankTreeLeafOutOfRange", [BigInt(leaf)]);
  }
}

/** A member's (a, k, E) in storage widths, in RankTree._member's order of checks. */
function member(isLong: boolean, a: bigint, k: bigint): [bigint, bigint, bigint] {
  if (a === 0n) throw new RankTreeError("RankTreeZeroLeverage");
  if (k < MIN_I128 || k > MAX_I128) throw new RangeError("SafeCast: k does not fit int128");
  checkUint(a, MAX_U128, "SafeCast: a (uint128)");
  const e = eligibilityKey(isLong, a, k);
  if (e < MIN_I128 || e > MAX_I128) throw new RangeError("SafeCast: E does not fit int128");
  return [a, k, e];
}

/** One (market, side) tree: node records by heap index; absent entries are empty. */
export class RankTree {
  readonly nodes = new Map<number, RankNode>();

  /** @param isLong true for the long tree (best K = smallest), false for the short tree (largest). */
  constructor(readonly isLong: boolean) {}

  /** True iff k is strictly better than `than` for this side. */
  better(k: bigint, than: bigint): boolean {
    return this.isLong ? k < than : k > than;
  }

  /** A copy of the record at heapIndex (1 = root, LEAVES + j = leaf j). */
  node(index: number): RankNode {
    if (!Number.isInteger(index) || index < 1 || index >= 2 * LEAVES) {
      throw new RankTreeError("RankTreeHeapIndexOutOfRange", [BigInt(index)]);
    }
    return { ...(this.nodes.get(index) ?? EMPTY_NODE) };
  }

  /** The record of the node at (level, position). */
  nodeAt(level: number, position: number): RankNode {
    return this.node(heapIndex(level, position));
  }

  /** count += 1 on the leaf, then merge (a, k, E) into it and upward. */
  insert(leaf: number, a: bigint, k: bigint): void {
    checkLeaf(leaf);
    const m = member(this.isLong, a, k);
    const n = this.node(LEAVES + leaf);
    this.nodes.set(LEAVES + leaf, { ...n, count: n.count + 1n });
    this.mergeUp(LEAVES + leaf, m);
  }

  /** Merge a member's new (a, k, E) into its leaf and upward (the member stays in the leaf). */
  update(leaf: number, a: bigint, k: bigint): void {
    checkLeaf(leaf);
    this.mergeUp(LEAVES + leaf, member(this.isLong, a, k));
  }

  /** count -= 1 only; aggregates stay. */
  remove(leaf: number): void {
    checkLeaf(leaf);
    const n = this.node(LEAVES + leaf);
    if (n.count === 0n) throw new RankTreeError("RankTreeCountUnderflow", [BigInt(leaf)]);
    this.nodes.set(LEAVES + leaf, { ...n, count: n.count - 1n });
  }

  /** Recompute internal node `index` exactly from its two children. */
  refreshInternal(index: number): void {
    if (!Number.isInteger(index) || index < 1 || index >= LEAVES) {
      throw new RankTreeError("RankTreeHeapIndexOutOfRange", [BigInt(index)]);
    }
    let left = this.node(2 * index);
    const right = this.node(2 * index + 1);
    if (left.maxA === 0n) {
      left = right;
    } else if (right.maxA !== 0n) {
      left = {
        maxA: left.maxA >= right.maxA ? left.maxA : right.maxA,
        bestK: this.better(right.bestK, left.bestK) ? right.bestK : left.bestK,
        maxE: left.maxE >= right.maxE ? left.maxE : right.maxE,
        count: 0n,
      };
    }
    this.store(index, left.maxA, left.bestK, left.maxE);
  }

  /** Recompute leaf `leaf` exactly from its full member list (lengths must equal the count). */
  refreshLeaf(leaf: number, aValues: bigint[], kValues: bigint[]): void {
    checkLeaf(leaf);
    const count = this.node(LEAVES + leaf).count;
    if (kValues.length !== aValues.length || count !== BigInt(aValues.length)) {
      throw new RankTreeError("RankTreeMemberListMismatch", [
        BigInt(leaf),
        count,
        BigInt(aValues.length),
        BigInt(kValues.length),
      ]);
    }
    let [maxA, bestK, maxE] = [0n, 0n, 0n];
    aValues.forEach((av, i) => {
      const [a, k, e] = member(this.isLong, av, kValues[i]);
      if (i === 0 || a > maxA) maxA = a;
      if (i === 0 || this.better(k, bestK)) bestK = k;
      if (i === 0 || e > maxE) maxE = e;
    });
    this.store(LEAVES + leaf, maxA, bestK, maxE);
  }

  /** Merge (a, k, e) into node `index` and upward; stop at the first node where nothing changes. */
  private mergeUp(index: number, [a, k, e]: [bigint, bigint, bigint]): void {
    for (; index !== 0; index >>= 1) {
      const n = this.node(index);
      if (n.maxA === 0n) {
        this.store(index, a, k, e);
        continue;
      }
      const grewA = a > n.maxA;
      const improvedK = this.better(k, n.bestK);
      const grewE = e > n.maxE;
      if (!(grewA || improvedK || grewE)) return;
      this.store(index, grewA ? a : n.maxA, improvedK ? k : n.bestK, grewE ? e : n.maxE);
    }
  }

  /** Write the aggregates of `index`, keeping its count; drops the entry when it becomes all zero. */
  private store(index: number, maxA: bigint, bestK: bigint, maxE: bigint): void {
    const count = this.nodes.get(index)?.count ?? 0n;
    if (maxA === 0n && bestK === 0n && maxE === 0n && count === 0n) this.nodes.delete(index);
    else this.nodes.set(index, { maxA, bestK, maxE, count });
  }
}
