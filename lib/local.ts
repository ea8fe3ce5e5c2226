/**
 * Deploys the whole system with mocks on a local network (tests, the demo, the benchmarks) through
 * the same Ignition wiring as every other deployment (deploy/modules/core-futures.ts addCore), for
 * any list of markets.
 *
 * Hardhat is loaded inside the functions, not at import: hardhat.config.ts and plain Node
 * processes (e2e/) import this file for marketId and bandReference.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { IgnitionModule, IgnitionModuleResult } from "@nomicfoundation/ignition-core";
import type { Signer } from "ethers";
import {
  AutoDeleverager__factory,
  Clearinghouse__factory,
  ClearinghouseLens__factory,
  InsuranceFund__factory,
  MockAggregator__factory,
  MockERC20__factory,
  OracleAdapter__factory,
  type AutoDeleverager,
  type Clearinghouse,
  type ClearinghouseLens,
  type InsuranceFund,
  type MockAggregator,
  type MockERC20,
  type OracleAdapter,
} from "../typechain-types";
import {
  MOCK_FEED_DECIMALS,
  feedResultName,
  localMarketsModule,
  type LocalMarketSpec,
} from "../deploy/modules/local-markets";
import { addClearinghouseLibraries } from "../deploy/modules/core-futures";
import { marketId } from "./market-params";

export { bandReference, defaultMarketParams, marketId, type MarketParams } from "./market-params";
export type { LocalMarketSpec } from "../deploy/modules/local-markets";

export interface LocalMarket {
  id: string;
  aggregator: MockAggregator;
  /** Aggregator decimals (8, as Chainlink USD feeds). */
  decimals: number;
}

export interface LocalSystem {
  admin: Signer;
  token: MockERC20;
  oracle: OracleAdapter;
  clearinghouse: Clearinghouse;
  /** Derived views: currentFunding, marginRatio, maxLiquidationSize. */
  lens: ClearinghouseLens;
  insuranceFund: InsuranceFund;
  /** The rank index and verifiable ADL. */
  deleverager: AutoDeleverager;
  /** The libraries linked into the deleverager (proof verifier, sessions). */
  deleveragerLibraries: DeleveragerLibraries;
  markets: Map<string, LocalMarket>;
  /** Sets a market's mock feed to `price` (18 decimals), updated now. */
  setPrice(symbol: string, price: bigint): Promise<void>;
}

/** The linked libraries of the deleverager, by fully qualified name (as its factory takes them). */
export interface DeleveragerLibraries {
  "contracts/adl/AdlProofLib.sol:AdlProofLib": string;
  "contracts/adl/AdlSessionLib.sol:AdlSessionLib": string;
}

const FEED_SCALE = 10n ** BigInt(18 - MOCK_FEED_DECIMALS);

type Hardhat = typeof import("hardhat");
type IgnitionModuleOf = ReturnType<typeof localMarketsModule>;

/** Contract addresses of a finished deployment, by the module's result names. */
type DeployedAddresses = Record<string, string>;

/**
 * Ignition waits this long between looks for a new block. Local nodes mine every transaction at
 * once, so Ignition's default (one second, meant for real chains) would only add idle time.
 */
const LOCAL_BLOCK_POLLING_MS = 5;

/**
 * Deploys `module` from `sender` without a journal and returns the addresses of its results. On
 * the in-process network hre.ignition.deploy keeps its journal in memory. On a node (e.g. the demo
 * with --network localhost) it would write one under deploy/deployments, next to the node's
 * LocalSystem deployment, and a second run would get the first run's contracts back: there the
 * same deployment runs through ignition-core with no deployment directory.
 */
async function deployWithoutJournal<ContractName extends string>(
  hre: Hardhat,
  module: IgnitionModule<string, string, IgnitionModuleResult<ContractName>>,
  sender: string,
): Promise<DeployedAddresses> {
  const config = { blockPollingInterval: LOCAL_BLOCK_POLLING_MS };
  if (hre.network.name === "hardhat") {
    const contracts = await hre.ignition.deploy(module, { defaultSender: sender, config });
    const out: DeployedAddresses = {};
    for (const [name, contract] of Object.entries(contracts)) out[name] = await contract.getAddress();
    return out;
  }
  const { deploy, DeploymentResultType } = await import("@nomicfoundation/ignition-core");
  const { HardhatArtifactResolver, errorDeploymentResultToExceptionMessage } = await import(
    "@nomicfoundation/hardhat-ignition/helpers"
  );
  const result = await deploy({
    config,
    provider: hre.network.provider,
    artifactResolver: new HardhatArtifactResolver(hre),
    ignitionModule: module,
    deploymentParameters: {},
    accounts: (await hre.network.provider.request({ method: "eth_accounts" })) as string[],
    defaultSender: sender,
  });
  if (result.type !== DeploymentResultType.SUCCESSFUL_DEPLOYMENT) {
    throw new Error(errorDeploymentResultToExceptionMessage(result));
  }
  const out: DeployedAddresses = {};
  for (const [name, future] of Object.entries(module.results)) out[name] = result.contracts[future.id].address;
  return out;
}

/** The index of `signer` among the node's accounts (Ignition names accounts by index). */
async function accountIndex(hre: Hardhat, signer: Signer): Promise<number> {
  const address = (await signer.getAddress()).toLowerCase();
  const accounts = (await hre.network.provider.request({ method: "eth_accounts" })) as string[];
  const index = accounts.findIndex((a) => a.toLowerCase() === address);
  if (index < 0) throw new Error(`${address} is not an account of ${hre.network.name}: Ignition cannot send from it`);
  return index;
}

/** One module per distinct market list and admin: Ignition modules are meant to be built once. */
const localModules = new Map<string, IgnitionModuleOf>();

function cachedLocalMarketsModule(specs: readonly LocalMarketSpec[], adminAccount: number): IgnitionModuleOf {
  const key = JSON.stringify({ specs, adminAccount }, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  let module = localModules.get(key);
  if (module === undefined) {
    module = localMarketsModule(specs, adminAccount);
    localModules.set(key, module);
  }
  return module;
}

/**
 * Deploys a 6-decimal mock collateral, the oracle adapter with one mock feed per market, the
 * clearinghouse, lens, insurance fund and deleverager with every role wired (addCore), lists the
 * markets and seeds their rounding reserves; `admin` sends it all and holds every admin role.
 */
export async function deployLocalSystem(admin: Signer, specs: LocalMarketSpec[]): Promise<LocalSystem> {
  const hre: Hardhat = await import("hardhat");
  const module = cachedLocalMarketsModule(specs, await accountIndex(hre, admin));
  const deployed = await deployWithoutJournal(hre, module, await admin.getAddress());
  const markets = new Map<string, LocalMarket>();
  for (const { symbol } of specs) {
    markets.set(symbol, {
      id: marketId(symbol),
      aggregator: MockAggregator__factory.connect(deployed[feedResultName(symbol)], admin),
      decimals: MOCK_FEED_DECIMALS,
    });
  }
  const setPrice = async (symbol: string, price: bigint): Promise<void> => {
    const market = markets.get(symbol);
    if (!market) throw new Error(`unknown market ${symbol}`);
    if (price % FEED_SCALE !== 0n) throw new Error(`price ${price} has more precision than the feed's 8 decimals`);
    await (await market.aggregator.setAnswer(price / FEED_SCALE)).wait();
  };
  return {
    admin,
    token: MockERC20__factory.connect(deployed.collateral, admin),
    oracle: OracleAdapter__factory.connect(deployed.oracle, admin),
    clearinghouse: Clearinghouse__factory.connect(deployed.clearinghouse, admin),
    lens: ClearinghouseLens__factory.connect(deployed.lens, admin),
    insuranceFund: InsuranceFund__factory.connect(deployed.insuranceFund, admin),
    deleverager: AutoDeleverager__factory.connect(deployed.deleverager, admin),
    deleveragerLibraries: {
      "contracts/adl/AdlProofLib.sol:AdlProofLib": deployed.adlProofLib,
      "contracts/adl/AdlSessionLib.sol:AdlSessionLib": deployed.adlSessionLib,
    },
    markets,
    setPrice,
  };
}

/** The clearinghouse's linked libraries alone, exactly as addCore links them. */
const clearinghouseLibrariesModule = buildModule("ClearinghouseLibraries", (m) => addClearinghouseLibraries(m));

/**
 * Deploys a clearinghouse alone around any collateral and oracle (tests of the constructor and of
 * unusual tokens): its libraries through the same Ignition futures as addCore, the clearinghouse
 * itself directly so that a constructor revert reaches the caller with its custom error.
 */
export async function deployClearinghouse(
  deployer: Signer,
  collateral: string,
  oracle: string,
  adminAddress?: string,
): Promise<Clearinghouse> {
  const hre: Hardhat = await import("hardhat");
  const deployerAddress = await deployer.getAddress();
  const libraries = await deployWithoutJournal(hre, clearinghouseLibrariesModule, deployerAddress);
  const factory = await hre.ethers.getContractFactory("Clearinghouse", { signer: deployer, libraries });
  const clearinghouse = await factory.deploy(collateral, oracle, adminAddress ?? deployerAddress);
  return Clearinghouse__factory.connect(await clearinghouse.getAddress(), deployer);
}
