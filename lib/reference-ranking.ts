/**
 * An independent reference for the ADL queue, written from docs/mechanism.md sections 2 and 3 alone (it
 * shares no code with lib/score.ts, lib/adl.ts or the contracts): the call's deficit and loss per
 * unit, eligibility, the canonical integer score S_fin, the queue order and the head of the queue
 * covering a bankrupt position. Everything is exact: integers and exact fractions, no floating
 * point. Next to the canonical integer score it also evaluates the real-number score of the design
 * (a^2 x P / (1 + a x)) as an exact fraction, so a report can say how often integer rounding
 * orders two entries differently from exact arithmetic (rounding may tie or, rarely, swap near-equal
 * scores; the canonical integer function is what the contract must follow).
 */

/** W = 1e18: prices, sizes, margins, the stored leverage a and scores are all W-scaled. */
const W = 10n ** 18n;
const W2 = W * W;

/** A stored position (docs/mechanism.md section 2): side, size q, funding-adjusted entry K, margin c, a. */
export interface RefPosition {
  account: string;
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  /** The stored a = ceil(q * W / c), saturating. */
  leverage: bigint;
}

/** An exact fraction num / den with den > 0. */
export interface Fraction {
  num: bigint;
  den: bigint;
}

/** -1, 0 or 1 as u <, ==, > v. */
export function compareFractions(u: Fraction, v: Fraction): number {
  const l = u.num * v.den;
  const r = v.num * u.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** floor(n / d) for d > 0 and any sign of n (bigint division truncates toward zero). */
function floorDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d !== 0n && n < 0n ? q - 1n : q;
}

/** ceil(n / d) for d > 0 and any sign of n. */
function ceilDiv(n: bigint, d: bigint): bigint {
  return -floorDiv(-n, d);
}

/** The F each side is valued at: `long` for long positions, `short` for short ones. */
export interface SideFundings {
  long: bigint;
  short: bigint;
}

/**
 * Each side's F with its socialized-loss index folded in (docs/mechanism.md section 7.6): a loss
 * charged to a side lowers every one of its positions' x by L, like funding paid by that side
 * only, so longs are valued at F + L_long and shorts at F - L_short.
 */
export function sideFundings(funding: bigint, lossLong: bigint, lossShort: bigint): SideFundings {
  return { long: funding + lossLong, short: funding - lossShort };
}

/** The F of `isLong`'s side. */
export const fundingOf = (f: SideFundings, isLong: boolean): bigint => (isLong ? f.long : f.short);

/**
 * x = (P - F) - K for a long, K - (P - F) for a short: the profit per unit at (P, F), where F is
 * the F of the position's own side (fundingOf).
 */
export function profitPerUnit(p: Pick<RefPosition, "isLong" | "entry">, price: bigint, funding: bigint): bigint {
  return p.isLong ? price - funding - p.entry : p.entry - (price - funding);
}

/** Equity c + floor(q * x / W), with `funding` the F of p's side. */
export function equityAt(p: RefPosition, price: bigint, funding: bigint): bigint {
  return p.margin + floorDiv(p.size * profitPerUnit(p, price, funding), W);
}

/** The canonical score: minus infinity, or the finite integer chain S_fin of docs/mechanism.md section 2. */
export interface CanonicalScore {
  minusInfinity: boolean;
  /** S_fin (meaningless when minusInfinity). */
  value: bigint;
}

/**
 * S_fin(a, x, P): for x > 0, y = floor(a*x/W), g = floor(y*W/(W+y)), S = floor(floor(P*a/W)*g/W);
 * otherwise S = trunc(x*W/P). Minus infinity iff x < 0 and a*(-x) >= W*W.
 */
export function canonicalScore(a: bigint, x: bigint, price: bigint): CanonicalScore {
  if (x < 0n && a * -x >= W2) return { minusInfinity: true, value: 0n };
  if (x > 0n) {
    const y = (a * x) / W;
    const g = (y * W) / (W + y);
    return { minusInfinity: false, value: (((price * a) / W) * g) / W };
  }
  // Truncation toward zero is exactly what bigint division does.
  return { minusInfinity: false, value: (x * W) / price };
}

/**
 * The real-number score of the design, scaled by W like S_fin, as an exact fraction:
 * W * A^2 X P' / (1 + A X) with A = a/W, X = x/W, P' = P/W, i.e. a^2 x P / (W (W^2 + a x)) for
 * x > 0, and x W / P otherwise. Undefined (null) for minus infinity.
 */
export function exactScore(a: bigint, x: bigint, price: bigint): Fraction | null {
  if (x < 0n && a * -x >= W2) return null;
  if (x > 0n) return { num: a * a * x * price, den: W * (W2 + a * x) };
  return { num: x * W, den: price };
}

/** D, min(A, D), sigma and delta of one call (docs/mechanism.md section 3, step 1). */
export interface RefDelta {
  deficit: bigint;
  covered: bigint;
  sigma: bigint;
  delta: bigint;
}

/**
 * D = -(equity of B), covered = min(A, D), sigma = floor(covered * W / q_B),
 * delta = ceil(D * W / q_B) - sigma, with `funding` the F of B's own side. Null if B is not
 * bankrupt (no ADL call can exist).
 */
export function referenceDelta(b: RefPosition, price: bigint, funding: bigint, fundAvailable: bigint): RefDelta | null {
  if (b.size === 0n) return null;
  const eq = equityAt(b, price, funding);
  if (eq >= 0n) return null;
  const deficit = -eq;
  const covered = fundAvailable < deficit ? fundAvailable : deficit;
  const sigma = floorDiv(covered * W, b.size);
  return { deficit, covered, sigma, delta: ceilDiv(deficit * W, b.size) - sigma };
}

/** Eligible iff the equity per unit covers the loss per unit: floor(W*W/a) + x >= delta. */
export function isEligibleRef(a: bigint, x: bigint, delta: bigint): boolean {
  return floorDiv(W2, a) + x >= delta;
}

/** One opposite-side position as the reference sees it at the call's (P, F, delta). */
export interface RankedPosition {
  account: string;
  size: bigint;
  x: bigint;
  score: CanonicalScore;
  exact: Fraction | null;
  eligible: boolean;
}

/** Lower address first (numeric order of the 160-bit value). */
function addressOrder(u: string, v: string): number {
  const [a, b] = [BigInt(u), BigInt(v)];
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The queue order: higher canonical score first, equal scores by lower address. */
export function queueOrder(u: RankedPosition, v: RankedPosition): number {
  if (u.score.value !== v.score.value) return u.score.value > v.score.value ? -1 : 1;
  return addressOrder(u.account, v.account);
}

/** Every open position on the side opposite `bankrupt`, scored, with the eligible finite ones ranked. */
export interface ReferenceQueue {
  /** Eligible positions with a finite score, head first. */
  queue: RankedPosition[];
  /** Opposite-side positions left out: ineligible or minus infinity. */
  excluded: RankedPosition[];
  /** Adjacent queue pairs that exact real scores order the other way (rounding swaps). */
  roundingSwaps: number;
  /** Adjacent queue pairs tied in the integer score but not in exact real scores. */
  roundingTies: number;
}

/**
 * Ranks `positions` (any set containing at least the opposite side) for a call on `bankrupt`;
 * `funding` is the F of the counterparties' side (the side opposite B's).
 */
export function rankOpposite(
  positions: readonly RefPosition[],
  bankrupt: RefPosition,
  price: bigint,
  funding: bigint,
  delta: bigint,
): ReferenceQueue {
  const queue: RankedPosition[] = [];
  const excluded: RankedPosition[] = [];
  for (const p of positions) {
    if (p.size === 0n || p.isLong === bankrupt.isLong || p.account.toLowerCase() === bankrupt.account.toLowerCase()) {
      continue;
    }
    const x = profitPerUnit(p, price, funding);
    const score = canonicalScore(p.leverage, x, price);
    const r: RankedPosition = {
      account: p.account,
      size: p.size,
      x,
      score,
      exact: exactScore(p.leverage, x, price),
      eligible: isEligibleRef(p.leverage, x, delta),
    };
    if (score.minusInfinity || !r.eligible) excluded.push(r);
    else queue.push(r);
  }
  queue.sort(queueOrder);
  excluded.sort((u, v) => addressOrder(u.account, v.account));
  let roundingSwaps = 0;
  let roundingTies = 0;
  for (let i = 1; i < queue.length; i++) {
    const c = compareFractions(queue[i - 1].exact!, queue[i].exact!);
    if (c < 0) roundingSwaps += 1;
    else if (c > 0 && queue[i - 1].score.value === queue[i].score.value) roundingTies += 1;
  }
  return { queue, excluded, roundingSwaps, roundingTies };
}

/** One entry of the head: who, how much it takes, its score and 0-based queue position. */
export interface HeadEntry {
  account: string;
  take: bigint;
  score: bigint;
  queuePosition: number;
}

/**
 * The head of the queue covering `size` (each entry takes min(remaining, q_i)), stopping after
 * `maxEntries` entries (a call may settle part of B and leave the rest for the next call).
 */
export function headOfQueue(queue: readonly RankedPosition[], size: bigint, maxEntries: number): HeadEntry[] {
  const head: HeadEntry[] = [];
  let remaining = size;
  for (const [i, r] of queue.entries()) {
    if (remaining === 0n || head.length >= maxEntries) break;
    const take = remaining < r.size ? remaining : r.size;
    remaining -= take;
    head.push({ account: r.account, take, score: r.score.value, queuePosition: i });
  }
  return head;
}

/** The differences between an executed list and the reference head (empty when they agree). */
export function compareWithHead(
  executed: readonly { account: string; take: bigint; score: bigint; queuePosition: bigint | number }[],
  head: readonly HeadEntry[],
): string[] {
  const diffs: string[] = [];
  if (executed.length !== head.length) diffs.push(`list has ${executed.length} entries, reference head ${head.length}`);
  const n = Math.min(executed.length, head.length);
  for (let i = 0; i < n; i++) {
    const e = executed[i];
    const h = head[i];
    if (e.account.toLowerCase() !== h.account.toLowerCase()) diffs.push(`#${i}: ${e.account} != ${h.account}`);
    if (e.take !== h.take) diffs.push(`#${i}: take ${e.take} != ${h.take}`);
    if (e.score !== h.score) diffs.push(`#${i}: score ${e.score} != ${h.score}`);
    if (BigInt(e.queuePosition) !== BigInt(h.queuePosition)) {
      diffs.push(`#${i}: queue position ${e.queuePosition} != ${h.queuePosition}`);
    }
  }
  return diffs;
}
