/**
 * Liquidation helpers: an independent bigint mirror of the liquidation spec (docs/liquidation.md,
 * docs/mechanism.md section 3) written from the spec text, not from the Solidity, plus state readers
 * used to check every post-state to the wei and the conservation identity of docs/mechanism.md section 5.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { WAD, divFloor, mulDivDown, mulDivUp } from "../../lib/math";
import {
  EMPTY_POSITION,
  applyFill,
  contribution,
  equityOf,
  pnlPerUnit,
  requirementUp,
  type PositionRecord,
} from "../../lib/position";
import { SCALE, type Fixture } from "./fixture";

/** A partial liquidation may bring the remainder back to mmr * (1 + 25%) after the fee. */
export const BUFFER = 25n * 10n ** 16n;

/** The parameters a liquidation reads. */
export interface LiqParams {
  imr: bigint;
  mmr: bigint;
  minNotional: bigint;
  liquidationFee: bigint;
  liquidatorShare: bigint;
  /** Fixed pay from the keeper reserve per liquidation (0 where a caller does not need it). */
  keeperPay?: bigint;
}

/** ceil(ceil(d * P / W) * rate / W): the ordinary liquidation fee, rounded toward the protocol. */
export const feeUp = (d: bigint, price: bigint, rate: bigint): bigint => requirementUp(d, price, rate);

/**
 * The largest size a liquidator may take: the least d with
 *   eq - (target - feeRate) * d * P >= target * q * P,   target = mmr * 1.25,
 * rounded up; the whole position when eq <= 0, when the fee rate reaches the target, when no
 * partial amount restores it, or when the remainder would be under the minimum notional.
 */
export function maxTake(q: bigint, eq: bigint, price: bigint, p: LiqParams): bigint {
  const target = p.mmr + (p.mmr * BUFFER) / WAD;
  if (eq <= 0n || target <= p.liquidationFee) return q;
  const need = requirementUp(q, price, target) - eq;
  const perUnit = ((target - p.liquidationFee) * price) / WAD;
  if (need <= 0n || perUnit === 0n) return q;
  let cap = mulDivUp(need, WAD, perUnit);
  const leastLeg = mulDivUp(p.minNotional, WAD, price);
  if (cap < leastLeg) cap = leastLeg;
  if (cap >= q || ((q - cap) * price) / WAD < p.minNotional) return q;
  return cap;
}

/** What taking d of a position moves (all 18-decimal quote). */
export interface Plan {
  /** V = floor(c*d/q) + floor(d*x/W). */
  takenEquity: bigint;
  released: bigint;
  fee: bigint;
  toLiquidator: bigint;
  toFund: bigint;
  /** D: the whole position's deficit before, D': the remainder's after. */
  deficit: bigint;
  deficitAfter: bigint;
  fundPays: bigint;
  reservePays: bigint;
}

/** The liquidation plan of taking `d` of `pos` at index `price` under funding `funding`. */
export function plan(pos: PositionRecord, d: bigint, price: bigint, funding: bigint, p: LiqParams): Plan {
  const x = pnlPerUnit(pos.isLong, pos.entry, price, funding);
  const released = (pos.margin * d) / pos.size;
  const takenEquity = released + divFloor(d * x, WAD);
  const out: Plan = {
    takenEquity,
    released,
    fee: 0n,
    toLiquidator: 0n,
    toFund: 0n,
    deficit: 0n,
    deficitAfter: 0n,
    fundPays: 0n,
    reservePays: 0n,
  };
  if (takenEquity >= 0n) {
    const f = feeUp(d, price, p.liquidationFee);
    out.fee = f < takenEquity ? f : takenEquity;
    out.toLiquidator = (out.fee * p.liquidatorShare) / WAD;
    out.toFund = out.fee - out.toLiquidator;
    return out;
  }
  const eq = equityOf(pos.margin, pos.size, x);
  const rest = equityOf(pos.margin - released, pos.size - d, x);
  out.deficit = eq < 0n ? -eq : 0n;
  out.deficitAfter = rest < 0n ? -rest : 0n;
  out.fundPays = out.deficit - out.deficitAfter;
  out.reservePays = -takenEquity - out.fundPays;
  return out;
}

/** Everything a liquidation reads or writes, as plain bigints. */
export interface LiqState {
  target: PositionRecord;
  liquidator: PositionRecord;
  targetFree: bigint;
  liquidatorFree: bigint;
  pendingFundFees: bigint;
  treasuryBalance: bigint;
  roundingReserve: bigint;
  keeperReserve: bigint;
  /** Insurance fund token balance (6 decimals) and what it may pay now. */
  fundTokens: bigint;
  fundAvailableTokens: bigint;
  chTokens: bigint;
}

export async function positionOf(f: Fixture, id: string, account: string): Promise<PositionRecord> {
  const p = await f.clearinghouse.getPosition(id, account);
  return { isLong: p.isLong, size: p.size, entry: p.entry, margin: p.margin, leverage: p.leverage };
}

export async function readLiqState(f: Fixture, id: string, target: string, liquidator: string): Promise<LiqState> {
  const ch = f.clearinghouse;
  return {
    target: await positionOf(f, id, target),
    liquidator: await positionOf(f, id, liquidator),
    targetFree: await ch.freeCollateral(target),
    liquidatorFree: await ch.freeCollateral(liquidator),
    pendingFundFees: await ch.pendingFundFees(),
    treasuryBalance: await ch.treasuryBalance(),
    roundingReserve: await ch.roundingReserve(id),
    keeperReserve: await ch.keeperReserve(id),
    fundTokens: await f.token.balanceOf(await f.insuranceFund.getAddress()),
    fundAvailableTokens: await f.insuranceFund.available(),
    chTokens: await f.token.balanceOf(await ch.getAddress()),
  };
}

/** The predicted outcome of `liquidate(id, target, d, leverage)` from `s`, or the error it must raise. */
export interface Prediction {
  plan: Plan;
  after: LiqState;
  /** Keeper pay from the keeper reserve: min(keeperPay, reserve), bankrupt or not. */
  reward: bigint;
  /** Tokens the fund transfers to the clearinghouse. */
  coverTokens: bigint;
  error?: { name: string; args: unknown[] };
}

/**
 * The spec of one liquidation of `d` at index P and funding F, as a pure function of the state
 * before. Validation order: the caller checks liquidatability and the cap.
 */
export function predict(
  s: LiqState,
  id: string,
  target: string,
  liquidator: string,
  d: bigint,
  leverage: bigint,
  price: bigint,
  funding: bigint,
  p: LiqParams,
): Prediction {
  const pl = plan(s.target, d, price, funding, p);
  const a: LiqState = { ...s, target: { ...s.target }, liquidator: { ...s.liquidator } };
  const out: Prediction = { plan: pl, after: a, reward: 0n, coverTokens: 0n };
  let adjustment = -pl.fee;
  if (pl.takenEquity < 0n) {
    // The fund must cover the WHOLE position's deficit, even for a partial take.
    const available = s.pendingFundFees + s.fundAvailableTokens * SCALE;
    if (available < pl.deficit) {
      out.error = { name: "AdlOnly", args: [id, target, pl.deficit, available] };
      return out;
    }
    // Fund: unswept fees first, then whole tokens rounded up, the sub-token surplus back to pending.
    if (pl.fundPays <= a.pendingFundFees) a.pendingFundFees -= pl.fundPays;
    else {
      const rest = pl.fundPays - a.pendingFundFees;
      out.coverTokens = mulDivUp(rest, 1n, SCALE);
      a.pendingFundFees = out.coverTokens * SCALE - rest;
      a.fundTokens -= out.coverTokens;
      a.fundAvailableTokens -= out.coverTokens;
      a.chTokens += out.coverTokens;
    }
    const fromReserve = pl.reservePays < a.roundingReserve ? pl.reservePays : a.roundingReserve;
    a.roundingReserve -= fromReserve;
    a.treasuryBalance -= pl.reservePays - fromReserve;
    adjustment = pl.fundPays + pl.reservePays;
  }
  // The liquidated leg: release floor(c*d/q), book floor(d*x/W); K and a stay.
  const net = pl.takenEquity + adjustment;
  a.target.margin -= pl.released;
  a.target.size -= d;
  if (a.target.size === 0n) {
    a.target = { ...EMPTY_POSITION };
    a.targetFree += net;
  } else a.target.margin += net;
  // What stays open of the liquidated position respects the minimum notional (dust remainder).
  const belowMinimum = (size: bigint) => size !== 0n && (size * price) / WAD < p.minNotional;
  if (belowMinimum(a.target.size)) {
    out.error = { name: "NotionalBelowMinimum", args: [target, (a.target.size * price) / WAD, p.minNotional] };
    return out;
  }
  // The liquidator's leg: a fill at P with `leverage`; the minimum notional applies to a partial take.
  const taken = s.target.isLong ? d : -d;
  const leg = applyFill(s.liquidator, taken, price, leverage, price, funding, p.imr);
  let free = s.liquidatorFree;
  if (leg.payout < 0n && free < -leg.payout) {
    out.error = { name: "InsufficientFreeCollateral", args: [liquidator, free, -leg.payout] };
    return out;
  }
  free += leg.payout;
  if (free < leg.posted) {
    out.error = { name: "InsufficientFreeCollateral", args: [liquidator, free, leg.posted] };
    return out;
  }
  free -= leg.posted;
  a.liquidator = leg.position;
  // A whole takeover moves a position that exists and is exempt; a partial one may not create dust.
  if (d !== s.target.size && belowMinimum(a.liquidator.size)) {
    out.error = {
      name: "NotionalBelowMinimum",
      args: [liquidator, (a.liquidator.size * price) / WAD, p.minNotional],
    };
    return out;
  }
  // Waiting never pays: the fee share (zero for a bankrupt part) plus the same fixed keeper pay.
  // keeperPay for the whole position, capped at the fund's share of the ordinary fee on the notional taken.
  const ordinary = feeUp(d, price, p.liquidationFee);
  const cap = ordinary - (ordinary * p.liquidatorShare) / WAD;
  // keeperPay only for a take of the most allowed now (all of a bankrupt position).
  const most = maxTake(
    s.target.size,
    equityOf(s.target.margin, s.target.size, pnlPerUnit(s.target.isLong, s.target.entry, price, funding)),
    price,
    p,
  );
  const keeperPay = p.keeperPay === undefined || d !== most ? 0n : p.keeperPay;
  const pay = keeperPay < cap ? keeperPay : cap;
  out.reward = pay < a.keeperReserve ? pay : a.keeperReserve;
  a.keeperReserve -= out.reward;
  a.liquidatorFree = free + pl.toLiquidator + out.reward;
  a.pendingFundFees += pl.toFund;
  return out;
}

/** Reads the parameters a liquidation uses. */
export async function liqParams(f: Fixture, id: string): Promise<LiqParams> {
  const m = await f.clearinghouse.marketParams(id);
  return {
    imr: m.imr,
    mmr: m.mmr,
    minNotional: m.minNotional,
    liquidationFee: m.liquidationFee,
    liquidatorShare: m.liquidatorShare,
    keeperPay: m.keeperPay,
  };
}

/** Equity and maintenance of a stored position at (P, F). */
export function health(pos: PositionRecord, price: bigint, funding: bigint, p: LiqParams) {
  const eq = equityOf(pos.margin, pos.size, pnlPerUnit(pos.isLong, pos.entry, price, funding));
  const maintenance = requirementUp(pos.size, price, p.mmr);
  return { eq, maintenance, liquidatable: pos.size > 0n && eq < maintenance };
}

/** Opens `size` between `long` (maker) and `short` at `price` (the index, so funding stays at 0). */
export { open as openAt } from "./clearinghouse";

/** Stakes `tokens` of `staker` into the insurance fund (ERC-4626 deposit). */
export async function stake(f: Fixture, staker: HardhatEthersSigner, tokens: bigint): Promise<void> {
  await (await f.token.connect(staker).approve(await f.insuranceFund.getAddress(), tokens)).wait();
  await (await f.insuranceFund.connect(staker).deposit(tokens, staker.address)).wait();
}

/** Everything a rejected liquidation must leave untouched. */
export async function fullSnapshot(f: Fixture, ids: string[], accounts: string[]): Promise<unknown> {
  const ch = f.clearinghouse;
  return {
    positions: await Promise.all(
      ids.flatMap((id) => accounts.map(async (a) => Array.from(await ch.getPosition(id, a)))),
    ),
    markets: await Promise.all(ids.map(async (id) => Array.from(await ch.marketState(id)))),
    reserves: await Promise.all(ids.map((id) => ch.roundingReserve(id))),
    free: await Promise.all(accounts.map((a) => ch.freeCollateral(a))),
    pendingFundFees: await ch.pendingFundFees(),
    treasuryBalance: await ch.treasuryBalance(),
    chTokens: await f.token.balanceOf(await ch.getAddress()),
    fundTokens: await f.token.balanceOf(await f.insuranceFund.getAddress()),
    fundSupply: await f.insuranceFund.totalSupply(),
  };
}

/**
 * Conservation (docs/mechanism.md section 5): returns dust = W*(balance - free - sum c - fund - treasury)
 * + sum s*K + Q_long*L_long + Q_short*L_short (treasury with the rounding and keeper reserves), after checking that every market's stored sum s*K equals the sum recomputed from
 * the positions, that open interest is balanced and that every open position has c > 0.
 */
export async function conservation(f: Fixture, ids: string[], accounts: string[]): Promise<bigint> {
  const ch = f.clearinghouse;
  const chTokens = await f.token.balanceOf(await ch.getAddress());
  const fundTokens = await f.token.balanceOf(await f.insuranceFund.getAddress());
  const balance = (chTokens + fundTokens) * SCALE;
  let free = 0n;
  for (const a of accounts) free += await ch.freeCollateral(a);
  const fund = fundTokens * SCALE + (await ch.pendingFundFees());
  let treasury = await ch.treasuryBalance();
  let sumC = 0n;
  let sumSK = 0n;
  for (const id of ids) {
    treasury += (await ch.roundingReserve(id)) + (await ch.keeperReserve(id));
    const st = await ch.marketState(id);
    let recomputed = 0n;
    let longs = 0n;
    let shorts = 0n;
    for (const a of accounts) {
      const pos = await positionOf(f, id, a);
      if (pos.size === 0n) continue;
      expect(pos.margin, `margin of ${a}`).to.be.greaterThan(0n);
      sumC += pos.margin;
      recomputed += contribution(pos);
      if (pos.isLong) longs += pos.size;
      else shorts += pos.size;
    }
    expect(st.sumSizeTimesEntry, "stored sum s*K").to.equal(recomputed);
    expect(st.longOpenInterest, "long OI").to.equal(longs);
    expect(st.shortOpenInterest, "short OI").to.equal(shorts);
    expect(longs, "open interest balanced").to.equal(shorts);
    sumSK += st.sumSizeTimesEntry + longs * st.lossIndexLong + shorts * st.lossIndexShort;
  }
  expect(fund, "fund never negative").to.be.greaterThanOrEqual(0n);
  return WAD * (balance - free - sumC - fund - treasury) + sumSK;
}

/**
 * Has `liquidator` take `d` of `target`'s position in `id` and checks against `predict`, to the
 * wei: both positions, both free balances, pending fund fees, treasury, rounding reserve, fund
 * and clearinghouse token balances, and the events with their values. The index price is read
 * from the oracle and F from the market state written by the call itself.
 */
export async function liquidateExactly(
  f: Fixture,
  id: string,
  target: string,
  liquidator: HardhatEthersSigner,
  d: bigint,
  leverage: bigint,
): Promise<Prediction> {
  const ch = f.clearinghouse;
  const p = await liqParams(f, id);
  const before = await readLiqState(f, id, target, liquidator.address);
  const [price] = await f.oracle.getPrice(id, true);
  const tx = await ch.connect(liquidator).liquidate(id, target, d, leverage);
  const receipt = (await tx.wait())!;
  const funding = (await ch.marketState(id)).cumulativeFunding;
  const pred = predict(before, id, target, liquidator.address, d, leverage, price, funding, p);
  expect(pred.error, "the mirror predicted a revert").to.equal(undefined);
  expect(await readLiqState(f, id, target, liquidator.address)).to.deep.equal(pred.after);
  await expect(tx)
    .to.emit(ch, "PositionLiquidated")
    .withArgs(id, target, liquidator.address, d, price, pred.plan.toLiquidator, pred.plan.toFund, pred.plan.fundPays);
  const names = receipt.logs.map((l) => ch.interface.parseLog(l)?.name);
  if (pred.plan.takenEquity < 0n) {
    await expect(tx).to.emit(ch, "BadDebtCovered").withArgs(id, target, pred.plan.fundPays, pred.plan.reservePays);
  } else expect(names).to.not.include("BadDebtCovered");
  if (pred.reward > 0n) await expect(tx).to.emit(ch, "KeeperRewardPaid").withArgs(id, liquidator.address, pred.reward);
  else expect(names).to.not.include("KeeperRewardPaid");
  return pred;
}

/** Latest block timestamp. */
export async function now(): Promise<bigint> {
  return BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
}

export { WAD, mulDivDown };
