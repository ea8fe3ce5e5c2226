/**
 * The position record of docs/mechanism.md section 2, bit for bit as contracts/libraries/PositionMath.sol
 * and the Clearinghouse funnel compute it.
 */
import { WAD, divCeil, divFloor, minBig, mulDivDown, mulDivUp } from "./math";

/** Leverage saturates at 2^128 - 1 (uint128 max) instead of wrapping. */
export const MAX_LEVERAGE = (1n << 128n) - 1n;
/** Sizes, |K| and prices stay at or below this so every s*K fits in int256. */
export const MAX_MAGNITUDE = (1n << 120n) - 1n;

/** A stored position (size 0 means none). All values 18-decimal. */
export interface PositionRecord {
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  leverage: bigint;
}

export const EMPTY_POSITION: PositionRecord = { isLong: false, size: 0n, entry: 0n, margin: 0n, leverage: 0n };

/**
 * The cumulative funding a side's positions are valued at (PositionMath.sideFunding): F with the
 * side's socialized-loss index folded in, F + L_long for longs and F - L_short for shorts
 * (docs/mechanism.md section 7.6). Every x, equity, score and eligibility of a position uses its
 * own side's value.
 */
export function sideFunding(funding: bigint, lossLong: bigint, lossShort: bigint, isLong: boolean): bigint {
  return isLong ? funding + lossLong : funding - lossShort;
}

/** x: per-unit PnL, (P - F) - K for a long, K - (P - F) for a short (F: the position's side's). */
export function pnlPerUnit(isLong: boolean, entry: bigint, price: bigint, funding: bigint): bigint {
  const adjusted = price - funding;
  return isLong ? adjusted - entry : entry - adjusted;
}

/** floor(q * x / W), against the account. */
export function pnlDown(size: bigint, x: bigint): bigint {
  return divFloor(size * x, WAD);
}

/** c + floor(q * x / W). */
export function equityOf(margin: bigint, size: bigint, x: bigint): bigint {
  return margin + pnlDown(size, x);
}

/** ceil(ceil(q * P / W) * ratio / W): a margin requirement, rounded against the account. */
export function requirementUp(size: bigint, price: bigint, ratio: bigint): bigint {
  return mulDivUp(mulDivUp(size, price, WAD), ratio, WAD);
}

/** Shortfall of the one margin test c + min(floor(q*x/W), 0) >= requirementUp(q, P, imr); 0 if it passes. */
export function marginShortfall(margin: bigint, size: bigint, x: bigint, price: bigint, imr: bigint): bigint {
  const backing = margin + minBig(pnlDown(size, x), 0n);
  const required = requirementUp(size, price, imr);
  return backing >= required ? 0n : required - backing;
}

/** (q*K + d*(p - F)) / (q + d), rounded up for a long and down for a short. */
export function blendEntry(
  isLong: boolean,
  size: bigint,
  entry: bigint,
  add: bigint,
  price: bigint,
  funding: bigint,
): bigint {
  const numerator = size * entry + add * (price - funding);
  return isLong ? divCeil(numerator, size + add) : divFloor(numerator, size + add);
}

/** floor(c * d / q). */
export function releasedMargin(margin: bigint, reduce: bigint, size: bigint): bigint {
  return mulDivDown(margin, reduce, size);
}

/** a = ceil(q * W / c), saturating at MAX_LEVERAGE. */
export function leverageUp(size: bigint, margin: bigint): bigint {
  const a = mulDivUp(size, WAD, margin);
  return a > MAX_LEVERAGE ? MAX_LEVERAGE : a;
}

/** The result of one leg of a fill through the funnel. */
export interface FillResult {
  position: PositionRecord;
  /** Released margin plus realized PnL of the reducing part (0 if nothing was reduced). */
  payout: bigint;
  /** Margin posted from free collateral for the increasing part. */
  posted: bigint;
  reduced: bigint;
  increased: bigint;
}

/** The F each side is valued at (PositionMath.sideFunding: F + L_long, F - L_short). */
export interface SideFunding {
  long: bigint;
  short: bigint;
}

/**
 * One leg of a fill, as PositionBook.modify applies it: reduce first (a crossing fill closes
 * fully), then increase with margin max(ceil(d*p/leverage), shortfall of the margin test). `funding`
 * is one F for both sides (no loss was socialized), or each side's F: the reducing part is valued at
 * its side's, the increasing part at the side it opens or grows.
 */
export function applyFill(
  pos: PositionRecord,
  sizeDelta: bigint,
  price: bigint,
  leverage: bigint,
  indexPrice: bigint,
  funding: bigint | SideFunding,
  imr: bigint,
): FillResult {
  const fundingOf = (isLong: boolean): bigint =>
    typeof funding === "bigint" ? funding : isLong ? funding.long : funding.short;
  const buying = sizeDelta > 0n;
  const amount = buying ? sizeDelta : -sizeDelta;
  let p = { ...pos };
  let payout = 0n;
  let reduced = 0n;
  if (p.size !== 0n && p.isLong !== buying) {
    reduced = minBig(amount, p.size);
    const released = releasedMargin(p.margin, reduced, p.size);
    payout = released + pnlDown(reduced, pnlPerUnit(p.isLong, p.entry, price, fundingOf(p.isLong)));
    p.margin -= released;
    p.size -= reduced;
    if (p.size === 0n) p = { ...EMPTY_POSITION };
  }
  const increased = amount - reduced;
  let posted = 0n;
  if (increased !== 0n) {
    const f = fundingOf(buying);
    if (p.size === 0n) p.isLong = buying;
    const newSize = p.size + increased;
    p.entry = blendEntry(buying, p.size, p.entry, increased, price, f);
    p.size = newSize;
    const chosen = mulDivUp(increased, price, leverage);
    const shortfall = marginShortfall(p.margin, newSize, pnlPerUnit(p.isLong, p.entry, indexPrice, f), indexPrice, imr);
    posted = chosen > shortfall ? chosen : shortfall;
    p.margin += posted;
    p.leverage = leverageUp(newSize, p.margin);
  }
  return { position: p, payout, posted, reduced, increased };
}

/** Signed size times K: the position's term of the market's exact sum s*K. */
export function contribution(pos: PositionRecord): bigint {
  const sk = pos.size * pos.entry;
  return pos.isLong ? sk : -sk;
}
