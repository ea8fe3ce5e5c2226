/** Adds the core contracts, their wiring and the markets to a module, around a given collateral. */
import type {
  AccountRuntimeValue,
  ArgumentType,
  CallableContractFuture,
  ContractFuture,
  Future,
  IgnitionModuleBuilder,
  ModuleParameterRuntimeValue,
  SolidityParameterType,
} from "@nomicfoundation/ignition-core";
import { encodeBytes32String } from "ethers";
import { defaultMarketParams, type MarketParams } from "../../lib/market-params";
import { MARKETS, type MarketDefinition } from "../markets";

/** Future ids shared by every module, so lib/deployment.ts finds the same names in any deployment. */
export const FUTURE_IDS = {
  collateral: "Collateral",
  oracle: "OracleAdapter",
  clearinghouse: "Clearinghouse",
  orderLib: "OrderLib",
  marketParamsLib: "MarketParamsLib",
  liquidations: "Liquidations",
  lens: "ClearinghouseLens",
  insuranceFund: "InsuranceFund",
  deleverager: "AutoDeleverager",
  adlProofLib: "AdlProofLib",
  adlSessionLib: "AdlSessionLib",
  feed: (key: string) => `Feed_${key}`,
} as const;

/**
 * The libraries linked into the Clearinghouse, keyed by contract name (the form `libraries` takes).
 * lib/local.ts deployClearinghouse links a stand-alone clearinghouse to these same futures.
 */
export function addClearinghouseLibraries(m: IgnitionModuleBuilder) {
  return {
    OrderLib: m.library("OrderLib", { id: FUTURE_IDS.orderLib }),
    MarketParamsLib: m.library("MarketParamsLib", { id: FUTURE_IDS.marketParamsLib }),
    Liquidations: m.library("Liquidations", { id: FUTURE_IDS.liquidations }),
  };
}

/**
 * The core contracts around `collateral`, their linked libraries, and every role and wiring call.
 * Every deployment (System, LocalSystem, lib/local.ts for tests, the demo and the benchmarks)
 * goes through here. `admin` holds every admin role; default the module's first account.
 */
export function addCore(
  m: IgnitionModuleBuilder,
  collateral: ArgumentType,
  admin: AccountRuntimeValue = m.getAccount(0),
) {
  const oracle = m.contract("OracleAdapter", [admin], { id: FUTURE_IDS.oracle });
  const clearinghouse = m.contract("Clearinghouse", [collateral, oracle, admin], {
    id: FUTURE_IDS.clearinghouse,
    libraries: addClearinghouseLibraries(m),
  });
  const lens = m.contract("ClearinghouseLens", [clearinghouse], { id: FUTURE_IDS.lens });
  // The deleverager's linked libraries: the proof verifier, and the session library that calls it.
  const adlProofLib = m.library("AdlProofLib", { id: FUTURE_IDS.adlProofLib });
  const adlSessionLib = m.library("AdlSessionLib", {
    id: FUTURE_IDS.adlSessionLib,
    libraries: { AdlProofLib: adlProofLib },
  });
  const deleverager = m.contract("AutoDeleverager", [clearinghouse, lens, admin], {
    id: FUTURE_IDS.deleverager,
    libraries: { AdlProofLib: adlProofLib, AdlSessionLib: adlSessionLib },
  });
  // The fund's drawers are fixed in its constructor: the clearinghouse (bad-debt cover) and the
  // deleverager (ADL session reserves). Nobody can add or replace one later, so both exist first.
  const insuranceFund = m.contract("InsuranceFund", [collateral, admin, clearinghouse, deleverager], {
    id: FUTURE_IDS.insuranceFund,
  });
  // Before any trade, so that every position is indexed.
  const setIndex = m.call(clearinghouse, "setRankIndex", [deleverager]);

  const setFund = m.call(clearinghouse, "setInsuranceFund", [insuranceFund]);
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
  return { oracle, clearinghouse, lens, insuranceFund, deleverager, adlProofLib, adlSessionLib, wired };
}

/** Default feed settings (overridable per market): a day's heartbeat, an hour for liquidation and ADL. */
const DEFAULT_HEARTBEAT_S = 86_400;
const DEFAULT_STRICT_MAX_AGE_S = 3_600;
const DEFAULT_MIN_PRICE = 10n ** 18n;
const DEFAULT_MAX_PRICE = 10n ** 30n;
/** One token unit per market seeds the rounding reserve. */
const DEFAULT_RESERVE_SEED = 1n;
/**
 * ADL session terms (18-decimal quote): the bond an opener posts (100 quote units, lost to whoever
 * challenges a false session) and the pay per member a continue verifies for the first time
 * (0.05 quote units: a twentieth of the default keeperPay of one settling action).
 */
const DEFAULT_SESSION_BOND = 100n * 10n ** 18n;
const DEFAULT_SESSION_MEMBER_PAY = 5n * 10n ** 16n;
const DEFAULT_SEQUENCER_GRACE_S = 3_600;

/** A market to list: its symbol (the id is its bytes32) and the prefix of its parameters and future ids. */
export type MarketListing = Pick<MarketDefinition, "symbol" | "key">;

/** Defaults of a market's module parameters that only a deployment with mocks knows. */
export interface LocalMarketDefaults {
  /** From the mock feed's first answer. */
  bandReference: number;
  params?: MarketParams;
  minPrice?: bigint;
}

/** What only a local deployment with mocks provides. */
export interface LocalOptions {
  /** Gives the deployer a market's rounding-reserve seed (the mock collateral mints it). */
  fundSeed: (market: MarketListing, seed: ModuleParameterRuntimeValue<bigint>) => Future;
  /** Parameter defaults per market key. */
  defaults: ReadonlyMap<string, LocalMarketDefaults>;
}

export interface SystemOptions {
  /** Holder of every admin role and of the rounding-reserve seeds; default the first account. */
  admin?: AccountRuntimeValue;
  /** The markets to list; default those of deploy/markets.ts. */
  markets?: readonly MarketListing[];
  local?: LocalOptions;
}

/**
 * The whole system around `collateral` (a token contract future) with one price feed future per
 * market: the core and its roles, the sequencer-uptime feed (zero address: no check), and for each
 * market (deploy/markets.ts unless given) its feed configuration, listing, band reference and
 * session terms in the deleverager, and rounding-reserve seed. Market settings are module parameters prefixed with the
 * market's key.
 */
export function addSystem(
  m: IgnitionModuleBuilder,
  collateral: CallableContractFuture<string>,
  feeds: ReadonlyMap<string, ContractFuture<string>>,
  options: SystemOptions = {},
) {
  const core = addCore(m, collateral, options.admin);
  const { oracle, wired } = core;
  const sequencerFeed = m.getParameter<string>("sequencerUptimeFeed", "0x0000000000000000000000000000000000000000");
  const sequencerGrace = m.getParameter<number>("sequencerGracePeriod", DEFAULT_SEQUENCER_GRACE_S);
  m.call(oracle, "setSequencerFeed", [sequencerFeed, sequencerGrace], { after: wired });

  // Approvals overwrite each other, so each market's seed is approved and pulled before the next.
  let previousSeed: Future | undefined;
  for (const market of options.markets ?? MARKETS) {
    const feed = feeds.get(market.key);
    if (feed === undefined) throw new Error(`no feed future for ${market.symbol}`);
    previousSeed = addMarket(m, core, collateral, feed, market, previousSeed, options.local);
  }
  return core;
}

function addMarket(
  m: IgnitionModuleBuilder,
  core: ReturnType<typeof addCore>,
  collateral: CallableContractFuture<string>,
  feed: ContractFuture<string>,
  market: MarketListing,
  previousSeed: Future | undefined,
  local: LocalOptions | undefined,
): Future {
  const { oracle, clearinghouse, deleverager, wired } = core;
  const k = market.key;
  const id = encodeBytes32String(market.symbol);
  const defaults = local?.defaults.get(k);
  const setFeed = m.call(
    oracle,
    "setFeed",
    [
      id,
      {
        aggregator: feed,
        heartbeat: m.getParameter<number>(`${k}_heartbeat`, DEFAULT_HEARTBEAT_S),
        strictMaxAge: m.getParameter<number>(`${k}_strictMaxAge`, DEFAULT_STRICT_MAX_AGE_S),
        minPrice: m.getParameter<bigint>(`${k}_minPrice`, defaults?.minPrice ?? DEFAULT_MIN_PRICE),
        maxPrice: m.getParameter<bigint>(`${k}_maxPrice`, DEFAULT_MAX_PRICE),
      },
    ],
    { id: `setFeed_${k}`, after: wired },
  );
  // Required on real networks (it depends on the price at listing); local mocks know their price.
  const bandReference = m.getParameter<number>(`${k}_bandReference`, defaults?.bandReference);
  m.call(deleverager, "configureMarket", [id, bandReference], {
    id: `configure_${k}`,
  });
  m.call(
    deleverager,
    "setSessionTerms",
    [
      id,
      m.getParameter<bigint>(`${k}_sessionBond`, DEFAULT_SESSION_BOND),
      m.getParameter<bigint>(`${k}_sessionMemberPay`, DEFAULT_SESSION_MEMBER_PAY),
    ],
    { id: `sessionTerms_${k}` },
  );
  const params = m.getParameter<SolidityParameterType>(
    `${k}_params`,
    (defaults?.params ?? defaultMarketParams()) as unknown as SolidityParameterType,
  );
  const list = m.call(clearinghouse, "listMarket", [id, params], { id: `list_${k}`, after: [setFeed, ...wired] });
  const seed = m.getParameter<bigint>(`${k}_roundingReserveSeed`, DEFAULT_RESERVE_SEED);
  const after: Future[] = [list];
  if (previousSeed !== undefined) after.push(previousSeed);
  if (local !== undefined) after.push(local.fundSeed(market, seed));
  const approve = m.call(collateral, "approve", [clearinghouse, seed], { id: `approveSeed_${k}`, after });
  return m.call(clearinghouse, "fundRoundingReserve", [id, seed], { id: `seed_${k}`, after: [approve] });
}
