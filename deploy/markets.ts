/**
 * The markets every deployment lists, shared by the Ignition modules, the deploy task's preflight
 * and the post-deploy check. Each market's settings come from the network's parameter file under
 * keys prefixed with `key` (e.g. `ETH_USD_feed`); see docs/deploy.md.
 */
export interface MarketDefinition {
  /** Human symbol; the market id is its bytes32 (lib/local.ts marketId). */
  symbol: string;
  /** Prefix of the market's keys in the parameter files and of its Ignition future ids. */
  key: string;
  /** What the Chainlink feed's `description()` must say (checked before deploying and after). */
  feedDescription: string;
}

export const MARKETS: readonly MarketDefinition[] = [
  { symbol: "ETH-USD", key: "ETH_USD", feedDescription: "ETH / USD" },
  { symbol: "BTC-USD", key: "BTC_USD", feedDescription: "BTC / USD" },
];

/** Networks on which the deploy task uses the mock module (LocalSystem) instead of System. */
export const LOCAL_NETWORKS: readonly string[] = ["hardhat", "localhost"];
