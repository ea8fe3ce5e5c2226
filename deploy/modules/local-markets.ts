/**
 * The LocalSystem wiring for any list of markets: a 6-decimal mock collateral, one mock feed
 * (8 decimals) per market at the given price, then addSystem's core, roles and listings with the
 * given market parameters. lib/local.ts deployLocalSystem deploys it for tests, the demo and the
 * benchmarks, which choose their own markets, prices and parameters; deploy/modules/LocalSystem.ts
 * is the same wiring for the markets of deploy/markets.ts.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ContractFuture } from "@nomicfoundation/ignition-core";
import { id as keccakOfText } from "ethers";
import { bandReference, defaultMarketParams, type MarketParams } from "../../lib/market-params";
import { FUTURE_IDS, addSystem, type LocalMarketDefaults, type MarketListing } from "./core-futures";

export interface LocalMarketSpec {
  symbol: string;
  /** Listing price, 18 decimals: the mock feed's first answer and the band reference. */
  price: bigint;
  /** Overrides of defaultMarketParams(). */
  params?: Partial<MarketParams>;
}

export const MOCK_FEED_DECIMALS = 8;
const FEED_SCALE = 10n ** BigInt(18 - MOCK_FEED_DECIMALS);
/** Any positive price passes the oracle's bounds: tests crash prices far below a real floor. */
const MOCK_MIN_PRICE = 1n;

/** A market's parameter and future-id prefix: its symbol with '_' for what ids do not allow. */
export const localMarketKey = (symbol: string): string => symbol.replace(/[^A-Za-z0-9_]/g, "_");

/** The result name of a market's mock feed in the module. */
export const feedResultName = (symbol: string): string => `feed_${localMarketKey(symbol)}`;

/**
 * The module listing `specs`, administered by the account at index `adminAccount` (the same
 * account must send the deployment: it receives and pays the rounding-reserve seeds).
 */
export function localMarketsModule(specs: readonly LocalMarketSpec[], adminAccount = 0) {
  const listings: MarketListing[] = specs.map(({ symbol }) => ({ symbol, key: localMarketKey(symbol) }));
  const keys = new Set(listings.map(({ key }) => key));
  if (keys.size !== listings.length) throw new Error(`market symbols collide as ids: ${specs.map((s) => s.symbol)}`);
  // One module id per market list, so that two lists never share future ids in a journal.
  const fingerprint = JSON.stringify({ specs, adminAccount }, (_, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v,
  );
  return buildModule(`LocalMarkets_${keccakOfText(fingerprint).slice(2, 10)}`, (m) => {
    const admin = m.getAccount(adminAccount);
    const collateral = m.contract("MockERC20", ["Mock USD", "mUSD", 6], { id: FUTURE_IDS.collateral });
    const feeds = new Map<string, ContractFuture<string>>();
    const defaults = new Map<string, LocalMarketDefaults>();
    specs.forEach((spec, i) => {
      const { key } = listings[i];
      const answer = spec.price / FEED_SCALE;
      feeds.set(key, m.contract("MockAggregator", [MOCK_FEED_DECIMALS, answer], { id: FUTURE_IDS.feed(key) }));
      defaults.set(key, {
        bandReference: bandReference(spec.price),
        params: defaultMarketParams(spec.params),
        minPrice: MOCK_MIN_PRICE,
      });
    });
    const core = addSystem(m, collateral, feeds, {
      admin,
      markets: listings,
      local: {
        fundSeed: (market, seed) => m.call(collateral, "mint", [admin, seed], { id: `mintSeed_${market.key}` }),
        defaults,
      },
    });
    const { oracle, clearinghouse, lens, insuranceFund, deleverager, adlProofLib, adlSessionLib } = core;
    return {
      collateral,
      oracle,
      clearinghouse,
      lens,
      insuranceFund,
      deleverager,
      adlProofLib,
      adlSessionLib,
      ...Object.fromEntries(specs.map(({ symbol }, i) => [feedResultName(symbol), feeds.get(listings[i].key)!])),
    };
  });
}
