/**
 * Review of the final layer (docs/mechanism.md section 7.6): `socializeLoss` and
 * `Liquidations.settleSocializedLoss`. Attacks that work assert the harmful outcome ("ATTACK: ...");
 * attacks that fail assert the revert or the unchanged property ("fails: ...").
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../../lib/math";
import { ETH, ETH_PRICE, USDC, systemFixture, type Fixture } from "../helpers/fixture";
import { keeperPlan, lev, pos, tradeAt, units, PENDING } from "../helpers/adl";
import { conservation } from "../helpers/liquidation";
import { accounts, noEligibleProof, socializeExactly } from "../helpers/social";

/** The book of test/adl/socialized-loss.test.ts: B = t0 short 1 at 2,000; late longs t2 (1) and t5 (3) at 2,900. */
async function noEligibleBook(f: Fixture) {
  const t = f.traders;
  await tradeAt(f, t[1], t[0], units(1), ETH_PRICE, { long: lev(2), short: lev(10) });
  await tradeAt(f, t[4], t[3], units(3), ETH_PRICE, { long: lev(2), short: lev(1) });
  await tradeAt(f, t[2], t[1], units(1), 2900n * WAD, { long: lev(10), short: lev(2) });
  await tradeAt(f, t[5], t[4], units(3), 2900n * WAD, { long: lev(10), short: lev(2) });
  await f.setPrice(ETH, 3100n * WAD);
}

async function impossible() {
  const f = await loadFixture(systemFixture);
  await noEligibleBook(f);
  return f;
}

/** B = t0 long 5 at 2,000 (10x, c = 1,000) against s1 = t1 short 5 at 2x: s1 stays eligible. */
async function eligibleBook() {
  const f = await loadFixture(systemFixture);
  const [b, s1] = f.traders;
  await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
  return f;
}

describe("review: socialized loss", function () {
  it("stale unsettled clock: a position bankrupt again after a top-up gets a fresh T_social of ADL priority", async function () {
    const f = await eligibleBook();
    const [b, s1, , , , , , , , t9] = f.traders;
    const id = f.ethId;
    const del = f.deleverager;
    // 1. B is briefly bankrupt (equity -500) with the fund short: anyone reports it.
    await f.setPrice(ETH, 1700n * WAD);
    await (await del.reportUnsettled(id, b.address)).wait();
    // 2. B's owner tops up (equity +100). Nobody calls the unpaid clearUnsettled: B stays listed.
    await (await f.clearinghouse.connect(b).addMargin(id, 600n * WAD)).wait();
    expect(await f.lens.isBankrupt(id, b.address)).to.equal(false);
    const [listed] = await del.unsettled(id);
    expect(listed).to.include(b.address);
    // 3. Days later the price falls again: B is bankrupt NOW, and ADL is possible (s1 is eligible).
    await time.increase(3 * 24 * 3600);
    await f.setPrice(ETH, 1600n * WAD);
    expect(await f.lens.isBankrupt(id, b.address)).to.equal(true);
    const k = await keeperPlan(f, id, b.address);
    expect(k.plan.counterparties).to.deep.equal([s1.address]);
    // 4. The old clock was started for another position (the top-up changed a): it does not count.
    await expect(del.connect(t9).socializeLoss(id, b.address, []))
      .to.be.revertedWithCustomError(del, "AdlSocialTooEarly")
      .withArgs(id, b.address, 0n);
    // A fresh report restarts the clock for this position: ADL has T_social of priority again.
    await (await del.reportUnsettled(id, b.address)).wait();
    const since = await del.unsettledSince(id, b.address);
    expect(since).to.equal(BigInt(await time.latest()));
    await expect(del.connect(t9).socializeLoss(id, b.address, []))
      .to.be.revertedWithCustomError(del, "AdlSocialTooEarly")
      .withArgs(id, b.address, since + (await del.socialDelay(id)));
    const again = await keeperPlan(f, id, b.address);
    await (await del.connect(f.keeper).deleverage(id, b.address, again.plan.counterparties, again.plan.proof)).wait();
    expect((await pos(f, id, b.address)).size).to.equal(0n);
  });

  it("ATTACK (open, documented): a charged winner exits before the trigger and pays nothing; the one left is charged 4x and bankrupted", async function () {
    const f = await impossible();
    const [b, , t2, t3, , t5, , , , t9] = f.traders;
    const id = f.ethId;
    const ch = f.clearinghouse;
    const wealth = async (a: string) => (await ch.freeCollateral(a)) + (await f.lens.equity(id, a, PENDING));

    // Baseline: socialized at once, the 4 long units share D - A.
    const snap = await takeSnapshot();
    const t5Before = await wealth(t5.address);
    const base = await socializeExactly(f, id, b.address, t9);
    const t5Charged = t5Before - (await wealth(t5.address));
    expect(t5Charged).to.be.greaterThan(600n * WAD); // 3 units x ~224
    expect(await f.lens.equity(id, t2.address, PENDING)).to.be.greaterThan(0n);
    await snap.restore();

    // Attack: B's deficit is public (unsettled list, equity views). t5 sells its 3 units to the
    // short t3 first (one taker fee, 4.65), so the socialization charges only t2's 1 unit.
    const t5Start = await wealth(t5.address);
    await tradeAt(f, t3, t5, units(3), 3100n * WAD, { long: lev(2), short: lev(2) });
    const t5Exit = t5Start - (await wealth(t5.address));
    expect(t5Exit).to.equal((9300n * WAD * 5n) / 10000n); // the taker fee only
    const attacked = await socializeExactly(f, id, b.address, t9);
    expect(attacked.step, "t2 alone carries the whole D - A").to.be.greaterThan(3n * base.step);
    expect(await f.lens.equity(id, t2.address, PENDING), "t2 bankrupted by the charge").to.be.lessThan(0n);
    console.log(
      `      t5 saves ${(t5Charged - t5Exit) / WAD} for a fee of ${t5Exit / WAD}; step ${base.step / WAD} -> ${attacked.step / WAD} per unit`,
    );
  });

  it("fails: an empty-list proof that prunes a node holding an eligible position is refused", async function () {
    const f = await eligibleBook();
    const [b, , , , , , , , , t9] = f.traders;
    const id = f.ethId;
    await f.setPrice(ETH, 1700n * WAD);
    const root = [{ level: 14, position: 0, open: false, members: [] }];
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, root))
      .to.be.revertedWithCustomError(f.deleverager, "AdlNodeNotPrunable")
      .withArgs(14, 0);
    // Opening the eligible member's leaf without listing it: count mismatch.
    const call = await noEligibleProof(f, id, b.address);
    const opened = call.proof.map((n) => ({ ...n, members: n.open ? [] : n.members }));
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, opened)).to.be.revertedWithCustomError(
      f.deleverager,
      "AdlLeafCountMismatch",
    );
  });

  it("fails: no socialization while any session is open in the market, on either side", async function () {
    const f = await eligibleBook();
    const [b, s1, , , , , , , , t9] = f.traders;
    const id = f.ethId;
    await f.setPrice(ETH, 1700n * WAD);
    await (await f.deleverager.connect(t9).openAdlSession(id, b.address, [s1.address])).wait();
    await expect(
      f.deleverager.connect(t9).socializeLoss(id, b.address, [{ level: 14, position: 0, open: false, members: [] }]),
    ).to.be.revertedWithCustomError(f.deleverager, "AdlSessionActive");
  });

  it("fails: the extended identity holds through socialization, every charged position closing, and the taker closing", async function () {
    const f = await impossible();
    const [b, , t2, t3, t4, t5, t6, , , t9] = f.traders;
    const id = f.ethId;
    const extra: string[] = [];
    await socializeExactly(f, id, b.address, t9);
    const dust0 = await conservation(f, [f.ethId, f.btcId], accounts(f, extra));
    // t2 and t5 (charged longs) sell out to t3 and t6; the taker (t9, short 1 at 3,100) buys back from t4.
    await tradeAt(f, t3, t2, units(1), 3100n * WAD, { long: lev(2), short: lev(2) });
    await tradeAt(f, t3, t5, units(2), 3100n * WAD, { long: lev(2), short: lev(2) });
    await tradeAt(f, t6, t5, units(1), 3100n * WAD, { long: lev(2), short: lev(2) });
    await tradeAt(f, t9, t4, units(1), 3100n * WAD, { long: lev(2), short: lev(2) });
    const dust1 = await conservation(f, [f.ethId, f.btcId], accounts(f, extra));
    expect(dust1).to.be.greaterThanOrEqual(dust0);
    expect(dust1 - dust0).to.be.lessThan(10n * WAD);
    for (const a of [t2, t5]) expect((await pos(f, id, a.address)).size).to.equal(0n);
  });

  it("fails: the fund is never bypassed: a stake that covers D turns socialization into AdlFundSufficient", async function () {
    const f = await impossible();
    const [b, , , , , , , , t8, t9] = f.traders;
    const id = f.ethId;
    const call = await noEligibleProof(f, id, b.address);
    const fund = await f.insuranceFund.getAddress();
    await (await f.token.connect(t8).approve(fund, ethers.MaxUint256)).wait();
    await (await f.insuranceFund.connect(t8).deposit(1_000n * USDC, t8.address)).wait();
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, call.proof)).to.be.revertedWithCustomError(
      f.deleverager,
      "AdlFundSufficient",
    );
  });
});
