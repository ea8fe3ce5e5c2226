/**
 * ADL session test helpers: the session book, the keeper's session proof (lib/adl-session.ts), the
 * docs/mechanism.md section 5 invariants checked after every step, and an exact check of a finish against the
 * spec-level prediction of test/helpers/adl.ts at the pinned subsidy per unit.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionReceipt } from "ethers";
import { fromEvents, type ProofNode } from "../../lib/adl";
import { buildProofFrom, readSession, splitProof, type SessionState, type SplitLimits } from "../../lib/adl-session";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { WAD, mulDivUp } from "../../lib/math";
import { leverageUp } from "../../lib/position";
import { leafOf } from "../../lib/rank-tree";
import { positionScore } from "../../lib/score";
import { compareWithHead, headOfQueue, rankOpposite, type RefPosition } from "../../lib/reference-ranking";
import { ETH, ETH_PRICE, SCALE, USDC, systemFixture, type Fixture } from "./fixture";
import { conservation } from "./liquidation";
import { PENDING, everyone, fundAvailable, lev, pos, predictDeleverage, readAdlState, tradeAt, units } from "./adl";
import { open, signed, submit } from "./clearinghouse";

export const GAP = 1400n * WAD;
/** Per-call bounds far below the gas cap but above any proof here: only the session test lowers them. */
export const WIDE: SplitLimits = { gasBudget: 30_000_000, maxProofNodes: 512, maxOpenedMembers: 2000 };

/**
 * B = t0 long 10 at 2,000 with 10x; shorts at 2,000: t3 4 @5x, t2 3 @3x, t1 5 @2x, t5 1 @2x (t1 and
 * t5 share a leaf and tie on score), t6 1 @1x; a late short t4 2 @10x at 1,450 (ineligible at 1,400);
 * longs t9 and t8 at 2x take the rest. Then the index gaps to 1,400: B is bankrupt, the fund holds only
 * the fund share of the fees. The head is t3, t2, then the lower address of t1 and t5.
 */
export async function sessionBook(): Promise<Fixture> {
  const f = await systemFixture();
  const t = f.traders;
  await tradeAt(f, t[0], t[3], units(4), ETH_PRICE, { long: lev(10), short: lev(5) });
  await tradeAt(f, t[0], t[2], units(3), ETH_PRICE, { long: lev(10), short: lev(3) });
  await tradeAt(f, t[0], t[1], units(3), ETH_PRICE, { long: lev(10), short: lev(2) });
  await tradeAt(f, t[9], t[1], units(2), ETH_PRICE, { long: lev(2), short: lev(2) });
  await tradeAt(f, t[9], t[5], units(1), ETH_PRICE, { long: lev(2), short: lev(2) });
  await tradeAt(f, t[9], t[6], units(1), ETH_PRICE, { long: lev(2), short: lev(1) });
  await tradeAt(f, t[8], t[4], units(2), 1450n * WAD, { long: lev(2), short: lev(10) });
  await f.setPrice(ETH, GAP);
  return f;
}

/** The two traders sharing a leaf with equal scores, ascending by address. */
export const tie = (f: Fixture): [HardhatEthersSigner, HardhatEthersSigner] => {
  const [a, b] = [f.traders[1], f.traders[5]];
  return BigInt(a.address) < BigInt(b.address) ? [a, b] : [b, a];
};

/** Accounts created by traderBelow (harmless once a fixture reverted them: nothing held). */
const extraAccounts: string[] = [];

/** Every account that can hold collateral in the scenarios: traders, keeper, admin, extra traders. */
export async function accountsOf(f: Fixture): Promise<string[]> {
  return [...everyone(f), f.keeper.address, await f.admin.getAddress(), ...extraAccounts];
}

/**
 * docs/mechanism.md section 5, checked from storage: exact conservation with dust that never shrinks, open
 * interest balanced per market, every open position with c > 0, the fund holding at least its
 * reserves. Returns the dust, to pass back in as `previousDust` after the next step.
 */
export async function checkInvariants(f: Fixture, previousDust?: bigint): Promise<bigint> {
  const accounts = await accountsOf(f);
  const ids = [f.ethId, f.btcId];
  const dust = await conservation(f, ids, accounts);
  expect(dust, "conservation dust").to.be.greaterThanOrEqual(0n);
  if (previousDust !== undefined) expect(dust, "dust never shrinks").to.be.greaterThanOrEqual(previousDust);
  for (const id of ids) {
    const s = await f.clearinghouse.marketState(id);
    expect(s.longOpenInterest, "open interest balanced").to.equal(s.shortOpenInterest);
    let longs = 0n;
    for (const a of accounts) {
      const p = await f.clearinghouse.getPosition(id, a);
      if (p.size === 0n) continue;
      expect(p.margin, `c > 0 for ${a}`).to.be.greaterThan(0n);
      if (p.isLong) longs += p.size;
    }
    expect(longs, "long sizes sum to the open interest").to.equal(s.longOpenInterest);
  }
  expect(await f.insuranceFund.balance()).to.be.greaterThanOrEqual(await f.insuranceFund.totalReserved());
  return dust;
}

/** The fund reserve key of a session: (market, counterparty side, session id) (AdlSessionLib._reserveKey). */
export const reserveKey = (id: string, side: boolean, sessionId: bigint): string =>
  ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["bytes32", "bool", "uint256"], [id, side, sessionId]));

/** The remaining proof of the open session, from its cursor, split within `limits`. */
export async function sessionProofTxs(
  f: Fixture,
  id: string,
  side: boolean,
  limits: SplitLimits = WIDE,
): Promise<{ session: SessionState; txs: ProofNode[][] }> {
  const session = await readSession(f.deleverager, id, side);
  const book = await fromEvents(f.clearinghouse, f.deleverager, 0, await ethers.provider.getBlockNumber());
  const proof = buildProofFrom(book, id, side, session, session.cursor, session.held ? session.heldLast : undefined);
  return { session, txs: splitProof(proof, limits) };
}

/** Sends every remaining continue transaction; checks the invariants after each. Returns gas used. */
export async function continueAll(
  f: Fixture,
  id: string,
  side: boolean,
  limits: SplitLimits = WIDE,
): Promise<bigint[]> {
  const gas: bigint[] = [];
  for (;;) {
    const { session, txs } = await sessionProofTxs(f, id, side, limits);
    if (session.cursor >= 1 << 14 && !session.held) return gas;
    const tx = await f.deleverager.connect(f.keeper).continueAdlSession(id, side, txs[0]);
    gas.push((await tx.wait())!.gasUsed);
    await checkInvariants(f);
  }
}

/**
 * Sends finishAdlSession and checks it to the wei against predictDeleverage at the current (P, F)
 * with the fund paying floor(sigma * d / W) at the session's pinned sigma: positions, free collateral,
 * pending fees, fund tokens, rounding reserve and treasury; the finisher's keeperPay from the keeper
 * reserve (when the finish closes at least the minimum notional or all of B) and the bond back to
 * the opener's free collateral; the events (each entry's score at the pinned values); the session
 * and its reserve gone.
 */
export async function finishExactly(
  f: Fixture,
  id: string,
  side: boolean,
): Promise<{ receipt: ContractTransactionReceipt; d: bigint; fundPays: bigint }> {
  const s = await readSession(f.deleverager, id, side);
  const accounts = await accountsOf(f);
  const before = await readAdlState(f, id, accounts);
  const [price] = await f.oracle.getPrice(id, true, PENDING);
  const funding = await f.lens.currentFunding(id, PENDING);
  // At finish the reserve returns to what the fund can pay before the fund pays.
  const available = (await fundAvailable(f)) + s.reserveTokens * SCALE;
  const params = await f.clearinghouse.marketParams(id);
  const prediction = predictDeleverage(
    before,
    s.bankrupt,
    s.entries,
    price,
    funding,
    available,
    {
      keeper: f.keeper.address,
      keeperPay: params.keeperPay,
      minNotional: params.minNotional,
    },
    s.sigma,
  );
  // The opener's bond comes back as a deposit to its free collateral.
  if (s.bondTokens !== 0n) {
    prediction.after.free.set(s.opener, prediction.after.free.get(s.opener)! + s.bondTokens * SCALE);
  }
  const dust = await checkInvariants(f);
  const tx = await f.deleverager.connect(f.keeper).finishAdlSession(id, side);
  const receipt = (await tx.wait())!;
  expect(await readAdlState(f, id, accounts)).to.deep.equal(prediction.after);
  expect(await f.clearinghouse.keeperReserve(id)).to.equal(before.keeperReserve - prediction.reward);
  const live = s.entries.filter((a) => before.positions.get(a)!.size !== 0n);
  const legs = receipt.logs
    .map((l) => f.deleverager.interface.parseLog(l))
    .filter((e) => e?.name === "CounterpartyDeleveraged")
    .map((e) => e!.args);
  expect(legs.map((e) => e.counterparty)).to.deep.equal(live.slice(0, legs.length));
  for (const [i, e] of legs.entries()) {
    expect([e.size, e.price, e.charged]).to.deep.equal([prediction.takes[i], price, prediction.charges[i]]);
    expect(e.score, "score at the pinned values").to.equal(scoreAt(before.positions.get(e.counterparty)!, s));
  }
  // docs/mechanism.md section 5: the settled entries are the exact head of the eligible queue as an
  // independent reference ranks it at the session's pinned (P, F, delta), on the sizes at finish.
  const refs: RefPosition[] = [...before.positions.entries()].map(([account, p]) => ({ account, ...p }));
  const reference = rankOpposite(
    refs,
    { account: s.bankrupt, ...before.positions.get(s.bankrupt)! },
    s.price,
    s.funding,
    s.delta,
  );
  const head = headOfQueue(reference.queue, before.positions.get(s.bankrupt)!.size, legs.length);
  const executed = legs.map((e) => ({
    account: e.counterparty,
    take: e.size,
    score: e.score,
    queuePosition: e.queuePosition,
  }));
  expect(compareWithHead(executed, head), "the list is the reference head").to.deep.equal([]);
  await expect(tx).to.emit(f.deleverager, "AdlSessionFinished").withArgs(id, side, s.id, prediction.d);
  expect((await readSession(f.deleverager, id, side)).id).to.equal(0n);
  expect(await f.insuranceFund.reserveOf(reserveKey(id, side, s.id))).to.equal(0n);
  await checkInvariants(f, dust);
  return { receipt, d: prediction.d, fundPays: prediction.fundPays };
}

const scoreAt = (p: { isLong: boolean; leverage: bigint; entry: bigint }, s: SessionState): bigint =>
  positionScore(p.isLong, p.leverage, p.entry, s.price, s.funding).value;

/** Fills `size` between `long` and `short` at `price` with the index set there first (a matched trade). */
export async function fillAt(
  f: Fixture,
  long: HardhatEthersSigner,
  short: HardhatEthersSigner,
  size: bigint,
  price: bigint,
  leverage: { long?: bigint; short?: bigint } = {},
): Promise<void> {
  await f.setPrice(ETH, price);
  await open(f, f.ethId, long, short, size, price, leverage);
}

/** The matchOrders transaction of a fill (to assert on its revert), the index set to `price` first. */
export async function fillTx(
  f: Fixture,
  long: HardhatEthersSigner,
  short: HardhatEthersSigner,
  size: bigint,
  price: bigint,
  leverage: { long?: bigint; short?: bigint } = {},
) {
  await f.setPrice(ETH, price);
  const ch = f.clearinghouse;
  const maker = await signed(ch, long, { marketId: f.ethId, size, limitPrice: price, leverage: leverage.long });
  const taker = await signed(ch, short, {
    marketId: f.ethId,
    size: -size,
    limitPrice: price,
    leverage: leverage.short,
  });
  return submit(ch, f.keeper, maker, taker, size);
}

/**
 * A trader whose address is below `below` (and not `skip`): the first of a fixed sequence of keys that
 * qualifies, with 100,000 deposited for it. It signs orders only; the keeper submits them.
 */
export async function traderBelow(f: Fixture, below: string, skip?: string): Promise<HardhatEthersSigner> {
  for (let i = 0; ; i++) {
    const w = new ethers.Wallet(ethers.keccak256(ethers.toUtf8Bytes(`session-joiner-${i}`)), ethers.provider);
    if (BigInt(w.address) >= BigInt(below) || w.address === skip) continue;
    const amount = 100_000n * USDC;
    await (await f.token.mint(await f.admin.getAddress(), amount)).wait();
    await (await f.token.connect(f.admin).approve(await f.clearinghouse.getAddress(), amount)).wait();
    await (await f.clearinghouse.connect(f.admin).deposit(w.address, amount)).wait();
    if (!extraAccounts.includes(w.address)) extraAccounts.push(w.address);
    return w as unknown as HardhatEthersSigner;
  }
}

/**
 * The session book with the tie's leaf made stale: t7 opens a short with the largest a that still lands
 * in that leaf, then closes it, so the leaf keeps t7's looser record over its two remaining members;
 * then the price gaps to GAP.
 */
export async function staleLeaf() {
  const f = await loadFixture(sessionBook);
  const t = f.traders;
  const id = f.ethId;
  const [a, b] = tie(f);
  const leaf = Number((await pos(f, id, a.address)).leaf);
  const kRef = Number(await f.deleverager.kRef(id));
  const size = units(1);
  let staleLev = 0n;
  for (let l = 201; l <= 400; l++) {
    const leverage = (BigInt(l) * WAD) / 100n;
    const aValue = leverageUp(size, mulDivUp(size, ETH_PRICE, leverage));
    if (leafOf(aValue, ETH_PRICE, kRef) === leaf) staleLev = leverage;
  }
  expect(staleLev, "a larger a in the same leaf").to.be.greaterThan(2n * WAD);
  await fillAt(f, t[8], t[7], size, ETH_PRICE, { long: lev(2), short: staleLev });
  expect(Number((await pos(f, id, t[7].address)).leaf)).to.equal(leaf);
  await fillAt(f, t[7], t[8], size, ETH_PRICE);
  await f.setPrice(ETH, GAP);
  return { f, t, id, a, b, leaf };
}
