/**
 * Deploys the whole system with mocks on a local network (tests, the demo). Testnet and
 * production deployments go through the Ignition modules under deploy/.
 */
import { ethers as ethersLib, type Signer } from "ethers";
import {
  AdlProofLib__factory,
  AdlSessionLib__factory,
  AutoDeleverager__factory,
  Clearinghouse__factory,
  ClearinghouseLens__factory,
  InsuranceFund__factory,
  Liquidations__factory,
  MockAggregator__factory,
  MarketParamsLib__factory,
  MockERC20__factory,
  OracleAdapter__factory,
  OrderLib__factory,
  type AutoDeleverager,
  type Clearinghouse,
  type ClearinghouseLens,
  type InsuranceFund,
  type MockAggregator,
  type MockERC20,
  type OracleAdapter,
} from "../typechain-types";
import type { IClearinghouseTypes } from "../typechain-types/contracts/Clearinghouse";
import { WAD } from "./math";

export type MarketParams = IClearinghouseTypes.MarketParamsStruct;

/** The K-band reference of a market listed at `price`: bitlen(price) - 1 (see RankTree.bandOf). */
export function bandReference(price: bigint): number {
  return price.toString(2).length - 1;
}

/** Market ids are the bytes32 of their symbol. */
export const marketId = (symbol: string): string => ethersLib.encodeBytes32String(symbol);

/** Conservative defaults: 10x max leverage, 5% maintenance, 2/5 bps fees, 8h funding period. */
export function defaultMarketParams(overrides: Partial<MarketParams> = {}): MarketParams {
  return {
    imr: WAD / 10n,
    mmr: WAD / 20n,
    makerFee: 2n * 10n ** 14n,
    takerFee: 5n * 10n ** 14n,
    priceBand: WAD / 20n,
    fundFeeShare: WAD / 2n,
    maxPremium: WAD / 100n,
    minNotional: 10n * WAD,
    fundingPeriod: 8n * 3600n,
    fundingWindow: 3600n,
    liquidationFee: WAD / 100n,
    liquidatorShare: WAD / 2n,
    ...overrides,
  };
}

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

export interface LocalMarketSpec {
  symbol: string;
  price: bigint;
  params?: Partial<MarketParams>;
}

const FEED_DECIMALS = 8;
const FEED_SCALE = 10n ** BigInt(18 - FEED_DECIMALS);

/** Deploys the Clearinghouse's linked libraries, then the Clearinghouse linked to them. */
export async function deployClearinghouse(
  deployer: Signer,
  collateral: string,
  oracle: string,
  adminAddress?: string,
): Promise<Clearinghouse> {
  const orderLib = await new OrderLib__factory(deployer).deploy();
  const marketParamsLib = await new MarketParamsLib__factory(deployer).deploy();
  const liquidations = await new Liquidations__factory(deployer).deploy();
  const factory = new Clearinghouse__factory(
    {
      "contracts/libraries/OrderLib.sol:OrderLib": await orderLib.getAddress(),
      "contracts/libraries/MarketParamsLib.sol:MarketParamsLib": await marketParamsLib.getAddress(),
      "contracts/clearinghouse/Liquidations.sol:Liquidations": await liquidations.getAddress(),
    },
    deployer,
  );
  return factory.deploy(collateral, oracle, adminAddress ?? (await deployer.getAddress()));
}

/** The linked libraries of the deleverager, by fully qualified name (as its factory takes them). */
export interface DeleveragerLibraries {
  "contracts/adl/AdlProofLib.sol:AdlProofLib": string;
  "contracts/adl/AdlSessionLib.sol:AdlSessionLib": string;
}

/**
 * Deploys the deleverager's libraries (the proof verifier, then the session library linked to it)
 * and returns their addresses for linking.
 */
export async function deployDeleveragerLibraries(deployer: Signer): Promise<DeleveragerLibraries> {
  const proof = await (await new AdlProofLib__factory(deployer).deploy()).getAddress();
  const sessions = await (
    await new AdlSessionLib__factory({ "contracts/adl/AdlProofLib.sol:AdlProofLib": proof }, deployer).deploy()
  ).getAddress();
  return {
    "contracts/adl/AdlProofLib.sol:AdlProofLib": proof,
    "contracts/adl/AdlSessionLib.sol:AdlSessionLib": sessions,
  };
}

/** Deploys the deleverager of `clearinghouse` with freshly deployed libraries linked. */
export async function deployDeleverager(
  deployer: Signer,
  clearinghouse: string,
  lens: string,
  adminAddress: string,
): Promise<AutoDeleverager> {
  const libraries = await deployDeleveragerLibraries(deployer);
  return new AutoDeleverager__factory(libraries, deployer).deploy(clearinghouse, lens, adminAddress);
}

/**
 * Deploys a 6-decimal collateral, the oracle adapter with mock feeds, the clearinghouse and the
 * insurance fund, wires roles, lists the markets and seeds their rounding reserves.
 */
export async function deployLocalSystem(admin: Signer, specs: LocalMarketSpec[]): Promise<LocalSystem> {
  const adminAddress = await admin.getAddress();
  const token = await new MockERC20__factory(admin).deploy("Mock USD", "mUSD", 6);
  const oracle = await new OracleAdapter__factory(admin).deploy(adminAddress);
  const clearinghouse = await deployClearinghouse(admin, await token.getAddress(), await oracle.getAddress());
  await (await oracle.grantRole(await oracle.ORACLE_ADMIN_ROLE(), adminAddress)).wait();
  for (const role of [
    await clearinghouse.MARKET_ADMIN_ROLE(),
    await clearinghouse.PAUSER_ROLE(),
    await clearinghouse.TREASURER_ROLE(),
  ]) {
    await (await clearinghouse.grantRole(role, adminAddress)).wait();
  }
  const lens = await new ClearinghouseLens__factory(admin).deploy(await clearinghouse.getAddress());
  const insuranceFund = await new InsuranceFund__factory(admin).deploy(await token.getAddress(), adminAddress);
  const deleveragerLibraries = await deployDeleveragerLibraries(admin);
  const deleverager = await new AutoDeleverager__factory(deleveragerLibraries, admin).deploy(
    await clearinghouse.getAddress(),
    await lens.getAddress(),
    adminAddress,
  );
  // Before the first trade, so that every position is indexed.
  await (await clearinghouse.setRankIndex(await deleverager.getAddress())).wait();
  await (await clearinghouse.setInsuranceFund(await insuranceFund.getAddress())).wait();
  await (await insuranceFund.grantRole(await insuranceFund.COVER_ROLE(), await clearinghouse.getAddress())).wait();
  // ADL sessions set the bankrupt position's share of the fund aside (reserve / release).
  await (await insuranceFund.grantRole(await insuranceFund.COVER_ROLE(), await deleverager.getAddress())).wait();
  await (await insuranceFund.setFeeSource(await clearinghouse.getAddress())).wait();
  // Each market's rounding reserve is seeded at listing with one token unit (1e12 internal wei).
  await (await token.mint(adminAddress, BigInt(specs.length))).wait();
  await (await token.approve(await clearinghouse.getAddress(), BigInt(specs.length))).wait();
  const markets = new Map<string, LocalMarket>();
  for (const spec of specs) {
    const id = marketId(spec.symbol);
    const aggregator = await new MockAggregator__factory(admin).deploy(FEED_DECIMALS, spec.price / FEED_SCALE);
    await (
      await oracle.setFeed(id, {
        aggregator: await aggregator.getAddress(),
        heartbeat: 24 * 3600,
        strictMaxAge: 3600,
        minPrice: 1n,
        maxPrice: 10n ** 30n,
      })
    ).wait();
    await (await clearinghouse.listMarket(id, defaultMarketParams(spec.params))).wait();
    await (await clearinghouse.fundRoundingReserve(id, 1n)).wait();
    await (await deleverager.configureMarket(id, bandReference(spec.price))).wait();
    markets.set(spec.symbol, { id, aggregator, decimals: FEED_DECIMALS });
  }
  const setPrice = async (symbol: string, price: bigint): Promise<void> => {
    const market = markets.get(symbol);
    if (!market) throw new Error(`unknown market ${symbol}`);
    if (price % FEED_SCALE !== 0n) throw new Error(`price ${price} has more precision than the feed's 8 decimals`);
    await (await market.aggregator.setAnswer(price / FEED_SCALE)).wait();
  };
  return {
    admin,
    token,
    oracle,
    clearinghouse,
    lens,
    insuranceFund,
    deleverager,
    deleveragerLibraries,
    markets,
    setPrice,
  };
}
