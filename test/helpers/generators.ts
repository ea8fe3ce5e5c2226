/** Shared fast-check generators for the differential tests: integer bounds and bigint ranges. */
import fc from "fast-check";

export const MAX_U256 = (1n << 256n) - 1n;
export const MAX_I256 = (1n << 255n) - 1n;
export const MIN_I256 = -(1n << 255n);

export const fitsU256 = (v: bigint): boolean => v >= 0n && v <= MAX_U256;
export const fitsI256 = (v: bigint): boolean => v >= MIN_I256 && v <= MAX_I256;

/**
 * Generators of unsigned and signed bigints that mix `edges` in: `uint(hi, lo)` draws a value in
 * [lo, hi], a quarter of them edge values, the rest log-uniform (a random bit length, then uniform
 * below it) so small, medium and huge magnitudes all appear; `sint(mag)` draws |v| <= mag, both
 * signs.
 */
export function bigintGenerators(edges: bigint[]) {
  function uint(hi: bigint, lo = 0n): fc.Arbitrary<bigint> {
    const bits = hi.toString(2).length;
    const inRange = edges.filter((v) => v >= lo && v <= hi).concat([lo, hi]);
    const logUniform = fc
      .integer({ min: 0, max: bits })
      .chain((b) => fc.bigInt(0n, (1n << BigInt(b)) - 1n))
      .map((v) => (v < lo ? lo + v : v > hi ? hi : v));
    return fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...inRange) }, { weight: 3, arbitrary: logUniform });
  }
  function sint(mag: bigint): fc.Arbitrary<bigint> {
    return fc.tuple(fc.boolean(), uint(mag)).map(([neg, v]) => (neg ? -v : v));
  }
  return { uint, sint };
}
