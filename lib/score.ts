/**
 * The ADL score, queue order and eligibility test of docs/mechanism.md sections 2-4, bit for bit as
 * contracts/libraries/ScoreMath.sol computes them. Every function throws (RangeError) exactly where
 * the Solidity version reverts: a checked int256 / uint256 overflow, a division by zero, or a
 * SafeCast failure. Inside the design's domain (a <= 2^128; |K|, q, P < 2^128) none of them throws
 * except eligibilityKey / isEligible with a == 0 and the x <= 0 branch of scoreFinite with P == 0.
 */
import { WAD } from "./math";

/** W * W: the real number 1 at the scale of a * x. */
export const WAD_SQUARED = WAD * WAD;
/** The value a minus-infinity score carries (type(int256).min): below every finite score. */
export const MINUS_INFINITY_VALUE = -(1n << 255n);

const MAX_U256 = (1n << 256n) - 1n;
const MAX_I256 = (1n << 255n) - 1n;
const MIN_I256 = -(1n << 255n);

/** A checked int256 result: throws where Solidity 0.8 arithmetic (or SafeCast) reverts. */
function i256(v: bigint): bigint {
  if (v < MIN_I256 || v > MAX_I256) throw new RangeError("int256 overflow");
  return v;
}

/** OpenZeppelin Math.mulDiv: floor(a * b / d) with a 512-bit product; reverts on d == 0 or a result >= 2^256. */
function mulDivFloor(a: bigint, b: bigint, d: bigint): bigint {
  if (d === 0n) throw new RangeError("mulDiv by zero");
  const r = (a * b) / d;
  if (r > MAX_U256) throw new RangeError("mulDiv overflow");
  return r;
}

/** x = (P - F) - K for a long, K - (P - F) for a short, with Solidity's checked int256 steps. */
function pnlPerUnitChecked(isLong: boolean, k: bigint, p: bigint, f: bigint): bigint {
  if (p > MAX_I256) throw new RangeError("price does not fit int256"); // outside the domain (P < 2^128)
  const adjusted = i256(p - f);
  return i256(isLong ? adjusted - k : k - adjusted);
}

/**
 * S_fin(a, x, P), the finite score chain. For x > 0: y = floor(a*x/W), g = floor(y*W/(W+y)),
 * S = floor(floor(P*a/W) * g / W), each step rounded down. For x <= 0: S = trunc(x*W/P), truncation
 * toward zero (bigint division truncates like Solidity's signed division).
 */
export function scoreFinite(a: bigint, x: bigint, p: bigint): bigint {
  if (x > 0n) {
    const y = mulDivFloor(a, x, WAD);
    if (WAD + y > MAX_U256) throw new RangeError("uint256 overflow");
    const g = mulDivFloor(y, WAD, WAD + y);
    return i256(mulDivFloor(mulDivFloor(p, a, WAD), g, WAD));
  }
  if (x === MIN_I256) throw new RangeError("int256 overflow"); // -x reverts
  return -i256(mulDivFloor(-x, WAD, p));
}

/** True iff x < 0 and a * (-x) >= W * W, on the exact product. */
export function isMinusInfinity(a: bigint, x: bigint): boolean {
  return x < 0n && a * -x >= WAD_SQUARED;
}

/** A member's score: minus infinity (value MINUS_INFINITY_VALUE) or S_fin. */
export interface Score {
  minusInf: boolean;
  value: bigint;
}

/** The member score of ScoreMath.score: (true, int256 min) if isMinusInfinity(a, x), else (false, S_fin). */
export function score(a: bigint, x: bigint, p: bigint): Score {
  if (isMinusInfinity(a, x)) return { minusInf: true, value: MINUS_INFINITY_VALUE };
  return { minusInf: false, value: scoreFinite(a, x, p) };
}

function addressValue(account: string): bigint {
  const v = BigInt(account);
  if (v < 0n || v >= 1n << 160n) throw new RangeError(`not an address: ${account}`);
  return v;
}

/**
 * True iff A ranks strictly below B: higher score first, minus infinity below every finite score,
 * equal finite scores or two minus infinities (values ignored) by lower address first.
 */
export function ranksBelow(
  scoreA: bigint,
  infA: boolean,
  accountA: string,
  scoreB: bigint,
  infB: boolean,
  accountB: string,
): boolean {
  if (infA !== infB) return infA;
  if (!infA && scoreA !== scoreB) return scoreA < scoreB;
  return addressValue(accountA) > addressValue(accountB);
}

/** One position's place in the queue. */
export interface QueueEntry extends Score {
  account: string;
}

/**
 * Array.prototype.sort comparator in queue order (head first): negative if `a` ranks before `b`,
 * positive if after, 0 only for the same account with the same score. Built on ranksBelow.
 */
export function compareQueue(a: QueueEntry, b: QueueEntry): number {
  if (ranksBelow(b.value, b.minusInf, b.account, a.value, a.minusInf, a.account)) return -1;
  if (ranksBelow(a.value, a.minusInf, a.account, b.value, b.minusInf, b.account)) return 1;
  return 0;
}

/** E = floor(W*W/a) - K for a long, floor(W*W/a) + K for a short; throws on a == 0. */
export function eligibilityKey(isLong: boolean, a: bigint, k: bigint): bigint {
  if (a === 0n) throw new RangeError("division by zero");
  const perUnitMargin = WAD_SQUARED / a;
  return i256(isLong ? perUnitMargin - k : perUnitMargin + k);
}

/** E + (P - F) >= delta for a long, E - (P - F) >= delta for a short (the node test on max E). */
export function keyCovers(isLong: boolean, key: bigint, p: bigint, f: bigint, delta: bigint): boolean {
  if (p > MAX_I256) throw new RangeError("SafeCast: price does not fit int256");
  const adjusted = i256(p - f);
  const equityPerUnit = i256(isLong ? key + adjusted : key - adjusted);
  return equityPerUnit >= 0n && equityPerUnit >= delta;
}

/** Eligibility floor(W*W/a) + x >= delta, written as keyCovers(eligibilityKey(...)) like the contract. */
export function isEligible(isLong: boolean, a: bigint, k: bigint, p: bigint, f: bigint, delta: bigint): boolean {
  return keyCovers(isLong, eligibilityKey(isLong, a, k), p, f, delta);
}

/** A node's bound S_fin(max a, x(best K)): never minus infinity. */
export function nodeBound(maxA: bigint, bestK: bigint, isLong: boolean, p: bigint, f: bigint): bigint {
  return scoreFinite(maxA, pnlPerUnitChecked(isLong, bestK, p, f), p);
}

/** The score of a stored position (side, a, K) at the call's (P, F). */
export function positionScore(isLong: boolean, a: bigint, k: bigint, p: bigint, f: bigint): Score {
  return score(a, pnlPerUnitChecked(isLong, k, p, f), p);
}
