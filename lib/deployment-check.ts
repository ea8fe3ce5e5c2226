/**
 * The post-deploy check: reads a deployed system from the chain, describes its configuration
 * (addresses, roles, markets and their parameters, oracle feeds and staleness windows, fund wiring
 * and the fund's two fixed drawers, rank-index wiring, band references) and lists every mis-wiring
 * it finds. `problems` make the deployment unusable or unsafe (the `check-deployment` task exits
 * non-zero); `warnings` deserve a look but do not block (a paused market, an empty rounding
 * reserve, a testnet without a sequencer-uptime feed).
 */
import { getAddress, type ContractRunner, type Provider } from "ethers";
import {
  AggregatorV3Interface__factory,
  AutoDeleverager__factory,
  Clearinghouse__factory,
  ClearinghouseLens__factory,
  IERC20Metadata__factory,
  InsuranceFund__factory,
  OracleAdapter__factory,
  type AutoDeleverager,
  type Clearinghouse,
  type InsuranceFund,
  type OracleAdapter,
} from "../typechain-types";
import { MARKETS } from "../deploy/markets";
import { bandReference, marketId } from "./local";
import type { AdlLibraries, ClearinghouseLibraries } from "./deployment";

/** The addresses the check needs (lib/deployment.ts Deployment has them all). */
export interface SystemAddresses {
  collateral: string;
  oracle: string;
  clearinghouse: string;
  lens: string;
  insuranceFund: string;
  deleverager: string;
  /** Expected aggregator per market key (e.g. ETH_USD), when the deployment recorded them. */
  feeds?: Record<string, string>;
  /** The clearinghouse's linked libraries, when the deployment recorded them. */
  clearinghouseLibraries?: ClearinghouseLibraries;
  /** The deleverager's linked libraries, when the deployment recorded them. */
  adlLibraries?: AdlLibraries;
}

export interface CheckOptions {
  /** First block of event scans (role holders, listed markets); the deployment's start block. */
  fromBlock?: number;
  /** Largest block range per log query (public RPCs cap it). */
  logPageSize?: number;
}

export interface CheckReport {
  chainId: bigint;
  /** The configuration, one human-readable line each. */
  lines: string[];
  problems: string[];
  warnings: string[];
}

/** Chains whose sequencer can go down (Arbitrum, Base, Optimism): mainnets, then their testnets. */
const L2_MAINNETS = new Set([42161n, 8453n, 10n]);
const L2_TESTNETS = new Set([421614n, 84532n, 11155420n]);
const LOCAL_CHAINS = new Set([31337n]);

type Role = { name: string; id: string };

/** Runs every check; never throws for a mis-wiring (only for an unreachable RPC). */
export async function checkDeployment(
  runner: ContractRunner & { provider: Provider | null },
  addresses: SystemAddresses,
  options: CheckOptions = {},
): Promise<CheckReport> {
  const provider = runner.provider;
  if (provider === null) throw new Error("checkDeployment needs a runner with a provider");
  const { chainId } = await provider.getNetwork();
  const report: CheckReport = { chainId, lines: [], problems: [], warnings: [] };
  const line = (s: string) => report.lines.push(s);
  const problem = (s: string) => report.problems.push(s);
  const warn = (s: string) => report.warnings.push(s);
  const same = (a: string, b: string) => getAddress(a) === getAddress(b);

  line(`chain ${chainId}`);
  const names = ["collateral", "oracle", "clearinghouse", "lens", "insuranceFund", "deleverager"] as const;
  for (const name of names) {
    const address = addresses[name];
    const code = await provider.getCode(address);
    line(`${name.padEnd(14)} ${address}${code === "0x" ? "  (NO CODE)" : ""}`);
    if (code === "0x") problem(`${name} ${address} has no code on chain ${chainId}`);
  }
  if (report.problems.length > 0) return report;
  await checkLinkedLibraries(provider, addresses, line, problem);

  const ch = Clearinghouse__factory.connect(addresses.clearinghouse, runner);
  const oracle = OracleAdapter__factory.connect(addresses.oracle, runner);
  const fund = InsuranceFund__factory.connect(addresses.insuranceFund, runner);
  const adl = AutoDeleverager__factory.connect(addresses.deleverager, runner);
  const lens = ClearinghouseLens__factory.connect(addresses.lens, runner);
  const token = IERC20Metadata__factory.connect(addresses.collateral, runner);

  // ---------------------------------------------------------------- references between contracts
  const refs: [string, string, string][] = [
    ["Clearinghouse.collateral", await ch.collateral(), addresses.collateral],
    ["Clearinghouse.oracle", await ch.oracle(), addresses.oracle],
    ["Clearinghouse.insuranceFund (fund wiring)", await ch.insuranceFund(), addresses.insuranceFund],
    ["Clearinghouse.rankIndex (rank index wiring)", await ch.rankIndex(), addresses.deleverager],
    ["InsuranceFund.asset", await fund.asset(), addresses.collateral],
    ["InsuranceFund.feeSource", await fund.feeSource(), addresses.clearinghouse],
    // The fund's only drawers, fixed in its constructor: a wrong one can never be corrected.
    ["InsuranceFund.clearinghouse (drawer)", await fund.clearinghouse(), addresses.clearinghouse],
    ["InsuranceFund.deleverager (drawer)", await fund.deleverager(), addresses.deleverager],
    ["AutoDeleverager.clearinghouse", await adl.clearinghouse(), addresses.clearinghouse],
    ["AutoDeleverager.lens", await adl.lens(), addresses.lens],
    ["ClearinghouseLens.clearinghouse", await lens.clearinghouse(), addresses.clearinghouse],
  ];
  for (const [what, actual, expected] of refs) {
    const ok = same(actual, expected);
    line(`${what} = ${actual}${ok ? "" : `  (expected ${expected})`}`);
    if (!ok) problem(`${what} is ${actual}, expected ${expected}`);
  }
  line(`collateral ${await token.symbol()} (${await token.decimals()} decimals), scale ${await ch.collateralScale()}`);

  // ---------------------------------------------------------------- roles
  const fromBlock = options.fromBlock ?? 0;
  const page = options.logPageSize ?? 50_000;
  const latest = await provider.getBlockNumber();
  const holders = async (contract: Clearinghouse | OracleAdapter | InsuranceFund | AutoDeleverager, role: Role) => {
    const accounts = new Set<string>();
    for (let from = fromBlock; from <= latest; from += page) {
      const to = Math.min(latest, from + page - 1);
      for (const e of await contract.queryFilter(contract.filters.RoleGranted(role.id), from, to)) {
        accounts.add(getAddress(e.args.account));
      }
    }
    const current: string[] = [];
    for (const a of accounts) if (await contract.hasRole(role.id, a)) current.push(a);
    return current;
  };
  const roleOf = async (c: { getFunction(name: string): { staticCall(): Promise<string> } }, name: string) => ({
    name,
    id: name === "DEFAULT_ADMIN_ROLE" ? "0x" + "00".repeat(32) : await c.getFunction(name).staticCall(),
  });
  const roleTable: [string, Clearinghouse | OracleAdapter | InsuranceFund | AutoDeleverager, string[]][] = [
    ["Clearinghouse", ch, ["DEFAULT_ADMIN_ROLE", "MARKET_ADMIN_ROLE", "PAUSER_ROLE", "TREASURER_ROLE"]],
    ["OracleAdapter", oracle, ["DEFAULT_ADMIN_ROLE", "ORACLE_ADMIN_ROLE"]],
    // The fund's admin role is its only role (its drawers are not roles: see the references above).
    ["InsuranceFund", fund, ["DEFAULT_ADMIN_ROLE"]],
    ["AutoDeleverager", adl, ["DEFAULT_ADMIN_ROLE", "ADL_ADMIN_ROLE"]],
  ];
  // Without a holder, nobody can list or tune markets, set feeds, or grant roles again.
  const required = new Set(["DEFAULT_ADMIN_ROLE", "MARKET_ADMIN_ROLE", "ORACLE_ADMIN_ROLE", "ADL_ADMIN_ROLE"]);
  for (const [contractName, contract, names] of roleTable) {
    for (const name of names) {
      const role = await roleOf(contract, name);
      const current = await holders(contract, role);
      line(`${contractName}.${name}: ${current.length === 0 ? "(nobody)" : current.join(", ")}`);
      if (current.length === 0 && required.has(name)) problem(`${contractName}.${name} has no holder`);
      if (current.length === 0 && !required.has(name)) warn(`${contractName}.${name} has no holder`);
    }
  }

  // ---------------------------------------------------------------- fund
  const scale = await ch.collateralScale();
  line(
    `InsuranceFund: balance ${await fund.balance()}, available ${await fund.available()}, ` +
      `reserved ${await fund.totalReserved()} (token units), ` +
      `cooldown ${await fund.cooldown()} s; clearinghouse pending fund fees ${await ch.pendingFundFees()}, ` +
      `treasury ${await ch.treasuryBalance()} (18 decimals, scale ${scale})`,
  );

  // ---------------------------------------------------------------- oracle, sequencer
  const sequencer = await oracle.sequencerFeed();
  const grace = await oracle.sequencerGracePeriod();
  const noSequencer = BigInt(sequencer) === 0n;
  line(`OracleAdapter sequencer-uptime feed: ${noSequencer ? "none" : `${sequencer}, grace ${grace} s`}`);
  if (noSequencer && L2_MAINNETS.has(chainId)) {
    problem(`chain ${chainId} is an L2 but the oracle adapter has no sequencer-uptime feed`);
  }
  if (noSequencer && L2_TESTNETS.has(chainId)) {
    warn(`chain ${chainId} is an L2 testnet without a sequencer-uptime feed: prices are not refused during outages`);
  }

  // ---------------------------------------------------------------- markets
  const block = await provider.getBlock("latest");
  const now = BigInt(block?.timestamp ?? 0);
  const listed = new Set<string>(MARKETS.map((m) => marketId(m.symbol)));
  for (let from = fromBlock; from <= latest; from += page) {
    const to = Math.min(latest, from + page - 1);
    for (const e of await ch.queryFilter(ch.filters.MarketListed(), from, to)) listed.add(e.args.marketId);
  }
  const configured = new Set<string>();
  for (let from = fromBlock; from <= latest; from += page) {
    const to = Math.min(latest, from + page - 1);
    for (const e of await adl.queryFilter(adl.filters.MarketConfigured(), from, to)) configured.add(e.args.marketId);
  }
  line(
    `AutoDeleverager bounds: list ${await adl.maxListLength()}, proof nodes ${await adl.maxProofNodes()}, ` +
      `opened members ${await adl.maxOpenedMembers()}`,
  );
  for (const id of listed) {
    const def = MARKETS.find((m) => marketId(m.symbol) === id);
    const name = def?.symbol ?? id;
    const [isListed, paused] = await ch.marketStatus(id);
    if (!isListed) {
      problem(`market ${name} is not listed`);
      continue;
    }
    if (paused) warn(`market ${name} is paused`);
    const p = await ch.marketParams(id);
    line(
      `market ${name}: listed${paused ? ", PAUSED" : ""}; imr ${p.imr}, mmr ${p.mmr}, fees ${p.makerFee}/${p.takerFee}, ` +
        `band ${p.priceBand} (taker-only ${p.takerBand}), fund share ${p.fundFeeShare}, max premium ${p.maxPremium}, min notional ${p.minNotional}, ` +
        `funding period ${p.fundingPeriod} s / window ${p.fundingWindow} s, liquidation fee ${p.liquidationFee} ` +
        `(liquidator ${p.liquidatorShare})`,
    );
    const [next, eta] = await ch.pendingMarketParams(id);
    if (eta !== 0n) {
      warn(
        `market ${name}: a parameter change is pending, applicable from ${new Date(Number(eta) * 1000).toISOString()} ` +
          `(imr ${next.imr}, mmr ${next.mmr}, fees ${next.makerFee}/${next.takerFee}, band ${next.priceBand} ` +
          `(taker-only ${next.takerBand}), max premium ${next.maxPremium}, funding period ${next.fundingPeriod} s / ` +
          `window ${next.fundingWindow} s)`,
      );
    }
    const feed = await oracle.feedConfig(id);
    if (BigInt(feed.aggregator) === 0n) {
      problem(`market ${name} has no oracle feed`);
      continue;
    }
    const expectedFeed = def && addresses.feeds?.[def.key];
    if (expectedFeed !== undefined && !same(expectedFeed, feed.aggregator)) {
      problem(`market ${name}: oracle feed is ${feed.aggregator}, the deployment recorded ${expectedFeed}`);
    }
    const aggregator = AggregatorV3Interface__factory.connect(feed.aggregator, runner);
    const description = await aggregator.description().catch(() => "(no description)");
    line(
      `  feed ${feed.aggregator} "${description}", ${feed.decimals} decimals, heartbeat ${feed.heartbeat} s, ` +
        `strict max age ${feed.strictMaxAge} s, bounds [${feed.minPrice}, ${feed.maxPrice}]`,
    );
    if (def && !LOCAL_CHAINS.has(chainId) && description !== def.feedDescription) {
      problem(`market ${name}: feed description is "${description}", expected "${def.feedDescription}"`);
    }
    let price = 0n;
    try {
      const [p18, updatedAt] = await oracle.getPrice(id, false);
      price = p18;
      line(`  index price ${p18} (18 decimals), ${now - updatedAt} s old`);
      try {
        await oracle.getPrice(id, true);
      } catch (err) {
        warn(`market ${name}: the price is too old for liquidation and ADL now (${errorName(oracle, err)})`);
      }
    } catch (err) {
      problem(`market ${name}: the oracle refuses the price (${errorName(oracle, err)})`);
    }
    const kRef = await adl.kRef(id);
    const bandNow = price > 0n ? ` (the current price's band reference is ${bandReference(price)})` : "";
    line(`  band reference ${kRef}${bandNow}; rounding reserve ${await ch.roundingReserve(id)}`);
    if (!configured.has(id)) problem(`market ${name} is not configured in the deleverager (configureMarket)`);
    if ((await ch.roundingReserve(id)) === 0n) warn(`market ${name} has an empty rounding reserve`);
  }
  return report;
}

/** The decoded custom error name of a failed call, or its message. */
function errorName(contract: OracleAdapter, err: unknown): string {
  const data = (err as { data?: string }).data;
  if (typeof data === "string") {
    const parsed = contract.interface.parseError(data);
    if (parsed) return `${parsed.name}(${parsed.args.join(", ")})`;
  }
  return err instanceof Error ? err.message.split("\n")[0] : String(err);
}

/** The report as printable text, problems and warnings last. */
export function formatReport(report: CheckReport): string {
  const out = [...report.lines];
  for (const w of report.warnings) out.push(`WARNING: ${w}`);
  for (const p of report.problems) out.push(`PROBLEM: ${p}`);
  out.push(
    report.problems.length === 0
      ? `deployment OK (${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"})`
      : `deployment MIS-WIRED: ${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}`,
  );
  return out.join("\n");
}

/**
 * The clearinghouse (order matching, market parameters, liquidations) and the deleverager (proofs,
 * sessions) run part of their code in linked libraries: each recorded library must have code, and
 * be the one linked (its address is in the code of the contracts that call it: the clearinghouse's
 * libraries in the clearinghouse, the ADL ones in the deleverager, AdlProofLib also in
 * AdlSessionLib). A library without code would make every call into it revert.
 */
async function checkLinkedLibraries(
  provider: Provider,
  addresses: SystemAddresses,
  line: (s: string) => void,
  problem: (s: string) => void,
): Promise<void> {
  const codeOf = async (address: string) => (await provider.getCode(address)).toLowerCase();
  const links = (code: string, library: string) => code.includes(getAddress(library).slice(2).toLowerCase());
  const linkedInto: [string, string, Record<string, string | undefined>][] = [
    ["Clearinghouse", addresses.clearinghouse, addresses.clearinghouseLibraries ?? {}],
    ["AutoDeleverager", addresses.deleverager, addresses.adlLibraries ?? {}],
  ];
  for (const [contractName, contractAddress, libraries] of linkedInto) {
    const contractCode = await codeOf(contractAddress);
    for (const [name, address] of Object.entries(libraries)) {
      if (address === undefined) continue;
      const code = await provider.getCode(address);
      line(`${name.padEnd(14)} ${address}${code === "0x" ? "  (NO CODE)" : ""}`);
      if (code === "0x") problem(`${name} ${address} has no code`);
      if (!links(contractCode, address)) problem(`${contractName} is not linked to ${name} ${address}`);
    }
  }
  const { AdlProofLib: proofLib, AdlSessionLib: sessionLib } = addresses.adlLibraries ?? {};
  if (proofLib !== undefined && sessionLib !== undefined && !links(await codeOf(sessionLib), proofLib)) {
    problem(`AdlSessionLib ${sessionLib} is not linked to AdlProofLib ${proofLib}`);
  }
}
