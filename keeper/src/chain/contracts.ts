/** Typed handles on the contracts the keeper reads and calls, all on one runner. */
import type { ContractRunner } from "ethers";
import {
  AutoDeleverager__factory,
  ClearinghouseLens__factory,
  Clearinghouse__factory,
  InsuranceFund__factory,
  OracleAdapter__factory,
  type AutoDeleverager,
  type Clearinghouse,
  type ClearinghouseLens,
  type InsuranceFund,
  type OracleAdapter,
} from "../../../typechain-types";
import type { KeeperAddresses } from "../types";

export interface KeeperContracts {
  clearinghouse: Clearinghouse;
  deleverager: AutoDeleverager;
  insuranceFund: InsuranceFund;
  lens: ClearinghouseLens;
  oracle: OracleAdapter;
}

/** Connects to the contracts at `addresses`; the oracle's address is read from the clearinghouse. */
export async function connectContracts(addresses: KeeperAddresses, runner: ContractRunner): Promise<KeeperContracts> {
  const clearinghouse = Clearinghouse__factory.connect(addresses.clearinghouse, runner);
  return {
    clearinghouse,
    deleverager: AutoDeleverager__factory.connect(addresses.deleverager, runner),
    insuranceFund: InsuranceFund__factory.connect(addresses.insuranceFund, runner),
    lens: ClearinghouseLens__factory.connect(addresses.lens, runner),
    oracle: OracleAdapter__factory.connect(await clearinghouse.oracle(), runner),
  };
}
