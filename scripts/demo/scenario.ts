/**
 * The crash scenario as a pure function of its options: traders (deterministic keys and deposits),
 * opening rounds of fills on both sides of two deep markets at varying prices and leverages, a thin
 * third market whose crash leaves a bankrupt position no opposite position can absorb, the
 * insurance-fund stake, and the crash steps. Same options, same scenario, on every machine.
 */
import { keccak256, AbiCoder } from "ethers";
import { z } from "zod";
import { Prng } from "../../lib/prng";

export const W = 10n ** 18n;
/** One token unit of the 6-decimal collateral. */
export const USDC = 10n ** 6n;
/** Feed answers have 8 decimals: every price is a multiple of 1e10. */
const FEED_SCALE = 10n ** 10n;

/** The options a run is built from (validated once, at start). */
export const demoOptionsSchema = z.object({
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  traders: z.number().int().min(4).max(2000),
  /** Total drop of the index from its pre-crash level, in percent. */
  crashDepth: z.number().int().min(1).max(90),
  /** Insurance-fund stake in whole dollars. */
  fundStake: z.number().int().min(0).max(1_000_000_000),
  /** Opening rounds of trading before the crash (each at a new price). */
  rounds: z.number().int().min(1).max(10),
  /** Who acts after each price step: the project's keeper, or the same steps done directly with lib/adl.ts. */
  driver: z.enum(["keeper", "direct"]),
});
export type DemoOptions = z.infer<typeof demoOptionsSchema>;

export const DEFAULT_OPTIONS: DemoOptions = {
  seed: 1,
  traders: 200,
  crashDepth: 40,
  fundStake: 5_000,
  rounds: 3,
  driver: "keeper",
};

/** Validates and fills in defaults; throws a readable error on bad input. */
export function parseOptions(input: Partial<Record<keyof DemoOptions, unknown>>): DemoOptions {
  const merged = Object.fromEntries(
    Object.entries({ ...DEFAULT_OPTIONS, ...input }).map(([k, v]) => [
      k,
      v === undefined ? (DEFAULT_OPTIONS as Record<string, unknown>)[k] : v,
    ]),
  );
  const r = demoOptionsSchema.safeParse(merged);
  if (!r.success)
    throw new Error(`bad demo options: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

export interface MarketSpec {
  symbol: string;
  listingPrice: bigint;
  /** How hard this market crashes relative to the scenario's steps, in ppm (1e6 = the same). */
  crashFactorPpm: bigint;
}

export interface TraderSpec {
  index: number;
  label: string;
  privateKey: string;
  /** Collateral deposited for the trader before trading, token units. */
  depositTokens: bigint;
}

/** One matched fill at the index: `long` buys `size` from `short`. */
export interface FillSpec {
  market: number;
  long: number;
  short: number;
  size: bigint;
  longLeverage: bigint;
  shortLeverage: bigint;
}

export interface RoundSpec {
  /** Index price of each market during the round (fills happen at it, so F stays 0). */
  prices: bigint[];
  fills: FillSpec[];
}

export interface CrashStepSpec {
  index: number;
  /** Cumulative drop of each market from its pre-crash price, ppm. */
  dropPpm: bigint[];
  prices: bigint[];
  /** Late entrants' fills at the step's prices, before the keeper acts. */
  lateFills: FillSpec[];
}

export interface Scenario {
  options: DemoOptions;
  markets: MarketSpec[];
  traders: TraderSpec[];
  rounds: RoundSpec[];
  crash: CrashStepSpec[];
  fundStakeTokens: bigint;
}

const MARKETS: MarketSpec[] = [
  { symbol: "ETH-USD", listingPrice: 2000n * W, crashFactorPpm: 1_000_000n },
  { symbol: "BTC-USD", listingPrice: 60000n * W, crashFactorPpm: 0n },
];

/**
 * The thin market: a handful of traders, and it falls 1.4 times as far as ETH-USD. Its opening shorts
 * take their profit right after the gap by buying back from late 10x shorts, so its 6x long whale is
 * left bankrupt facing only late shorts, none of which can absorb its loss per unit: ADL is
 * impossible and the final layer settles it (docs/mechanism.md section 7.6).
 */
export const THIN_MARKET: MarketSpec = { symbol: "SOL-USD", listingPrice: 150n * W, crashFactorPpm: 1_400_000n };

/** The thin market's index in Scenario.markets. */
export const THIN = 2;

/** Rounds a price down to what an 8-decimal feed can carry. */
const feedPrice = (p: bigint): bigint => (p / FEED_SCALE) * FEED_SCALE;
const scalePpm = (p: bigint, ppm: bigint): bigint => feedPrice((p * ppm) / 1_000_000n);

/** A trader's deterministic key: keccak256(abi.encode("adl-demo-trader", seed, index)). */
export function traderKey(seed: number, index: number): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(["string", "uint256", "uint256"], ["adl-demo-trader", seed, index]),
  );
}

/** Leverage in half steps from 1x to `max`x (W-scaled). */
const leverage = (rng: Prng, minHalves: number, maxHalves: number): bigint =>
  (BigInt(rng.int(minHalves, maxHalves)) * W) / 2n;

/**
 * The thin market's fills: `k` pairs (k = 3, fewer for very small runs) at the pre-crash price, in the
 * last opening round: a 6x long whale of 150,000 to 250,000 against a 2x to 3x short, and longs at
 * 1x to 1.5x of 2.5 to 3 times the whale's size each against 2x to 3x shorts; then, at the gap, each
 * opening short buys its size back from a late 10x short. Those late shorts hold a tenth of the price
 * per unit, less than the whale's loss per unit once the market has fallen 1.4 times the gap (about
 * 30% or more), so none is eligible; the other longs' size spreads the socialized charge so that each
 * late short keeps positive equity.
 */
function thinMarket(rng: Prng, n: number, price: bigint): { opening: FillSpec[]; gap: FillSpec[] } {
  const k = Math.min(3, Math.floor(n / 3));
  const who = rng.shuffle([...Array(n).keys()]).slice(0, 3 * k);
  const [longs, shorts, late] = [who.slice(0, k), who.slice(k, 2 * k), who.slice(2 * k)];
  const whale = (rng.between(150_000n, 250_000n) * W * W) / price;
  const opening: FillSpec[] = [];
  const gap: FillSpec[] = [];
  for (let i = 0; i < k; i++) {
    const size = i === 0 ? whale : (whale * rng.between(250n, 300n)) / 100n;
    const longLeverage = i === 0 ? 6n * W : leverage(rng, 2, 3);
    const shortLeverage = leverage(rng, 4, 6);
    opening.push({ market: THIN, long: longs[i], short: shorts[i], size, longLeverage, shortLeverage });
    gap.push({
      market: THIN,
      long: shorts[i],
      short: late[i],
      size,
      longLeverage: shortLeverage,
      shortLeverage: 10n * W,
    });
  }
  return { opening, gap };
}

/** Builds the whole scenario from validated options. */
export function buildScenario(options: DemoOptions): Scenario {
  const rng = new Prng(BigInt(options.seed) * 1_000_003n + 17n);
  // The thin market draws from a generator of its own: the deep markets' scenario does not depend on it.
  const thinRng = new Prng(BigInt(options.seed) * 1_000_003n + 29n);
  const deep = MARKETS.map((m, i) => (i === 0 ? m : { ...m, crashFactorPpm: rng.between(700_000n, 1_000_000n) }));
  const markets = [...deep, THIN_MARKET];
  const n = options.traders;

  // Each trader leans long, short or stays out of each market, and keeps a habitual leverage there.
  // Shorts lean on lower leverage than longs so most of them stay eligible to absorb a deficit.
  type Lean = { side: "long" | "short" | "out"; leverage: () => bigint };
  const leans: Lean[][] = [...Array(n).keys()].map(() =>
    deep.map((): Lean => {
      const roll = rng.int(0, 99);
      const side = roll < 42 ? "long" : roll < 84 ? "short" : "out";
      const [lo, hi] =
        side === "long" ? (rng.chance(400_000) ? [14, 20] : [2, 12]) : rng.chance(150_000) ? [12, 20] : [2, 10];
      const fork = rng.fork();
      return { side, leverage: () => leverage(fork, lo, hi) };
    }),
  );

  // Opening rounds: the index walks a few percent between rounds, so entries differ.
  const rounds: RoundSpec[] = [];
  let prices = markets.map((m) => m.listingPrice);
  for (let r = 0; r < options.rounds; r++) {
    if (r > 0) {
      prices = [
        ...prices.slice(0, THIN).map((p) => scalePpm(p, rng.between(965_000n, 1_060_000n))),
        scalePpm(prices[THIN], thinRng.between(965_000n, 1_060_000n)),
      ];
    }
    const fills: FillSpec[] = [];
    deep.forEach((_, mi) => {
      const active = (side: "long" | "short") =>
        rng.shuffle([...Array(n).keys()].filter((t) => leans[t][mi].side === side && rng.chance(750_000)));
      const longs = active("long");
      const shorts = active("short");
      const pairs = Math.min(longs.length, shorts.length);
      for (let k = 0; k < pairs; k++) {
        const notional = rng.between(1_000n, 25_000n) * W;
        fills.push({
          market: mi,
          long: longs[k],
          short: shorts[k],
          size: (notional * W) / prices[mi],
          longLeverage: leans[longs[k]][mi].leverage(),
          shortLeverage: leans[shorts[k]][mi].leverage(),
        });
      }
    });
    rounds.push({ prices, fills });
  }
  const thin = thinMarket(thinRng, n, prices[THIN]);
  rounds[rounds.length - 1].fills.push(...thin.opening);

  // The crash: a first step of 3% to 8% (ordinary liquidations, whose fees feed the fund), then a gap
  // of 18% to 24% of the pre-crash price (as over a weekend) when the depth allows, then steps of 3%
  // to 13% until the depth is reached. Right after the gap, before the
  // keeper acts, a few late entrants open fresh 10x shorts against 2x longs at the new price: with
  // little profit yet and margin of 10% per unit, they are too thin to absorb the large loss per unit
  // the gap leaves (ineligible), which the ADL queue must skip. In the thin market every opening short
  // buys back from such a late short at the same moment, so no short there is eligible at all.
  const crash: CrashStepSpec[] = [];
  const depthPpm = BigInt(options.crashDepth) * 10_000n;
  let dropped = 0n;
  while (dropped < depthPpm) {
    const gap = crash.length === 1 && depthPpm - dropped >= 180_000n;
    const step = gap
      ? rng.between(180_000n, 240_000n)
      : crash.length === 0
        ? rng.between(30_000n, 80_000n)
        : rng.between(30_000n, 130_000n);
    dropped = dropped + step > depthPpm ? depthPpm : dropped + step;
    // The thin market falls faster; no market falls below 5% of its pre-crash price.
    const dropPpm = markets.map((m) => {
      const drop = (dropped * m.crashFactorPpm) / 1_000_000n;
      return drop > 950_000n ? 950_000n : drop;
    });
    const stepPrices = prices.map((p, mi) => scalePpm(p, 1_000_000n - dropPpm[mi]));
    const fills: FillSpec[] = [];
    if (gap) {
      deep.forEach((_, mi) => {
        const fresh = rng.shuffle([...Array(n).keys()].filter((t) => leans[t][mi].side === "out"));
        const pairs = Math.min(Math.max(1, Math.floor(n / 40)), Math.floor(fresh.length / 2));
        for (let k = 0; k < pairs; k++) {
          const notional = rng.between(2_000n, 10_000n) * W;
          fills.push({
            market: mi,
            long: fresh[2 * k],
            short: fresh[2 * k + 1],
            size: (notional * W) / stepPrices[mi],
            longLeverage: 2n * W,
            shortLeverage: 10n * W,
          });
        }
      });
      fills.push(...thin.gap);
    }
    crash.push({ index: crash.length + 1, dropPpm, prices: stepPrices, lateFills: fills });
  }

  // Deposits: each trader's margins at its chosen leverage, plus room for fees and a random cushion.
  const need = new Array<bigint>(n).fill(0n);
  const fillsAt = [
    ...rounds.map((r) => ({ prices: r.prices, fills: r.fills })),
    ...crash.map((c) => ({ prices: c.prices, fills: c.lateFills })),
  ];
  for (const { prices: at, fills } of fillsAt) {
    for (const f of fills) {
      const notional = (f.size * at[f.market]) / W;
      // The margin test counts losses from earlier rounds' price moves: keep 10% of notional spare.
      need[f.long] += (notional * W) / f.longLeverage + notional / 10n;
      need[f.short] += (notional * W) / f.shortLeverage + notional / 10n;
    }
  }
  const traders: TraderSpec[] = need.map((w, i) => ({
    index: i,
    label: `T${String(i + 1).padStart(3, "0")}`,
    privateKey: traderKey(options.seed, i),
    depositTokens: w / 10n ** 12n + rng.between(500n, 5_000n) * USDC,
  }));

  return { options, markets, traders, rounds, crash, fundStakeTokens: BigInt(options.fundStake) * USDC };
}
