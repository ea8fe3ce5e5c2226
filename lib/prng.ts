/**
 * A small seeded pseudo-random generator (splitmix64 over bigint), so that scenarios built from a
 * seed are identical on every machine and every run. Not for anything secret.
 */
const MASK64 = (1n << 64n) - 1n;

export class Prng {
  private state: bigint;

  constructor(seed: bigint | number) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  /** The next 64 random bits. */
  next64(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }

  /** A uniform integer in [min, max] (inclusive); the modulo bias over 64 bits is negligible here. */
  between(min: bigint, max: bigint): bigint {
    if (max < min) throw new RangeError(`empty range [${min}, ${max}]`);
    return min + (this.next64() % (max - min + 1n));
  }

  /** A uniform small integer in [min, max] (inclusive), for counts and indices. */
  int(min: number, max: number): number {
    return Number(this.between(BigInt(min), BigInt(max)));
  }

  /** True with probability `ppm` / 1,000,000. */
  chance(ppm: number): boolean {
    return this.between(0n, 999_999n) < BigInt(ppm);
  }

  /** A Fisher-Yates shuffle of a copy of `items`. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** An independent generator derived from this one (for a sub-scenario that must not shift the rest). */
  fork(): Prng {
    return new Prng(this.next64());
  }
}

/**
 * mulberry32: a small, fast seeded generator of floats in [0, 1) for benchmarks' random books
 * (shapes, not money: amounts drawn from it are converted to bigint before use).
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
