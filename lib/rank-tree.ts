/**
 * The rank index of docs/mechanism.md section 4, bit for bit as contracts/libraries/RankTree.sol computes it:
 * the band assignment (leafOf / bandOf) and an in-memory tree per (market, side) with the same
 * operations, packed one-slot node words (same rounding, bit for bit), aggregates and stopping rule.
 * Every operation throws exactly where the Solidity library
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
/** aBand = clamp(2 * bitlen(a) + secondBit(a) + 2 * kRef - A_BAND_BIAS, 0, MAX_A_BAND): bands of leverage. */
export const A_BAND_BIAS = 200;

const MAX_U128 = (1n << 128n) - 1n;
const MAX_I128 = (1n << 127n) - 1n;
const MIN_I128 = -(1n << 127n);
const MAX_U256 = (1n << 256n) - 1n;
const MAX_I256 = (1n << 255n) - 1n;
const MIN_I256 = -(1n << 255n);

/**
 * A decoded node record. Empty iff maxA == 0 (then every field but count is 0); count is meaningful on leaves
 * only. maxA is the members' largest a rounded up, bestK their best K rounded toward best (down for longs, up
 * for shorts), maxE their largest E rounded up (see the slot layout below).
 */
export interface RankNode {
  maxA: bigint;
  bestK: bigint;
  maxE: bigint;
  count: bigint;
}

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
 * aBand = clamp(2 * bitlen(a) + secondBit(a) + 2 * kRef - 200, 0, 63); kBand = 0 for k <= 0, else
 * clamp((bitlen(k) - kRef) * 128 + mant7(k), 0, 255), mant7 the 7 bits below the leading one.
 */
export function bandOf(a: bigint, k: bigint, kRef: number): { aBand: number; kBand: number } {
  checkUint(a, MAX_U256, "a");
  if (k < MIN_I256 || k > MAX_I256) throw new RangeError("k out of range");
  if (!Number.isInteger(kRef) || kRef < 0 || kRef > 255) throw new RangeError("kRef out of range");
  const aBits = bitLength(a);
  const t = 2 * aBits + (aBits >= 2 ? Number((a >> BigInt(aBits - 2)) & 1n) : 0) + 2 * kRef;
  const aBand = t <= A_BAND_BIAS ? 0 : Math.min(t - A_BAND_BIAS, MAX_A_BAND);
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

// ---------------------------------------------------------------------------------------------
// The slot of one node (RankTree.sol), low bit first:
//   [0, 48)    count (uint48)
//   [48, 112)  maxA code: mantissa (56 bits) | exponent (8 bits) << 56, value mantissa << exponent, rounded up
//   [112, 184) bestK code: mantissa (64 bits) | exponent (7 bits) << 64 | sign << 71, rounded toward best
//   [184, 256) maxE code: as bestK, rounded up
// Codes are canonical (least exponent), so equal values have equal codes.
// ---------------------------------------------------------------------------------------------

export const A_MANTISSA_BITS = 56;
export const S_MANTISSA_BITS = 64;
/** Largest member count of a leaf (uint48). */
export const MAX_COUNT = (1n << 48n) - 1n;
const A_SHIFT = 48n;
const K_SHIFT = 112n;
const E_SHIFT = 184n;
const A_CODE_MASK = (1n << 64n) - 1n;
const S_CODE_MASK = (1n << 72n) - 1n;
const A_FIELD = A_CODE_MASK << A_SHIFT;
const K_FIELD = S_CODE_MASK << K_SHIFT;
const E_FIELD = S_CODE_MASK << E_SHIFT;
const S_SIGN = 1n << 71n;
const NOT = (field: bigint): bigint => MAX_U256 ^ field;

/** [e, m]: m << e the least (up) or greatest value of that form >= / <= v, m < 2^bits, e least. */
function encodeMagnitude(v: bigint, bits: number, up: boolean): [bigint, bigint] {
  const len = bitLength(v);
  if (len <= bits) return [0n, v];
  let e = BigInt(len - bits);
  let m = v >> e;
  if (up && m << e !== v) {
    m += 1n;
    if (m >> BigInt(bits) !== 0n) {
      m >>= 1n;
      e += 1n;
    }
  }
  return [e, m];
}

/** RankTree.encodeA: the 64-bit code of v (uint128) rounded up. */
export function encodeA(v: bigint): bigint {
  checkUint(v, MAX_U128, "encodeA: v (uint128)");
  const [e, m] = encodeMagnitude(v, A_MANTISSA_BITS, true);
  return (e << BigInt(A_MANTISSA_BITS)) | m;
}

/** RankTree.decodeA: the value of a maxA code. */
export function decodeA(code: bigint): bigint {
  return (code & ((1n << BigInt(A_MANTISSA_BITS)) - 1n)) << (code >> BigInt(A_MANTISSA_BITS));
}

/** RankTree.encodeSigned: the 72-bit code of v (int128) rounded up (`up`) or down. */
export function encodeSigned(v: bigint, up: boolean): bigint {
  if (v < MIN_I128 || v > MAX_I128) throw new RangeError("encodeSigned: v (int128) out of range");
  const negative = v < 0n;
  const [e, m] = encodeMagnitude(negative ? -v : v, S_MANTISSA_BITS, up !== negative);
  return (negative ? S_SIGN : 0n) | (e << BigInt(S_MANTISSA_BITS)) | m;
}

/** RankTree.decodeSigned: the value of a signed code. */
export function decodeSigned(code: bigint): bigint {
  const magnitude = (code & ((1n << BigInt(S_MANTISSA_BITS)) - 1n)) << ((code >> BigInt(S_MANTISSA_BITS)) & 127n);
  return (code & S_SIGN) === 0n ? magnitude : -magnitude;
}

/** a (uint128) rounded up to the maxA format. */
export const roundA = (a: bigint): bigint => decodeA(encodeA(a));
/** K (int128) rounded toward best: down for a long tree, up for a short tree. */
export const roundK = (isLong: boolean, k: bigint): bigint => decodeSigned(encodeSigned(k, !isLong));
/** E (int128) rounded up. */
export const roundE = (e: bigint): bigint => decodeSigned(encodeSigned(e, true));

const maxAOf = (w: bigint): bigint => decodeA((w >> A_SHIFT) & A_CODE_MASK);
const bestKOf = (w: bigint): bigint => decodeSigned((w >> K_SHIFT) & S_CODE_MASK);
const maxEOf = (w: bigint): bigint => decodeSigned((w >> E_SHIFT) & S_CODE_MASK);

/** RankTree.decode: the record packed in a slot word. */
export function decodeWord(w: bigint): RankNode {
  return { maxA: maxAOf(w), bestK: bestKOf(w), maxE: maxEOf(w), count: w & MAX_COUNT };
}

/**
 * RankTree.memberWord: a member's packed aggregates (count 0) in RankTree's order of checks (a == 0, then
 * SafeCast of k, a, E): a rounded up, k toward best, E = eligibilityKey(isLong, a, k) (exact a, k) rounded up.
 */
export function memberWord(isLong: boolean, a: bigint, k: bigint): bigint {
  if (a === 0n) throw new RankTreeError("RankTreeZeroLeverage");
  if (k < MIN_I128 || k > MAX_I128) throw new RangeError("SafeCast: k does not fit int128");
  checkUint(a, MAX_U128, "SafeCast: a (uint128)");
  const e = eligibilityKey(isLong, a, k);
  if (e < MIN_I128 || e > MAX_I128) throw new RangeError("SafeCast: E does not fit int128");
  return (encodeA(a) << A_SHIFT) | (encodeSigned(k, !isLong) << K_SHIFT) | (encodeSigned(e, true) << E_SHIFT);
}

/** One (market, side) tree: packed node words by heap index; absent entries are 0 (empty). */
export class RankTree {
  readonly words = new Map<number, bigint>();

  /** @param isLong true for the long tree (best K = smallest), false for the short tree (largest). */
  constructor(readonly isLong: boolean) {}

  /** True iff k is strictly better than `than` for this side. */
  better(k: bigint, than: bigint): boolean {
    return this.isLong ? k < than : k > than;
  }

  /** The packed slot at heapIndex (1 = root, LEAVES + j = leaf j). */
  word(index: number): bigint {
    if (!Number.isInteger(index) || index < 1 || index >= 2 * LEAVES) {
      throw new RankTreeError("RankTreeHeapIndexOutOfRange", [BigInt(index)]);
    }
    return this.words.get(index) ?? 0n;
  }

  /** The decoded record at heapIndex (1 = root, LEAVES + j = leaf j). */
  node(index: number): RankNode {
    return decodeWord(this.word(index));
  }

  /** The record of the node at (level, position). */
  nodeAt(level: number, position: number): RankNode {
    return this.node(heapIndex(level, position));
  }

  /** count += 1 on the leaf, then merge the member into it and upward. */
  insert(leaf: number, a: bigint, k: bigint): void {
    checkLeaf(leaf);
    const m = memberWord(this.isLong, a, k);
    const index = LEAVES + leaf;
    const w = this.word(index);
    if ((w & MAX_COUNT) === MAX_COUNT) throw new RankTreeError("RankTreeCountOverflow", [BigInt(leaf)]);
    const joined = this.join(w, m);
    this.set(index, joined + 1n);
    if (joined !== w) this.mergeUp(index >> 1, m);
  }

  /** Merge a member's new (a, k) into its leaf and upward (the member stays in the leaf). */
  update(leaf: number, a: bigint, k: bigint): void {
    checkLeaf(leaf);
    this.mergeUp(LEAVES + leaf, memberWord(this.isLong, a, k));
  }

  /** count -= 1 only; aggregates stay. */
  remove(leaf: number): void {
    checkLeaf(leaf);
    const w = this.word(LEAVES + leaf);
    if ((w & MAX_COUNT) === 0n) throw new RankTreeError("RankTreeCountUnderflow", [BigInt(leaf)]);
    this.set(LEAVES + leaf, w - 1n);
  }

  /** Recompute internal node `index` exactly from its two children. */
  refreshInternal(index: number): void {
    if (!Number.isInteger(index) || index < 1 || index >= LEAVES) {
      throw new RankTreeError("RankTreeHeapIndexOutOfRange", [BigInt(index)]);
    }
    const left = this.word(2 * index) & NOT(MAX_COUNT);
    const right = this.word(2 * index + 1) & NOT(MAX_COUNT);
    this.set(index, (right & A_FIELD) === 0n ? left : this.join(left, right));
  }

  /** Recompute leaf `leaf` from its full member list (lengths must equal the count). */
  refreshLeaf(leaf: number, aValues: bigint[], kValues: bigint[]): void {
    checkLeaf(leaf);
    const index = LEAVES + leaf;
    const count = this.word(index) & MAX_COUNT;
    if (kValues.length !== aValues.length || count !== BigInt(aValues.length)) {
      throw new RankTreeError("RankTreeMemberListMismatch", [
        BigInt(leaf),
        count,
        BigInt(aValues.length),
        BigInt(kValues.length),
      ]);
    }
    let joined = 0n;
    aValues.forEach((a, i) => {
      joined = this.join(joined, memberWord(this.isLong, a, kValues[i]));
    });
    this.set(index, joined | count);
  }

  /** Merge member word m into node `index` and upward; stop at the first node that does not change. */
  private mergeUp(index: number, m: bigint): void {
    for (; index !== 0; index >>= 1) {
      const w = this.word(index);
      const joined = this.join(w, m);
      if (joined === w) return;
      this.set(index, joined);
    }
  }

  /** RankTree._join: w (count kept) joined with the non-empty aggregates m, code by code. */
  private join(w: bigint, m: bigint): bigint {
    if ((w & A_FIELD) === 0n) return w | m;
    if (maxAOf(m) > maxAOf(w)) w = (w & NOT(A_FIELD)) | (m & A_FIELD);
    if (this.better(bestKOf(m), bestKOf(w))) w = (w & NOT(K_FIELD)) | (m & K_FIELD);
    if (maxEOf(m) > maxEOf(w)) w = (w & NOT(E_FIELD)) | (m & E_FIELD);
    return w;
  }

  private set(index: number, w: bigint): void {
    if (w === 0n) this.words.delete(index);
    else this.words.set(index, w);
  }
}
