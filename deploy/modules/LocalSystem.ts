/**
 * The core system on a local network with mocks: a 6-decimal mock collateral, a mock
 * Chainlink feed per market, markets listed with the default parameters. Mocks are only ever
 * deployed by this module, never by Core.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { encodeBytes32String } from "ethers";
import { bandReference, defaultMarketParams } from "../../lib/local";
import { addCore } from "./core-futures";

const MARKETS = [
  { symbol: "ETH-USD", answer: 2000n * 10n ** 8n },
  { symbol: "BTC-USD", answer: 60000n * 10n ** 8n },
];

export default buildModule("LocalSystem", (m) => {
  const collateral = m.contract("MockERC20", ["Mock USD", "mUSD", 6]);
  const { oracle, clearinghouse, lens, insuranceFund, deleverager, wired } = addCore(m, collateral);
  for (const { symbol, answer } of MARKETS) {
    const id = encodeBytes32String(symbol);
    const feed = m.contract("MockAggregator", [8, answer], { id: `feed_${symbol.replace("-", "_")}` });
    const setFeed = m.call(
      oracle,
      "setFeed",
      [id, { aggregator: feed, heartbeat: 86400, strictMaxAge: 3600, minPrice: 1n, maxPrice: 10n ** 30n }],
      { id: `setFeed_${symbol.replace("-", "_")}`, after: wired },
    );
    m.call(deleverager, "configureMarket", [id, bandReference(answer * 10n ** 10n)], {
      id: `configure_${symbol.replace("-", "_")}`,
    });
    m.call(clearinghouse, "listMarket", [id, defaultMarketParams()], {
      id: `list_${symbol.replace("-", "_")}`,
      after: [setFeed, ...wired],
    });
  }
  return { collateral, oracle, clearinghouse, lens, insuranceFund, deleverager };
});
