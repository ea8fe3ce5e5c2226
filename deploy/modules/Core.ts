/**
 * The core system on any chain: oracle adapter, clearinghouse (with its linked signature
 * library) and insurance fund, with roles wired, around an existing collateral token. Feeds and
 * markets are configured per network (LocalSystem does it with mocks).
 *
 * Parameters (per-network files under deploy/parameters/):
 *   Core.collateral  address of the collateral ERC-20
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { addCore } from "./core-futures";

export default buildModule("Core", (m) => {
  const collateral = m.getParameter<string>("collateral");
  const { oracle, clearinghouse, lens, insuranceFund, deleverager } = addCore(m, collateral);
  return { oracle, clearinghouse, lens, insuranceFund, deleverager };
});
