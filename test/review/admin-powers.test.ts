/**
 * Review findings on what the admins can do fast (docs/security.md, trust surface), as regression
 * tests: a pause stops ADL and socialized loss as well as liquidation and exits, so a counterparty
 * that cannot exit is not charged; and however T and T_social are configured, ADL keeps priority for
 * at least an hour before the deadline trigger.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../../lib/math";
import { ETH, ETH_PRICE, systemFixture } from "../helpers/fixture";
import { keeperPlan, lev, tradeAt, units } from "../helpers/adl";
import { signed, submit } from "../helpers/clearinghouse";
import { socializeExactly } from "../helpers/social";

describe("review: admin powers", function () {
  it("pause then charge: a pause that blocks the liquidation of B and the exit of its counterparty blocks ADL and socialized loss too", async function () {
    const f = await loadFixture(systemFixture);
    const [admin] = await ethers.getSigners();
    const [b, s1, , , , , , , , t9] = f.traders;
    const id = f.ethId;
    const ch = f.clearinghouse;
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    // B liquidatable and still solvent at 1,850 (equity 250 < maintenance 462.5).
    await f.setPrice(ETH, 1850n * WAD);
    expect(await f.lens.isLiquidatable(id, b.address)).to.equal(true);
    await (await ch.connect(admin).setPaused(id, true)).wait();
    await expect(ch.connect(t9).liquidate(id, b.address, units(1), 5n * WAD)).to.be.revertedWithCustomError(
      ch,
      "MarketIsPaused",
    );
    // s1 cannot close its short either.
    const close = await signed(ch, s1, { marketId: id, size: units(5), limitPrice: 1850n * WAD, leverage: lev(2) });
    const other = await signed(ch, t9, { marketId: id, size: -units(5), limitPrice: 1850n * WAD, leverage: lev(2) });
    await expect(submit(ch, f.keeper, close, other, units(5))).to.be.revertedWithCustomError(ch, "MarketIsPaused");
    // The price keeps falling during the pause: B is bankrupt and the fund short. No forced
    // settlement runs in the paused market: ADL and the final layer revert with MarketIsPaused.
    await f.setPrice(ETH, 1700n * WAD);
    const s1Before = (await ch.freeCollateral(s1.address)) + (await f.lens.equity(id, s1.address));
    const k = await keeperPlan(f, id, b.address);
    await expect(
      f.deleverager.connect(f.keeper).deleverage(id, b.address, k.plan.counterparties, k.plan.proof),
    ).to.be.revertedWithCustomError(ch, "MarketIsPaused");
    await (await f.deleverager.reportUnsettled(id, b.address)).wait();
    await time.increase(await f.deleverager.socialDelay(id));
    await f.setPrice(ETH, 1700n * WAD);
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, [])).to.be.revertedWithCustomError(
      ch,
      "MarketIsPaused",
    );
    expect((await ch.freeCollateral(s1.address)) + (await f.lens.equity(id, s1.address))).to.equal(s1Before);
    // Unpaused, settlement resumes: s1 can now also exit, or be deleveraged.
    await (await ch.connect(admin).setPaused(id, false)).wait();
    const again = await keeperPlan(f, id, b.address);
    await (
      await f.deleverager.connect(f.keeper).deleverage(id, b.address, again.plan.counterparties, again.plan.proof)
    ).wait();
  });

  it("short social delay: the ADL admin cannot bring T_social under one hour, so ADL keeps its priority", async function () {
    const f = await loadFixture(systemFixture);
    const [b, s1, , , , , , , , t9] = f.traders;
    const id = f.ethId;
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    expect(await f.deleverager.socialDelay(id)).to.equal(3600n);
    await (await f.deleverager.setSessionTtl(id, 120)).wait();
    await (await f.deleverager.setSocialDelay(id, 0)).wait();
    // 2T would be 4 minutes; the floor keeps the hour.
    expect(await f.deleverager.socialDelay(id)).to.equal(3600n);
    await f.setPrice(ETH, 1700n * WAD);
    await (await f.deleverager.reportUnsettled(id, b.address)).wait();
    const since = await f.deleverager.unsettledSince(id, b.address);
    await time.increase(240);
    await f.setPrice(ETH, 1700n * WAD);
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, []))
      .to.be.revertedWithCustomError(f.deleverager, "AdlSocialTooEarly")
      .withArgs(id, b.address, since + 3600n);
    await time.setNextBlockTimestamp(since + 3600n - 1n);
    await f.setPrice(ETH, 1700n * WAD);
    await time.setNextBlockTimestamp(since + 3600n);
    await socializeExactly(f, id, b.address, t9, false);
  });
});
