/**
 * Review of what the admins can still do fast (docs/security.md, trust surface): the market
 * parameters are delayed and bounded, but pausing and the ADL timing (T, T_social) change at once.
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
  it("ATTACK (trusted role): a pause blocks the liquidation of B and the exit of its counterparty, while ADL still charges that counterparty", async function () {
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
    // The price keeps falling during the pause: B is bankrupt and the fund short; ADL runs in the
    // paused market and closes s1 with a charge (docs: "ADL settlement goes on").
    await f.setPrice(ETH, 1700n * WAD);
    const s1Before = (await ch.freeCollateral(s1.address)) + (await f.lens.equity(id, s1.address));
    const k = await keeperPlan(f, id, b.address);
    await (await f.deleverager.connect(f.keeper).deleverage(id, b.address, k.plan.counterparties, k.plan.proof)).wait();
    const s1After = (await ch.freeCollateral(s1.address)) + (await f.lens.equity(id, s1.address));
    const charged = s1Before - s1After;
    expect(charged, "s1 absorbs B's deficit, which a liquidation at 1,850 would have avoided").to.be.greaterThan(
      490n * WAD,
    );
    console.log(`      s1 charged ${charged / WAD} while unable to exit`);
  });

  it("ATTACK (trusted role): the ADL admin shortens T_social from 1 hour to 4 minutes at once", async function () {
    const f = await loadFixture(systemFixture);
    const [b, s1, , , , , , , , t9] = f.traders;
    const id = f.ethId;
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    expect(await f.deleverager.socialDelay(id)).to.equal(3600n);
    await (await f.deleverager.setSessionTtl(id, 120)).wait();
    await (await f.deleverager.setSocialDelay(id, 0)).wait();
    expect(await f.deleverager.socialDelay(id)).to.equal(240n);
    await f.setPrice(ETH, 1700n * WAD);
    await (await f.deleverager.reportUnsettled(id, b.address)).wait();
    await time.increase(240);
    await f.setPrice(ETH, 1700n * WAD);
    // ADL was possible all along (s1 eligible); 4 minutes later the deadline trigger socializes.
    await socializeExactly(f, id, b.address, t9, false);
  });
});
