/**
 * Reads the system's state from the chain and checks the invariants of docs/mechanism.md section 5:
 * exact conservation, balanced open interest, c > 0 for every open position, the insurance fund
 * never negative and moving only through its documented paths, and, for every ADL call, the
 * settlement rules (B's closed part at exactly zero, nobody below zero, the list equal to the head
 * of an independent re-ranking at the call's (P, F, delta) by lib/reference-ranking.ts; the code
 * for those is in lib/adl-call-check.ts, re-exported here), and for every socialized loss its
 * amounts, loss-index step, takeover and trigger (lib/social-check.ts, re-exported here). Each check
 * returns pass or fail with details instead of throwing, so a report can print all of them.
 *
 * Reads can be pinned to a block (`blockTag`), so a check after the fact sees the state just
 * before and just after any transaction (one transaction per block, as on an automining node).
 */
import { decodeBytes32String, getAddress } from "ethers";
import { IERC20__factory, type AutoDeleverager, type Clearinghouse, type InsuranceFund } from "../typechain-types";
import type { RefPosition } from "./reference-ranking";

const W = 10n ** 18n;

/** The contracts the checks read. */
export interface InvariantSystem {
  clearinghouse: Clearinghouse;
  insuranceFund: InsuranceFund;
  deleverager: AutoDeleverager;
}

/** One invariant's verdict. */
export interface InvariantResult {
  name: string;
  pass: boolean;
  detail: string;
}

/** A stored position with its leaf. */
export interface LedgerPosition extends RefPosition {
  leaf: number;
}

/** Per-market aggregates the clearinghouse stores. */
export interface LedgerMarket {
  longOpenInterest: bigint;
  shortOpenInterest: bigint;
  sumSizeTimesEntry: bigint;
  cumulativeFunding: bigint;
  roundingReserve: bigint;
  keeperReserve: bigint;
  /** Socialized loss per unit of long and of short size (docs/mechanism.md section 7.6). */
  lossIndexLong: bigint;
  lossIndexShort: bigint;
}

/** Everything the invariants read, at one block. */
export interface Ledger {
  block: number;
  /** 10^(18 - token decimals). */
  scale: bigint;
  /** Collateral tokens held by the clearinghouse and by the insurance fund. */
  clearinghouseTokens: bigint;
  fundTokens: bigint;
  fundAvailableTokens: bigint;
  pendingFundFees: bigint;
  treasuryBalance: bigint;
  markets: Map<string, LedgerMarket>;
  /** Free collateral of every known account (18 decimals). */
  free: Map<string, bigint>;
  /** Open positions per market, by checksummed account. */
  positions: Map<string, Map<string, LedgerPosition>>;
}

/** A market id for people: its bytes32 text when it is one (ids are the bytes32 of the symbol), else hex. */
export function marketName(id: string): string {
  try {
    return decodeBytes32String(id);
  } catch {
    return id;
  }
}

/** ethers' per-call overrides for a read at `block`. */
export const at = (block: number) => ({ blockTag: block });

/** Accounts of a system, from events: every one, and per market those that ever held a position there. */
export interface Participants {
  /** Every account that can hold free collateral or a position, sorted by address. */
  accounts: string[];
  /** Per market id (as the events spell it, lower case), every account that ever held a position there. */
  holders: Map<string, string[]>;
}

/**
 * Every account that can hold free collateral or a position, from events up to `toBlock`: deposit
 * recipients, position owners, liquidators and keepers paid a reward (sorted by address); and per
 * market the accounts with a PositionChanged there, the only ones whose position a read needs.
 */
export async function discoverParticipants(
  sys: InvariantSystem,
  toBlock: number,
  fromBlock = 0,
): Promise<Participants> {
  const ch = sys.clearinghouse;
  const seen = new Set<string>();
  const holders = new Map<string, Set<string>>();
  for (const e of await ch.queryFilter(ch.filters.Deposited(), fromBlock, toBlock))
    seen.add(getAddress(e.args.account));
  for (const e of await ch.queryFilter(ch.filters.PositionChanged(), fromBlock, toBlock)) {
    const account = getAddress(e.args.account);
    seen.add(account);
    const id = (e.args.marketId as string).toLowerCase();
    if (!holders.has(id)) holders.set(id, new Set());
    holders.get(id)!.add(account);
  }
  for (const e of await ch.queryFilter(ch.filters.PositionLiquidated(), fromBlock, toBlock)) {
    seen.add(getAddress(e.args.liquidator));
  }
  for (const e of await ch.queryFilter(ch.filters.KeeperRewardPaid(), fromBlock, toBlock)) {
    seen.add(getAddress(e.args.keeper));
  }
  const sorted = (xs: Iterable<string>) => [...xs].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  return {
    accounts: sorted(seen),
    holders: new Map([...holders].map(([id, set]) => [id, sorted(set)])),
  };
}

/**
 * Every account that can hold free collateral or a position, from events up to `toBlock`: deposit
 * recipients, position owners, liquidators and keepers paid a reward. Sorted by address.
 */
export async function discoverAccounts(sys: InvariantSystem, toBlock: number, fromBlock = 0): Promise<string[]> {
  return (await discoverParticipants(sys, toBlock, fromBlock)).accounts;
}

/** The accounts whose position in `marketId` a read needs: its holders when known, else `accounts`. */
export const holdersOf = (
  marketId: string,
  accounts: readonly string[],
  holders?: ReadonlyMap<string, readonly string[]>,
): readonly string[] => (holders ? (holders.get(marketId.toLowerCase()) ?? []) : accounts);

/** The open positions of `accounts` in `marketId` at `block`, by checksummed account. */
export async function readPositions(
  sys: InvariantSystem,
  marketId: string,
  accounts: readonly string[],
  block: number,
): Promise<Map<string, LedgerPosition>> {
  const read = await Promise.all(accounts.map((a) => sys.clearinghouse.getPosition(marketId, a, at(block))));
  const open = new Map<string, LedgerPosition>();
  read.forEach((p, i) => {
    if (p.size === 0n) return;
    const account = getAddress(accounts[i]);
    open.set(account, {
      account,
      isLong: p.isLong,
      size: p.size,
      entry: p.entry,
      margin: p.margin,
      leverage: p.leverage,
      leaf: Number(p.leaf),
    });
  });
  return open;
}

/** Free collateral of `accounts` at `block`, by checksummed account. */
export async function readFree(
  sys: InvariantSystem,
  accounts: readonly string[],
  block: number,
): Promise<Map<string, bigint>> {
  const values = await Promise.all(accounts.map((a) => sys.clearinghouse.freeCollateral(a, at(block))));
  return new Map(accounts.map((a, i) => [getAddress(a), values[i]]));
}

/**
 * Reads the ledger of `marketIds` and `accounts` at `block`: free collateral of every account, and
 * each market's positions of its `holders` (every account with a PositionChanged there, from
 * discoverParticipants) or, without them, of every account.
 */
export async function readLedger(
  sys: InvariantSystem,
  marketIds: readonly string[],
  accounts: readonly string[],
  block: number,
  holders?: ReadonlyMap<string, readonly string[]>,
): Promise<Ledger> {
  const ch = sys.clearinghouse;
  const o = at(block);
  const runner = ch.runner;
  const token = IERC20__factory.connect(await ch.collateral(o), runner);
  const fund = await sys.insuranceFund.getAddress();
  const markets = new Map<string, LedgerMarket>();
  const positions = new Map<string, Map<string, LedgerPosition>>();
  for (const id of marketIds) {
    const st = await ch.marketState(id, o);
    markets.set(id, {
      longOpenInterest: st.longOpenInterest,
      shortOpenInterest: st.shortOpenInterest,
      sumSizeTimesEntry: st.sumSizeTimesEntry,
      cumulativeFunding: st.cumulativeFunding,
      roundingReserve: await ch.roundingReserve(id, o),
      keeperReserve: await ch.keeperReserve(id, o),
      lossIndexLong: st.lossIndexLong,
      lossIndexShort: st.lossIndexShort,
    });
    positions.set(id, await readPositions(sys, id, holdersOf(id, accounts, holders), block));
  }
  const free = await readFree(sys, accounts, block);
  return {
    block,
    scale: await ch.collateralScale(o),
    clearinghouseTokens: await token.balanceOf(await ch.getAddress(), o),
    fundTokens: await token.balanceOf(fund, o),
    fundAvailableTokens: await sys.insuranceFund.available(o),
    pendingFundFees: await ch.pendingFundFees(o),
    treasuryBalance: await ch.treasuryBalance(o),
    markets,
    free,
    positions,
  };
}

/** What the fund may pay, as the clearinghouse counts it: available tokens plus unswept fees (18 dec). */
export function fundAvailable(l: Ledger): bigint {
  return l.fundAvailableTokens * l.scale + l.pendingFundFees;
}

/**
 * Conservation (docs/mechanism.md section 5): dust = W*(balance - free - sum c - fund - treasury) + sum s*K
 * + Q_long*L_long + Q_short*L_short, 36 decimals; balance is the collateral held by the
 * clearinghouse and the fund (scaled to 18 decimals), fund = fund tokens + unswept fees, treasury
 * includes the rounding and keeper reserves, and the loss-index terms are what socialized losses
 * charged to the open positions and the positions have not yet realized.
 */
export function conservationDust(l: Ledger): bigint {
  const balance = (l.clearinghouseTokens + l.fundTokens) * l.scale;
  let free = 0n;
  for (const v of l.free.values()) free += v;
  let sumC = 0n;
  let sumSK = 0n;
  let treasury = l.treasuryBalance;
  for (const [id, m] of l.markets) {
    treasury += m.roundingReserve + m.keeperReserve;
    sumSK += m.sumSizeTimesEntry + m.longOpenInterest * m.lossIndexLong + m.shortOpenInterest * m.lossIndexShort;
    for (const p of l.positions.get(id)!.values()) sumC += p.margin;
  }
  const fund = l.fundTokens * l.scale + l.pendingFundFees;
  return W * (balance - free - sumC - fund - treasury) + sumSK;
}

/** Options of checkLedger. */
export interface LedgerCheckOptions {
  /** The ledger of the previous check: dust may only grow, and fund flows are checked since then. */
  previous?: Ledger;
  /** Net token flow into the fund through its documented paths since `previous` (see fundFlows). */
  fundFlow?: FundFlow;
  /**
   * Largest dust accepted, 36 decimals. Every rounding leaves less than 1 wei (W in these units);
   * the default, 1e6 wei, is far below any account's balance, so a missed account or a leak fails.
   */
  maxDust?: bigint;
}

/** The section 5 invariants that hold at every block. */
export function checkLedger(l: Ledger, opts: LedgerCheckOptions = {}): { dust: bigint; results: InvariantResult[] } {
  const results: InvariantResult[] = [];
  const maxDust = opts.maxDust ?? 1_000_000n * W;

  // Conservation: the stored sum s*K is the sum over positions, exactly; dust >= 0, small, never shrinks.
  const skErrors: string[] = [];
  for (const [id, m] of l.markets) {
    let recomputed = 0n;
    for (const p of l.positions.get(id)!.values()) recomputed += (p.isLong ? p.size : -p.size) * p.entry;
    if (recomputed !== m.sumSizeTimesEntry)
      skErrors.push(`${marketName(id)}: stored ${m.sumSizeTimesEntry} != ${recomputed}`);
  }
  const dust = conservationDust(l);
  const prevDust = opts.previous ? conservationDust(opts.previous) : 0n;
  const dustOk = dust >= 0n && dust <= maxDust && dust >= prevDust;
  results.push({
    name: "conservation",
    pass: skErrors.length === 0 && dustOk,
    detail:
      `dust ${dust} (36 dec; ${dust / W} wei)` +
      (opts.previous ? `, previous ${prevDust}` : "") +
      (skErrors.length ? `; sum s*K mismatch: ${skErrors.join("; ")}` : ""),
  });

  // Open interest: stored long OI == stored short OI == the sums of sizes, per market.
  const oiErrors: string[] = [];
  const oiDetail: string[] = [];
  for (const [id, m] of l.markets) {
    let longs = 0n;
    let shorts = 0n;
    for (const p of l.positions.get(id)!.values()) {
      if (p.isLong) longs += p.size;
      else shorts += p.size;
    }
    const name = marketName(id);
    oiDetail.push(`${name}: ${longs}`);
    if (longs !== shorts) oiErrors.push(`${name}: longs ${longs} != shorts ${shorts}`);
    if (m.longOpenInterest !== longs || m.shortOpenInterest !== shorts) {
      oiErrors.push(`${name}: stored (${m.longOpenInterest}, ${m.shortOpenInterest}) != sums (${longs}, ${shorts})`);
    }
  }
  results.push({
    name: "open interest balanced",
    pass: oiErrors.length === 0,
    detail: oiErrors.length ? oiErrors.join("; ") : `long == short per market (${oiDetail.join(", ")})`,
  });

  // Every open position has c > 0 (and a stored leverage, which only a full close clears).
  const marginErrors: string[] = [];
  let open = 0;
  for (const [id, ps] of l.positions) {
    for (const p of ps.values()) {
      open += 1;
      if (p.margin <= 0n || p.leverage <= 0n)
        marginErrors.push(`${marketName(id)} ${p.account}: c ${p.margin}, a ${p.leverage}`);
    }
  }
  results.push({
    name: "every open position c > 0",
    pass: marginErrors.length === 0,
    detail: marginErrors.length ? marginErrors.join("; ") : `${open} open positions`,
  });

  // The fund: never negative, available <= balance, and it moves only through its documented paths.
  const fundValue = l.fundTokens * l.scale + l.pendingFundFees;
  let fundOk = fundValue >= 0n && l.fundAvailableTokens <= l.fundTokens;
  let fundDetail = `fund ${fundValue} (tokens ${l.fundTokens}, unswept fees ${l.pendingFundFees})`;
  if (opts.previous && opts.fundFlow) {
    const moved = l.fundTokens - opts.previous.fundTokens;
    const flow = opts.fundFlow;
    const expected = flow.staked + flow.donated + flow.swept - flow.covered - flow.unstaked;
    if (moved !== expected) fundOk = false;
    fundDetail += `; moved ${moved} tokens = staked ${flow.staked} + donated ${flow.donated} + swept ${flow.swept} - covered ${flow.covered} - unstaked ${flow.unstaked}${moved === expected ? "" : ` (expected ${expected})`}`;
  }
  results.push({ name: "insurance fund never negative", pass: fundOk, detail: fundDetail });
  return { dust, results };
}

/** Token flows of the insurance fund over a block range, by documented path (token units). */
export interface FundFlow {
  staked: bigint;
  donated: bigint;
  swept: bigint;
  covered: bigint;
  unstaked: bigint;
}

/** Sums the fund's events in [fromBlock, toBlock]. */
export async function fundFlows(sys: InvariantSystem, fromBlock: number, toBlock: number): Promise<FundFlow> {
  const f = sys.insuranceFund;
  const ch = sys.clearinghouse;
  const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
  const range = [fromBlock, toBlock] as const;
  return {
    staked: sum((await f.queryFilter(f.filters.Deposit(), ...range)).map((e) => e.args.assets)),
    donated: sum((await f.queryFilter(f.filters.Donated(), ...range)).map((e) => e.args.tokenAmount)),
    swept: sum((await ch.queryFilter(ch.filters.FundFeesSwept(), ...range)).map((e) => e.args.tokenAmount)),
    covered: sum((await f.queryFilter(f.filters.Covered(), ...range)).map((e) => e.args.tokenAmount)),
    unstaked: sum((await f.queryFilter(f.filters.UnstakeCompleted(), ...range)).map((e) => e.args.tokenAmount)),
  };
}

export { checkAdlCall, type AdlCallCheck, type AdlLeg, type OppositePosition } from "./adl-call-check";
export { checkSocializedLoss, type SocializationCheck } from "./social-check";
