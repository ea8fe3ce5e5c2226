/**
 * Exact integer helpers mirroring contracts/libraries/FixedPointMath.sol.
 * Every function names its rounding direction; all amounts are bigint.
 */
export const WAD = 10n ** 18n;

/** floor(a * b / d) for non-negative operands. */
export function mulDivDown(a: bigint, b: bigint, d: bigint): bigint {
  if (a < 0n || b < 0n || d <= 0n) throw new RangeError("mulDivDown takes non-negative operands and d > 0");
  return (a * b) / d;
}

/** ceil(a * b / d) for non-negative operands. */
export function mulDivUp(a: bigint, b: bigint, d: bigint): bigint {
  if (a < 0n || b < 0n || d <= 0n) throw new RangeError("mulDivUp takes non-negative operands and d > 0");
  const p = a * b;
  return p === 0n ? 0n : (p - 1n) / d + 1n;
}

/** floor(a / d) toward negative infinity, for signed a and positive d. */
export function divFloor(a: bigint, d: bigint): bigint {
  if (d <= 0n) throw new RangeError("divFloor takes d > 0");
  const q = a / d; // bigint division truncates toward zero, like Solidity
  return a % d !== 0n && a < 0n ? q - 1n : q;
}

/** ceil(a / d) toward positive infinity, for signed a and positive d. */
export function divCeil(a: bigint, d: bigint): bigint {
  if (d <= 0n) throw new RangeError("divCeil takes d > 0");
  const q = a / d;
  return a % d !== 0n && a > 0n ? q + 1n : q;
}

export const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
export const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);
export const absBig = (a: bigint): bigint => (a < 0n ? -a : a);
