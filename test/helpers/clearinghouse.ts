/** Shared helpers for the clearinghouse unit tests: signed orders, state snapshots, exact predictions. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Signer } from "ethers";
import type { Clearinghouse } from "../../typechain-types";
import { buildOrder, signFor, type OrderSpec } from "../../lib/matching";
import type { Order } from "../../lib/orders";
import { applyFill, type FillResult, type PositionRecord } from "../../lib/position";
import type { FundingAccrual } from "../../lib/funding";
import { WAD, mulDivDown, mulDivUp } from "../../lib/math";
import type { MarketParams } from "../../lib/market-params";
import type { Fixture } from "./fixture";

/** MarketParams fields in declaration order (the order of the ParamField enum). */
export const PARAM_FIELDS = [
  "imr",
  "mmr",
  "makerFee",
  "takerFee",
  "priceBand",
  "fundFeeShare",
  "maxPremium",
  "keeperFeeShare",
  "minNotional",
  "fundingPeriod",
  "fundingWindow",
  "liquidationFee",
  "liquidatorShare",
  "takerBand",
  "keeperPay",
] as const;
export type ParamFieldName = (typeof PARAM_FIELDS)[number];

/** The parameters as the array of their values in declaration order (how the getters return them). */
export const paramsArray = (p: MarketParams): bigint[] => PARAM_FIELDS.map((k) => BigInt(p[k] as bigint));

/** A predicate for an event argument that carries exactly `params`. */
export const isParams =
  (params: MarketParams) =>
  (v: unknown): boolean => {
    const got = Array.from(v as Iterable<unknown>);
    const want = paramsArray(params);
    return got.length === want.length && got.every((x, i) => x === want[i]);
  };

/** A predicate for an error or event argument naming `field` (carried as its declaration index). */
export const fieldIs =
  (field: ParamFieldName) =>
  (v: unknown): boolean =>
    v === field || v === BigInt(PARAM_FIELDS.indexOf(field));

/** MarketRegistry.PARAMS_DELAY: how long a proposed parameter change waits. */
export const PARAMS_DELAY = 24n * 3600n;

/** Sets every mock feed of `f` again at its current answer, so its price is fresh now. */
export async function refreshFeeds(f: Fixture): Promise<void> {
  for (const market of f.markets.values()) {
    const [, answer] = await market.aggregator.latestRoundData();
    await (await market.aggregator.setAnswer(answer)).wait();
  }
}

/**
 * Changes the parameters of market `id` through the timelock, as its admin: proposes `params`, lets
 * PARAMS_DELAY pass, refreshes every feed (a day is longer than the feeds' windows) and applies.
 * Each field of `params` must lie within one step of the parameters in force.
 */
export async function changeMarketParams(f: Fixture, id: string, params: MarketParams): Promise<void> {
  await (await f.clearinghouse.proposeMarketParams(id, params)).wait();
  await time.increase(PARAMS_DELAY);
  await refreshFeeds(f);
  await (await f.clearinghouse.applyMarketParams(id)).wait();
}

/** A signed order together with its signer and signature. */
export interface SignedOrder {
  signer: Signer;
  order: Order;
  sig: string;
}

/** Builds and signs an order for `signer`. */
export async function signed(
  ch: Clearinghouse,
  signer: HardhatEthersSigner,
  spec: OrderSpec,
  traderOverride?: string,
): Promise<SignedOrder> {
  const order = buildOrder(traderOverride ?? signer.address, spec);
  return { signer, order, sig: await signFor(ch, signer, order) };
}

/** Submits a signed pair for `fill` base units through `keeper`. */
export function submit(ch: Clearinghouse, keeper: Signer, maker: SignedOrder, taker: SignedOrder, fill: bigint) {
  return ch.connect(keeper).matchOrders(maker.order, maker.sig, taker.order, taker.sig, fill);
}

/** The stored position as the TypeScript library's record (leaf dropped). */
export async function positionOf(ch: Clearinghouse, id: string, account: string): Promise<PositionRecord> {
  const p = await ch.getPosition(id, account);
  return { isLong: p.isLong, size: p.size, entry: p.entry, margin: p.margin, leverage: p.leverage };
}

/** The funding fields of a market in the library's shape. */
export async function fundingStateOf(ch: Clearinghouse, id: string): Promise<FundingAccrual> {
  const s = await ch.marketState(id);
  return {
    cumulativeFunding: s.cumulativeFunding,
    fundingRate: s.fundingRate,
    lastFundingTime: s.lastFundingTime,
    windowStart: s.windowStart,
    premiumTimesSize: s.premiumTimesSize,
    windowSize: s.windowSize,
  };
}

/** ceil(ceil(size * price / W) * rate / W): a trading fee as the contract charges it. */
export function feeOf(size: bigint, price: bigint, rate: bigint): bigint {
  return mulDivUp(mulDivUp(size, price, WAD), rate, WAD);
}

/** Splits a fee total into (fund, keeper reserve, treasury) shares: both shares rounded down. */
export function splitFees(total: bigint, fundShare: bigint, keeperShare: bigint): [bigint, bigint, bigint] {
  const toFund = mulDivDown(total, fundShare, WAD);
  const toKeepers = mulDivDown(total, keeperShare, WAD);
  return [toFund, toKeepers, total - toFund - toKeepers];
}

/** Everything a rejected call must leave untouched. */
export async function snapshot(
  ch: Clearinghouse,
  ids: string[],
  accounts: string[],
  hashes: string[] = [],
): Promise<unknown> {
  const token = await ch.collateral();
  const erc20 = await ethers.getContractAt("MockERC20", token);
  return {
    positions: await Promise.all(
      ids.flatMap((id) => accounts.map(async (a) => Array.from(await ch.getPosition(id, a)))),
    ),
    markets: await Promise.all(ids.map(async (id) => Array.from(await ch.marketState(id)))),
    params: await Promise.all(ids.map(async (id) => Array.from(await ch.marketParams(id)))),
    pendingParams: await Promise.all(
      ids.map(async (id) => {
        const [params, eta] = await ch.pendingMarketParams(id);
        return [Array.from(params), eta];
      }),
    ),
    status: await Promise.all(ids.map(async (id) => Array.from(await ch.marketStatus(id)))),
    free: await Promise.all(accounts.map((a) => ch.freeCollateral(a))),
    filled: await Promise.all(hashes.map((h) => ch.filled(h))),
    cancelled: await Promise.all(hashes.map((h) => ch.cancelled(h))),
    pendingFundFees: await ch.pendingFundFees(),
    treasuryBalance: await ch.treasuryBalance(),
    balance: await erc20.balanceOf(await ch.getAddress()),
  };
}

/** Asserts that the state captured by `snapshot` did not move. */
export async function expectUnchanged(
  before: unknown,
  ch: Clearinghouse,
  ids: string[],
  accounts: string[],
  hashes: string[] = [],
): Promise<void> {
  expect(await snapshot(ch, ids, accounts, hashes)).to.deep.equal(before);
}

/** The exact outcome of one match as the library predicts it. */
export interface MatchPrediction {
  maker: FillResult;
  taker: FillResult;
  makerFee: bigint;
  takerFee: bigint;
  funding: bigint;
  makerFreeBefore: bigint;
  takerFreeBefore: bigint;
}

/**
 * Matches `maker` and `taker` for `fill` at the maker's price and checks both resulting positions
 * and free balances against lib/position.ts `applyFill` to the wei. `index` is the oracle price
 * in force. Returns the prediction for further checks.
 */
export async function matchExactly(
  f: Fixture,
  maker: SignedOrder,
  taker: SignedOrder,
  fill: bigint,
  index: bigint,
): Promise<MatchPrediction> {
  const ch = f.clearinghouse;
  const id = maker.order.marketId;
  const params = await ch.marketParams(id);
  const [mBefore, tBefore] = [
    await positionOf(ch, id, maker.order.trader),
    await positionOf(ch, id, taker.order.trader),
  ];
  const [makerFreeBefore, takerFreeBefore] = [
    await ch.freeCollateral(maker.order.trader),
    await ch.freeCollateral(taker.order.trader),
  ];
  await (await submit(ch, f.keeper, maker, taker, fill)).wait();
  // F is accrued once at the start of the call and does not move afterwards in that block.
  const funding = (await ch.marketState(id)).cumulativeFunding;
  const price = maker.order.limitPrice;
  const takerBuys = taker.order.size > 0n;
  const m = applyFill(mBefore, takerBuys ? -fill : fill, price, maker.order.leverage, index, funding, params.imr);
  const t = applyFill(tBefore, takerBuys ? fill : -fill, price, taker.order.leverage, index, funding, params.imr);
  const makerFee = feeOf(fill, price, params.makerFee);
  const takerFee = feeOf(fill, price, params.takerFee);
  expect(await positionOf(ch, id, maker.order.trader)).to.deep.equal(m.position);
  expect(await positionOf(ch, id, taker.order.trader)).to.deep.equal(t.position);
  expect(await ch.freeCollateral(maker.order.trader)).to.equal(makerFreeBefore + m.payout - m.posted - makerFee);
  expect(await ch.freeCollateral(taker.order.trader)).to.equal(takerFreeBefore + t.payout - t.posted - takerFee);
  return { maker: m, taker: t, makerFee, takerFee, funding, makerFreeBefore, takerFreeBefore };
}

/** Opens `size` (> 0: `long` buys from `short`) between two traders at `price`, maker = long. */
export async function open(
  f: Fixture,
  id: string,
  long: HardhatEthersSigner,
  short: HardhatEthersSigner,
  size: bigint,
  price: bigint,
  leverage: { long?: bigint; short?: bigint } = {},
): Promise<void> {
  const ch = f.clearinghouse;
  const maker = await signed(ch, long, { marketId: id, size, limitPrice: price, leverage: leverage.long });
  const taker = await signed(ch, short, { marketId: id, size: -size, limitPrice: price, leverage: leverage.short });
  await (await submit(ch, f.keeper, maker, taker, size)).wait();
}

/** Withdraws the whole token-unit part of `account`'s free collateral. */
export async function drainFree(f: Fixture, account: HardhatEthersSigner, keepTokens = 0n): Promise<void> {
  const scale = await f.clearinghouse.collateralScale();
  const tokens = (await f.clearinghouse.freeCollateral(account.address)) / scale - keepTokens;
  if (tokens > 0n) await (await f.clearinghouse.connect(account).withdraw(account.address, tokens)).wait();
}

export const bps = (n: bigint): bigint => n * 10n ** 14n;
export const pct = (n: bigint): bigint => n * 10n ** 16n;

/**
 * Asserts that `call` reverts with the custom error `name(...args)` and that the state of `ids`,
 * `accounts` and order `hashes` is exactly as before.
 */
export async function expectRejected(
  f: Fixture,
  scope: { ids: string[]; accounts: string[]; hashes?: string[] },
  call: () => Promise<unknown>,
  name: string,
  ...args: unknown[]
): Promise<void> {
  const ch = f.clearinghouse;
  const before = await snapshot(ch, scope.ids, scope.accounts, scope.hashes ?? []);
  await expect(call())
    .to.be.revertedWithCustomError(ch, name)
    .withArgs(...args);
  await expectUnchanged(before, ch, scope.ids, scope.accounts, scope.hashes ?? []);
}
