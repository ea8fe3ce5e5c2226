/**
 * ADL test helpers: scenario trades at the index (so F stays 0), the keeper's view of a call built
 * with lib/adl.ts, an independent spec-level prediction of one deleverage call (docs/mechanism.md section 3,
 * steps 1 and 4, and the settlement rules of the core) and a checker that compares every post-state
 * and event to it, to the wei.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionReceipt } from "ethers";
import {
  PositionBook,
  adlDelta,
  fromEvents,
  buildDeleverage,
  type AdlDelta,
  type DeleveragePlan,
  type ProofNode,
} from "../../lib/adl";
import { WAD, divFloor } from "../../lib/math";
import { open } from "./clearinghouse";
import { ETH, SCALE, type Fixture } from "./fixture";
import { conservation, fullSnapshot } from "./liquidation";

/** Reads in the context of the next block (the one the call will be mined in). */
export const PENDING = { blockTag: "pending" } as const;

export const lev = (n: number): bigint => BigInt(Math.round(n * 100)) * 10n ** 16n;
export const units = (n: number): bigint => BigInt(Math.round(n * 1000)) * 10n ** 15n;

/** Sets the index to `price` and fills `size` between `long` and `short` at it (no premium: F stays 0). */
export async function tradeAt(
  f: Fixture,
  long: HardhatEthersSigner,
  short: HardhatEthersSigner,
  size: bigint,
  price: bigint,
  leverage: { long?: bigint; short?: bigint } = {},
  symbol = ETH,
): Promise<void> {
  await f.setPrice(symbol, price);
  await open(f, f.markets.get(symbol)!.id, long, short, size, price, leverage);
}

/**
 * B = t0 short 1 at 2,000 (10x). Its first counterparty sold out at 2,900 to late 10x longs, so at
 * 3,100 B owes 900 per unit while each long has 290 of margin and 200 of profit per unit: none is
 * eligible, and ADL is impossible. `lateLongs` extra units of late longs face a well-margined short.
 * (The book of test/adl/socialized-loss.test.ts and test/keeper/final-layer.integration.test.ts.)
 */
export async function noEligibleBook(f: Fixture, lateLongs: number): Promise<void> {
  const t = f.traders;
  await tradeAt(f, t[1], t[0], units(1), 2000n * WAD, { long: lev(2), short: lev(10) });
  if (lateLongs > 0) await tradeAt(f, t[4], t[3], units(lateLongs), 2000n * WAD, { long: lev(2), short: lev(1) });
  await tradeAt(f, t[2], t[1], units(1), 2900n * WAD, { long: lev(10), short: lev(2) });
  if (lateLongs > 0) await tradeAt(f, t[5], t[4], units(lateLongs), 2900n * WAD, { long: lev(10), short: lev(2) });
  await f.setPrice(ETH, 3100n * WAD);
}

/** What the fund can pay now, as the deleverager counts it: available tokens * 1e12 + pending fees. */
export async function fundAvailable(f: Fixture): Promise<bigint> {
  return (await f.insuranceFund.available()) * SCALE + (await f.clearinghouse.pendingFundFees());
}

/** The keeper's view at the latest block: replayed book, (P, F), A and the call's delta. */
export interface KeeperView {
  book: PositionBook;
  price: bigint;
  funding: bigint;
  available: bigint;
  delta: AdlDelta;
}

/** Rebuilds the book from every event so far (in pages of `pageSize` blocks) and reads (P, F, A). */
export async function keeperView(f: Fixture, id: string, bankrupt: string, pageSize = 5000): Promise<KeeperView> {
  const latest = await ethers.provider.getBlockNumber();
  const book = await fromEvents(f.clearinghouse, f.deleverager, 0, latest, pageSize);
  // "pending": the block the call will run in (its timestamp pinned with setNextBlockTimestamp).
  const [price] = await f.oracle.getPrice(id, true, PENDING);
  const funding = await f.lens.currentFunding(id, PENDING);
  const available = await fundAvailable(f);
  return { book, price, funding, available, delta: adlDelta(book, id, bankrupt, price, funding, available) };
}

/** The keeper's view plus the list and proof lib/adl.ts builds. */
export async function keeperPlan(
  f: Fixture,
  id: string,
  bankrupt: string,
  maxEntries = 64,
): Promise<KeeperView & { plan: DeleveragePlan }> {
  const v = await keeperView(f, id, bankrupt);
  const plan = buildDeleverage(v.book, id, bankrupt, v.price, v.funding, v.delta.delta, maxEntries);
  return { ...v, plan };
}

/** Stored position as plain bigints. */
export interface Pos {
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  leverage: bigint;
  leaf: bigint;
}

export async function pos(f: Fixture, id: string, account: string): Promise<Pos> {
  const p = await f.clearinghouse.getPosition(id, account);
  return { isLong: p.isLong, size: p.size, entry: p.entry, margin: p.margin, leverage: p.leverage, leaf: p.leaf };
}

const EMPTY: Pos = { isLong: false, size: 0n, entry: 0n, margin: 0n, leverage: 0n, leaf: 0n };

/** Everything one deleverage call touches. */
export interface AdlState {
  positions: Map<string, Pos>;
  free: Map<string, bigint>;
  pendingFundFees: bigint;
  fundTokens: bigint;
  roundingReserve: bigint;
  treasuryBalance: bigint;
  keeperReserve: bigint;
}

export async function readAdlState(f: Fixture, id: string, accounts: string[]): Promise<AdlState> {
  const ch = f.clearinghouse;
  const s: AdlState = {
    positions: new Map(),
    free: new Map(),
    pendingFundFees: await ch.pendingFundFees(),
    fundTokens: await f.token.balanceOf(await f.insuranceFund.getAddress()),
    roundingReserve: await ch.roundingReserve(id),
    treasuryBalance: await ch.treasuryBalance(),
    keeperReserve: await ch.keeperReserve(id),
  };
  for (const a of accounts) {
    s.positions.set(a, await pos(f, id, a));
    s.free.set(a, await ch.freeCollateral(a));
  }
  return s;
}

/** The spec's outcome of one call. */
export interface AdlPrediction {
  after: AdlState;
  takes: bigint[];
  d: bigint;
  fundPays: bigint;
  owed: bigint;
  charges: bigint[];
  /** V_i: booked equity of each counterparty's closed share. */
  closedEquity: bigint[];
  remaining: bigint;
  /** The keeper pay from the market's keeper reserve. */
  reward: bigint;
}

/** What the ADL keeper pay depends on (docs/mechanism.md sections 3, step 6, and 7.2). */
export interface RewardTerms {
  keeper: string;
  keeperPay: bigint;
  minNotional: bigint;
}

const xOf = (p: Pos, price: bigint, funding: bigint): bigint =>
  p.isLong ? price - funding - p.entry : p.entry - (price - funding);
const ceilDiv = (a: bigint, b: bigint): bigint => (a === 0n ? 0n : (a - 1n) / b + 1n);

/**
 * Predicts `deleverage(B, list)` at (P, F) from `s` (docs/mechanism.md section 3): takes in list order
 * (closed entries skipped), the fund pays floor(min(A, D) * d / q_B), R = -(booked equity of B's
 * closed part) - fund payment, each entry is charged ceil(R * d_i / d) and paid max(V_i - L_i, 0);
 * the rounding reserve covers a shortfall, a surplus goes to pending fund fees.
 */
export function predictDeleverage(
  s: AdlState,
  bankrupt: string,
  list: string[],
  price: bigint,
  funding: bigint,
  available: bigint,
  terms?: RewardTerms,
  /** A session's fund payment: floor(sigma * d / W) at the pinned sigma (capped at what the fund has). */
  sessionSigma?: bigint,
): AdlPrediction {
  const b = s.positions.get(bankrupt)!;
  const xB = xOf(b, price, funding);
  const deficit = -(b.margin + divFloor(b.size * xB, WAD));
  const covered = available < deficit ? available : deficit;
  let remaining = b.size;
  const live: string[] = [];
  const takes: bigint[] = [];
  for (const a of list) {
    const p = s.positions.get(a)!;
    if (p.size === 0n) continue;
    const take = remaining < p.size ? remaining : p.size;
    remaining -= take;
    live.push(a);
    takes.push(take);
  }
  const d = takes.reduce((x, y) => x + y, 0n);
  let fundPays = (covered * d) / b.size;
  if (sessionSigma !== undefined) {
    fundPays = (sessionSigma * d) / WAD;
    if (fundPays > available) fundPays = available;
  }
  const closedB = (b.margin * d) / b.size + divFloor(d * xB, WAD);
  const owedRaw = -closedB - fundPays;
  const owed = owedRaw > 0n ? owedRaw : 0n;
  const after: AdlState = {
    ...s,
    positions: new Map(s.positions),
    free: new Map(s.free),
  };
  const reduce = (acct: string, take: bigint): Pos => {
    const p = after.positions.get(acct)!;
    const released = (p.margin * take) / p.size;
    const next = p.size === take ? { ...EMPTY } : { ...p, size: p.size - take, margin: p.margin - released };
    after.positions.set(acct, next);
    return next;
  };
  reduce(bankrupt, d);
  const charges: bigint[] = [];
  const closedEquity: bigint[] = [];
  let collected = 0n;
  live.forEach((acct, i) => {
    const p = s.positions.get(acct)!;
    const v = (p.margin * takes[i]) / p.size + divFloor(takes[i] * xOf(p, price, funding), WAD);
    const charge = ceilDiv(owed * takes[i], d);
    charges.push(charge);
    closedEquity.push(v);
    reduce(acct, takes[i]);
    after.free.set(acct, after.free.get(acct)! + (v > charge ? v - charge : 0n));
    collected += v > charge ? charge : v;
  });
  // The fund: unswept fees first, then whole tokens rounded up (the sub-token rest back to pending).
  if (fundPays <= after.pendingFundFees) after.pendingFundFees -= fundPays;
  else {
    const rest = fundPays - after.pendingFundFees;
    const tokens = ceilDiv(rest, SCALE);
    after.pendingFundFees = tokens * SCALE - rest;
    after.fundTokens -= tokens;
  }
  const gap = -closedB - fundPays - collected;
  if (gap > 0n) {
    const fromReserve = gap < after.roundingReserve ? gap : after.roundingReserve;
    after.roundingReserve -= fromReserve;
    after.treasuryBalance -= gap - fromReserve;
  } else after.pendingFundFees += -gap;
  // The keeper pay: keeperPay from the keeper reserve (what it has), only for the call that closes
  // all of B.
  let reward = 0n;
  if (terms && d === b.size) {
    const pay = terms.keeperPay;
    reward = pay < after.keeperReserve ? pay : after.keeperReserve;
    after.keeperReserve -= reward;
    if (after.free.has(terms.keeper)) after.free.set(terms.keeper, after.free.get(terms.keeper)! + reward);
  }
  return { after, takes, d, fundPays, owed, charges, closedEquity, remaining: b.size - d, reward };
}

/** All accounts a scenario uses: the ten traders. */
export const everyone = (f: Fixture): string[] => f.traders.map((t) => t.address);

/**
 * Sends `deleverage(id, bankrupt, list, proof)` from the keeper and checks it against
 * predictDeleverage at the call's (P, F, A), to the wei: positions, free collateral of everyone,
 * pending fund fees, fund tokens, rounding reserve and treasury; the events with their values;
 * open interest balanced and conservation (dust never shrinks). Returns the prediction and receipt.
 */
export async function deleverageExactly(
  f: Fixture,
  id: string,
  bankrupt: string,
  list: string[],
  proof: ProofNode[],
  expectScores?: bigint[],
): Promise<{ prediction: AdlPrediction; receipt: ContractTransactionReceipt }> {
  // The keeper is included: it receives the ADL keeper reward.
  const accounts = [...everyone(f), f.keeper.address];
  const before = await readAdlState(f, id, accounts);
  const [price] = await f.oracle.getPrice(id, true, PENDING);
  const funding = await f.lens.currentFunding(id, PENDING);
  const available = await fundAvailable(f);
  const [viewDelta] = await f.deleverager.adlDelta(id, bankrupt, PENDING);
  const dustBefore = await conservation(f, [f.ethId, f.btcId], accounts);
  const params = await f.clearinghouse.marketParams(id);
  const prediction = predictDeleverage(before, bankrupt, list, price, funding, available, {
    keeper: f.keeper.address,
    keeperPay: params.keeperPay,
    minNotional: params.minNotional,
  });
  const tx = await f.deleverager.connect(f.keeper).deleverage(id, bankrupt, list, proof);
  const receipt = (await tx.wait())!;
  expect((await f.clearinghouse.marketState(id)).cumulativeFunding, "F of the call").to.equal(funding);
  expect(await readAdlState(f, id, accounts)).to.deep.equal(prediction.after);
  // Events: every counterparty with its take, price, score, queue position and charge.
  const del = f.deleverager;
  const legs = receipt.logs
    .filter((l) => l.address === (del.target as string))
    .map((l) => del.interface.parseLog(l))
    .filter((e) => e?.name === "CounterpartyDeleveraged")
    .map((e) => e!.args);
  const live = list.filter((a) => before.positions.get(a)!.size !== 0n);
  expect(legs.length).to.equal(live.length);
  legs.forEach((e, i) => {
    expect([e.marketId, e.bankrupt, e.counterparty, e.size, e.price, e.queuePosition, e.charged]).to.deep.equal([
      id,
      bankrupt,
      live[i],
      prediction.takes[i],
      price,
      BigInt(i),
      prediction.charges[i],
    ]);
    if (expectScores) expect(e.score).to.equal(expectScores[i]);
  });
  await expect(tx)
    .to.emit(del, "DeleverageExecuted")
    .withArgs(id, bankrupt, prediction.d, prediction.fundPays, prediction.owed, prediction.remaining, viewDelta);
  // The closed part of B ends at exactly zero: fund + counterparties + reserve paid its deficit, and
  // B's free collateral did not move.
  expect(await f.clearinghouse.freeCollateral(bankrupt)).to.equal(before.free.get(bankrupt));
  const dustAfter = await conservation(f, [f.ethId, f.btcId], accounts);
  expect(dustAfter, "conservation dust never shrinks").to.be.greaterThanOrEqual(dustBefore);
  return { prediction, receipt };
}

/** Asserts a rejected deleverage call reverts with `name(args)` (decoded by `on`) and moves nothing. */
export async function expectAdlRejected(
  f: Fixture,
  id: string,
  bankrupt: string,
  list: string[],
  proof: ProofNode[],
  on: { interface: unknown } & object,
  name: string,
  ...args: unknown[]
): Promise<void> {
  const accounts = everyone(f);
  const before = await fullSnapshot(f, [f.ethId, f.btcId], accounts);
  const root = async () => [
    Array.from(await f.deleverager.nodeAt(id, true, 14, 0)),
    Array.from(await f.deleverager.nodeAt(id, false, 14, 0)),
  ];
  const rootsBefore = await root();
  await expect(f.deleverager.connect(f.keeper).deleverage(id, bankrupt, list, proof))
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    .to.be.revertedWithCustomError(on as any, name)
    .withArgs(...args);
  expect(await fullSnapshot(f, [f.ethId, f.btcId], accounts)).to.deep.equal(before);
  expect(await root()).to.deep.equal(rootsBefore);
}

/** The replayed nodes a proof names equal the on-chain ones (count included). */
export async function expectProofNodesMatchChain(
  f: Fixture,
  book: PositionBook,
  id: string,
  side: boolean,
  proof: ProofNode[],
): Promise<void> {
  for (const n of proof) {
    const chain = await f.deleverager.nodeAt(id, side, n.level, n.position);
    const mine = book.tree(id, side).nodeAt(n.level, n.position);
    expect([chain.maxA, chain.bestK, chain.maxE, chain.count], `node ${n.level}/${n.position}`).to.deep.equal([
      mine.maxA,
      mine.bestK,
      mine.maxE,
      mine.count,
    ]);
  }
}
