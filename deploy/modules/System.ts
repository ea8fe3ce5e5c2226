/**
 * The whole system on any chain, around an existing collateral token and existing Chainlink feeds:
 * oracle adapter (with the L2 sequencer-uptime feed where there is one), clearinghouse, lens,
 * insurance fund and deleverager with every role wired, and the markets of deploy/markets.ts
 * listed, configured in the deleverager and their rounding reserves seeded. No mock is deployed.
 *
 * Parameters (deploy/parameters/<network>.json, module "System"; docs/deploy.md lists them all):
 *   collateral                 address of the collateral ERC-20 (the deployer must hold the seeds)
 *   sequencerUptimeFeed        Chainlink L2 sequencer-uptime feed, or the zero address on L1
 *   sequencerGracePeriod       seconds after the sequencer comes back during which prices are refused
 *   <KEY>_feed                 the market's Chainlink aggregator proxy (KEY e.g. ETH_USD)
 *   <KEY>_heartbeat, <KEY>_strictMaxAge, <KEY>_minPrice, <KEY>_maxPrice, <KEY>_bandReference,
 *   <KEY>_roundingReserveSeed, <KEY>_params, <KEY>_sessionBond, <KEY>_sessionMemberPay
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ContractFuture } from "@nomicfoundation/ignition-core";
import { MARKETS } from "../markets";
import { FUTURE_IDS, addSystem } from "./core-futures";

export default buildModule("System", (m) => {
  const collateral = m.contractAt("IERC20Metadata", m.getParameter<string>("collateral"), {
    id: FUTURE_IDS.collateral,
  });
  const feeds = new Map<string, ContractFuture<string>>();
  for (const { key } of MARKETS) {
    feeds.set(
      key,
      m.contractAt("AggregatorV3Interface", m.getParameter<string>(`${key}_feed`), { id: FUTURE_IDS.feed(key) }),
    );
  }
  const { oracle, clearinghouse, lens, insuranceFund, deleverager, adlProofLib, adlSessionLib } = addSystem(
    m,
    collateral,
    feeds,
  );
  return { collateral, oracle, clearinghouse, lens, insuranceFund, deleverager, adlProofLib, adlSessionLib };
});
