/** Adds the core contracts and their wiring to a module, around a given collateral. */
import type { ArgumentType, IgnitionModuleBuilder } from "@nomicfoundation/ignition-core";

export function addCore(m: IgnitionModuleBuilder, collateral: ArgumentType) {
  const admin = m.getAccount(0);
  const oracle = m.contract("OracleAdapter", [admin]);
  const clearinghouse = m.contract("Clearinghouse", [collateral, oracle, admin]);
  const lens = m.contract("ClearinghouseLens", [clearinghouse]);
  const insuranceFund = m.contract("InsuranceFund", [collateral, admin]);
  const deleverager = m.contract("AutoDeleverager", [clearinghouse, lens, admin]);
  // Before any trade, so that every position is indexed.
  const setIndex = m.call(clearinghouse, "setRankIndex", [deleverager]);

  const setFund = m.call(clearinghouse, "setInsuranceFund", [insuranceFund]);
  const coverRole = m.staticCall(insuranceFund, "COVER_ROLE", []);
  m.call(insuranceFund, "grantRole", [coverRole, clearinghouse], { id: "grantCover" });
  // The fee source must already pay this fund, or the fund rejects it.
  m.call(insuranceFund, "setFeeSource", [clearinghouse], { after: [setFund] });

  const oracleAdmin = m.staticCall(oracle, "ORACLE_ADMIN_ROLE", []);
  const grantOracleAdmin = m.call(oracle, "grantRole", [oracleAdmin, admin], { id: "grantOracleAdmin" });
  const roleGrants = ["MARKET_ADMIN_ROLE", "PAUSER_ROLE", "TREASURER_ROLE"].map((role) => {
    const id = m.staticCall(clearinghouse, role, [], 0, { id: `read_${role}` });
    return m.call(clearinghouse, "grantRole", [id, admin], { id: `grant_${role}` });
  });
  /** Futures that must run before feeds are set and markets listed. */
  const wired = [grantOracleAdmin, setIndex, ...roleGrants];
  return { oracle, clearinghouse, lens, insuranceFund, deleverager, wired };
}
