/**
 * The whole system on a local network (the in-process Hardhat network or a running
 * `npx hardhat node`): a 6-decimal mock collateral and one mock Chainlink feed per market, then
 * exactly the wiring of the System module (same future ids, same per-market parameters). Mocks are
 * only ever deployed by this module; the deploy task uses it only on local networks.
 *
 * Parameters (deploy/parameters/localhost.json, module "LocalSystem"): those of System except
 * `collateral` and `<KEY>_feed`, plus `<KEY>_mockAnswer`, the feed's first answer (8 decimals).
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ContractFuture } from "@nomicfoundation/ignition-core";
import { bandReference } from "../../lib/market-params";
import { MARKETS } from "../markets";
import { FUTURE_IDS, addSystem } from "./core-futures";

/** First answers of the mock feeds (8 decimals, as Chainlink USD feeds). */
const MOCK_ANSWERS: Readonly<Record<string, bigint>> = {
  ETH_USD: 2000n * 10n ** 8n,
  BTC_USD: 60000n * 10n ** 8n,
};

export default buildModule("LocalSystem", (m) => {
  const admin = m.getAccount(0);
  const collateral = m.contract("MockERC20", ["Mock USD", "mUSD", 6], { id: FUTURE_IDS.collateral });
  const feeds = new Map<string, ContractFuture<string>>();
  for (const { key } of MARKETS) {
    const answer = m.getParameter<bigint>(`${key}_mockAnswer`, MOCK_ANSWERS[key]);
    feeds.set(key, m.contract("MockAggregator", [8, answer], { id: FUTURE_IDS.feed(key) }));
  }
  const { oracle, clearinghouse, lens, insuranceFund, deleverager, adlProofLib, adlSessionLib } = addSystem(
    m,
    collateral,
    feeds,
    {
      local: {
        fundSeed: (market, seed) => m.call(collateral, "mint", [admin, seed], { id: `mintSeed_${market.key}` }),
        defaults: new Map(
          MARKETS.map(({ key }) => [key, { bandReference: bandReference(MOCK_ANSWERS[key] * 10n ** 10n) }]),
        ),
      },
    },
  );
  return { collateral, oracle, clearinghouse, lens, insuranceFund, deleverager, adlProofLib, adlSessionLib };
});
