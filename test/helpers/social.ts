/**
 * Helpers of the socialized-loss tests (docs/mechanism.md section 7.6): the empty-list proof and the
 * call's values as a keeper computes them, and `socializeExactly`, which sends the call and checks
 * its effects to the wei.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { adlDelta, buildNoEligibleProof, fromEvents, planDeleverage } from "../../lib/adl";
import { WAD, divFloor, mulDivUp } from "../../lib/math";
import type { Fixture } from "./fixture";
import { fundAvailable, pos, PENDING } from "./adl";
import { conservation } from "./liquidation";

const LONGS = true;
const SHORTS = false;

/** Equity c + floor(q * x / W) of a stored position at (P, F of its side). */
export function equityAt(
  p: { isLong: boolean; size: bigint; entry: bigint; margin: bigint },
  price: bigint,
  f: bigint,
) {
  const x = p.isLong ? price - f - p.entry : p.entry - (price - f);
  return p.margin + divFloor(p.size * x, WAD);
}

/** Both sides' F (loss indices folded in) at the pending block, and the index price. */
export async function pendingView(f: Fixture, id: string) {
  const [price] = await f.oracle.getPrice(id, true, PENDING);
  return {
    price,
    fundingLong: await f.lens.currentSideFunding(id, LONGS, PENDING),
    fundingShort: await f.lens.currentSideFunding(id, SHORTS, PENDING),
  };
}

/** The empty-list proof over the counterparties' tree of `bankrupt`, and the call's D, cover and delta. */
export async function noEligibleProof(f: Fixture, id: string, bankrupt: string) {
  const book = await fromEvents(f.clearinghouse, f.deleverager, 0, await ethers.provider.getBlockNumber());
  const v = await pendingView(f, id);
  const b = await pos(f, id, bankrupt);
  const side = !b.isLong;
  const own = b.isLong ? v.fundingLong : v.fundingShort;
  const theirs = side ? v.fundingLong : v.fundingShort;
  const d = adlDelta(book, id, bankrupt, v.price, own, await fundAvailable(f));
  return {
    ...v,
    ...d,
    side,
    plan: planDeleverage(book, id, bankrupt, v.price, theirs, d.delta),
    proof: buildNoEligibleProof(book, id, side, v.price, theirs, d.delta),
  };
}

/** Everyone whose money the identity must count: the traders and the keeper. */
export const accounts = (f: Fixture, extra: string[] = []) => [
  ...f.traders.map((t) => t.address),
  f.keeper.address,
  ...extra,
];

/**
 * Sends `socializeLoss` from `caller` and checks the clearinghouse against the section 7.6 rules to
 * the wei: L_side += ceil(D_rem * W / Q), the rounding to the fund, B closed with its free collateral
 * unchanged, the caller holding B's position at P with the initial margin, keeper pay, events,
 * every charged position's equity lowered by its share, and conservation with the loss indices.
 */
export async function socializeExactly(
  f: Fixture,
  id: string,
  bankrupt: string,
  caller: HardhatEthersSigner,
  proof = true,
  /** Accounts beyond the traders and the keeper that hold money (for the conservation sums). */
  extra: string[] = [],
) {
  const ch = f.clearinghouse;
  const call = await noEligibleProof(f, id, bankrupt);
  const b = await pos(f, id, bankrupt);
  const st = await ch.marketState(id);
  const params = await ch.marketParams(id);
  const charged = call.side;
  const openInterest = charged ? st.longOpenInterest : st.shortOpenInterest;
  const remaining = call.deficit - call.covered;
  const step = mulDivUp(remaining, WAD, openInterest);
  const toFund = (step * openInterest - remaining * WAD) / WAD;
  const lossBefore = charged ? st.lossIndexLong : st.lossIndexShort;
  const reserve = await ch.keeperReserve(id);
  const pay = params.keeperPay < reserve ? params.keeperPay : reserve;
  const freeBefore = { bankrupt: await ch.freeCollateral(bankrupt), caller: await ch.freeCollateral(caller.address) };
  const others = [...f.traders.map((t) => t.address), ...extra].filter((a) => a !== bankrupt && a !== caller.address);
  const equityBefore = new Map<string, bigint>();
  for (const a of others) equityBefore.set(a, await f.lens.equity(id, a));
  const dustBefore = await conservation(f, [f.ethId, f.btcId], accounts(f, extra));

  const tx = await f.deleverager.connect(caller).socializeLoss(id, bankrupt, proof ? call.proof : []);
  const receipt = (await tx.wait())!;

  await expect(tx)
    .to.emit(ch, "LossSocialized")
    .withArgs(
      id,
      bankrupt,
      caller.address,
      charged,
      b.size,
      call.price,
      call.covered,
      remaining,
      openInterest,
      lossBefore + step,
      toFund,
    );
  await expect(tx).to.emit(f.deleverager, "LossSocializationTriggered").withArgs(id, bankrupt, caller.address, !proof);
  const after = await ch.marketState(id);
  expect(charged ? after.lossIndexLong : after.lossIndexShort, "loss index of the charged side").to.equal(
    lossBefore + step,
  );
  expect(await pos(f, id, bankrupt), "B closed").to.include({ size: 0n });
  expect(await ch.freeCollateral(bankrupt), "B's free collateral untouched").to.equal(freeBefore.bankrupt);
  // The caller holds B's size on B's side at P (K = P - F of that side), with the initial margin.
  const taken = await pos(f, id, caller.address);
  const ownF = b.isLong ? call.fundingLong : call.fundingShort;
  expect(taken).to.include({ isLong: b.isLong, size: b.size, entry: call.price - ownF });
  const initial = mulDivUp(mulDivUp(b.size, call.price, WAD), params.imr, WAD);
  expect(taken.margin, "the initial margin of the takeover").to.equal(initial);
  expect(await ch.freeCollateral(caller.address)).to.equal(freeBefore.caller - initial + pay);
  // Every charged position is valued at its side's F + step: its equity fell by its share, rounded down.
  const view = await pendingView(f, id);
  for (const a of others) {
    const p = await pos(f, id, a);
    if (p.size === 0n) continue;
    const sideF = p.isLong ? view.fundingLong : view.fundingShort;
    const before = equityBefore.get(a)!;
    const now = equityAt(p, view.price, sideF);
    expect(await f.lens.equity(id, a, PENDING), `lens equity of ${a}`).to.equal(now);
    if (p.isLong === charged) {
      const chargeReal = p.size * step; // 36 decimals
      expect(before - now, `charge of ${a}`).to.be.within(chargeReal / WAD, chargeReal / WAD + 1n);
    } else expect(now, `unchanged ${a}`).to.equal(before);
  }
  const dustAfter = await conservation(f, [f.ethId, f.btcId], accounts(f, extra));
  expect(dustAfter, "conservation with the loss indices: dust never shrinks").to.be.greaterThanOrEqual(dustBefore);
  expect(dustAfter - dustBefore, "and grows by less than a few wei").to.be.lessThan(10n * WAD);
  const [unsettled] = await f.deleverager.unsettled(id);
  expect(unsettled).to.not.include(bankrupt);
  return { call, step, receipt };
}
