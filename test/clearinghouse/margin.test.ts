import { expect } from "chai";
import { leafOf } from "../../lib/rank-tree";
import { bandReference } from "../../lib/local";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, type Fixture } from "../helpers/fixture";
import { open, positionOf, snapshot, expectUnchanged } from "../helpers/clearinghouse";
import { WAD } from "../../lib/math";
import { leverageUp, marginShortfall, pnlPerUnit } from "../../lib/position";

/** Alice long 1 ETH and Bob short 1 ETH at 2,000, both at 5x: c = 400 each. */
async function openedFixture(): Promise<Fixture> {
  const f = await systemFixture();
  await open(f, f.ethId, f.traders[0], f.traders[1], WAD, ETH_PRICE);
  return f;
}

describe("Clearinghouse margin", function () {
  describe("addMargin", function () {
    it("moves margin from free collateral and lowers leverage to exactly ceil(q*W/c)", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      const free = await ch.freeCollateral(alice.address);
      const before = await positionOf(ch, f.ethId, alice.address);
      expect(before.leverage).to.equal(leverageUp(WAD, 400n * WAD));
      const amount = 33n * WAD + 7n; // 1e36 / 433.000...007e18 is not an integer: a rounds up
      await ch.connect(alice).addMargin(f.ethId, amount);
      const after = await positionOf(ch, f.ethId, alice.address);
      const a = leverageUp(WAD, 400n * WAD + amount);
      expect((WAD * WAD) % (400n * WAD + amount)).to.not.equal(0n);
      expect(after).to.deep.equal({ ...before, margin: 400n * WAD + amount, leverage: a });
      expect(after.leverage).to.be.lessThan(before.leverage);
      expect(await ch.freeCollateral(alice.address)).to.equal(free - amount);
    });

    it("emits MarginMoved with the amount and PositionChanged with the whole record", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const tx = f.clearinghouse.connect(alice).addMargin(f.ethId, 100n * WAD);
      await expect(tx)
        .to.emit(f.clearinghouse, "MarginMoved")
        .withArgs(f.ethId, alice.address, 100n * WAD);
      await expect(tx)
        .to.emit(f.clearinghouse, "PositionChanged")
        .withArgs(
          f.ethId,
          alice.address,
          true,
          WAD,
          ETH_PRICE,
          500n * WAD,
          leverageUp(WAD, 500n * WAD),
          leafOf(leverageUp(WAD, 500n * WAD), ETH_PRICE, bandReference(ETH_PRICE)),
          0,
          0,
        );
    });

    it("keeps working while the market is paused", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      await f.clearinghouse.setPaused(f.ethId, true);
      await f.clearinghouse.connect(alice).addMargin(f.ethId, 10n * WAD);
      expect((await positionOf(f.clearinghouse, f.ethId, alice.address)).margin).to.equal(410n * WAD);
    });

    it("reverts InsufficientFreeCollateral when free collateral is short", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const free = await f.clearinghouse.freeCollateral(alice.address);
      const before = await snapshot(f.clearinghouse, [f.ethId], [alice.address]);
      await expect(f.clearinghouse.connect(alice).addMargin(f.ethId, free + 1n))
        .to.be.revertedWithCustomError(f.clearinghouse, "InsufficientFreeCollateral")
        .withArgs(alice.address, free, free + 1n);
      await expectUnchanged(before, f.clearinghouse, [f.ethId], [alice.address]);
    });

    it("reverts PositionNotFound without a position, ZeroAmount for zero and MarketUnknown for an unlisted market", async function () {
      const f = await loadFixture(openedFixture);
      const [alice, , carol] = f.traders;
      const ch = f.clearinghouse;
      const unknown = "0x" + "ab".repeat(32);
      const before = await snapshot(ch, [f.ethId], [alice.address, carol.address]);
      await expect(ch.connect(carol).addMargin(f.ethId, WAD))
        .to.be.revertedWithCustomError(ch, "PositionNotFound")
        .withArgs(f.ethId, carol.address);
      await expect(ch.connect(alice).addMargin(f.ethId, 0n)).to.be.revertedWithCustomError(ch, "ZeroAmount");
      await expect(ch.connect(alice).addMargin(unknown, WAD))
        .to.be.revertedWithCustomError(ch, "MarketUnknown")
        .withArgs(unknown);
      await expectUnchanged(before, ch, [f.ethId], [alice.address, carol.address]);
    });
  });

  describe("removeMargin", function () {
    it("returns margin down to exactly the initial requirement and recomputes a", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      const free = await ch.freeCollateral(alice.address);
      // requirement = ceil(1 * 2000 * 10%) = 200: 200 of the 400 may leave.
      const tx = ch.connect(alice).removeMargin(f.ethId, 200n * WAD);
      await expect(tx)
        .to.emit(ch, "MarginMoved")
        .withArgs(f.ethId, alice.address, -200n * WAD);
      await expect(tx)
        .to.emit(ch, "PositionChanged")
        .withArgs(
          f.ethId,
          alice.address,
          true,
          WAD,
          ETH_PRICE,
          200n * WAD,
          leverageUp(WAD, 200n * WAD),
          leafOf(leverageUp(WAD, 200n * WAD), ETH_PRICE, bandReference(ETH_PRICE)),
          0,
          0,
        );
      const pos = await positionOf(ch, f.ethId, alice.address);
      expect(pos.margin).to.equal(200n * WAD);
      expect(pos.leverage).to.equal(leverageUp(WAD, 200n * WAD));
      expect(await ch.freeCollateral(alice.address)).to.equal(free + 200n * WAD);
    });

    it("reverts InsufficientMargin with the exact shortfall one wei past the requirement", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      const params = await ch.marketParams(f.ethId);
      const pos = await positionOf(ch, f.ethId, alice.address);
      const amount = 200n * WAD + 1n;
      const shortfall = marginShortfall(pos.margin - amount, pos.size, 0n, ETH_PRICE, params.imr);
      expect(shortfall).to.equal(1n);
      const before = await snapshot(ch, [f.ethId], [alice.address]);
      await expect(ch.connect(alice).removeMargin(f.ethId, amount))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(alice.address, shortfall);
      await expectUnchanged(before, ch, [f.ethId], [alice.address]);
    });

    it("counts unrealized losses against the margin", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      const params = await ch.marketParams(f.ethId);
      const index = 1900n * WAD;
      await f.setPrice(ETH, index);
      const pos = await positionOf(ch, f.ethId, alice.address);
      const x = pnlPerUnit(true, pos.entry, index, 0n); // -100
      // 400 - 100 of loss must cover ceil(1900 * 10%) = 190: only 110 may leave.
      const amount = 150n * WAD;
      const shortfall = marginShortfall(pos.margin - amount, pos.size, x, index, params.imr);
      expect(shortfall).to.equal(40n * WAD);
      const before = await snapshot(ch, [f.ethId], [alice.address]);
      await expect(ch.connect(alice).removeMargin(f.ethId, amount))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(alice.address, shortfall);
      await expectUnchanged(before, ch, [f.ethId], [alice.address]);
      await ch.connect(alice).removeMargin(f.ethId, 110n * WAD);
      expect((await positionOf(ch, f.ethId, alice.address)).margin).to.equal(290n * WAD);
    });

    it("never counts unrealized profit: beyond the initial requirement it still reverts", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      const params = await ch.marketParams(f.ethId);
      const index = 2100n * WAD;
      await f.setPrice(ETH, index);
      expect(await f.lens.equity(f.ethId, alice.address)).to.equal(500n * WAD);
      // If profit counted, 500 - 210 = 290 could leave; only 400 - 210 = 190 may.
      const amount = 190n * WAD + 1n;
      const x = pnlPerUnit(true, ETH_PRICE, index, 0n);
      const shortfall = marginShortfall(400n * WAD - amount, WAD, x, index, params.imr);
      expect(shortfall).to.equal(1n);
      const before = await snapshot(ch, [f.ethId], [alice.address]);
      await expect(ch.connect(alice).removeMargin(f.ethId, amount))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(alice.address, shortfall);
      await expect(ch.connect(alice).removeMargin(f.ethId, 290n * WAD))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(alice.address, marginShortfall(110n * WAD, WAD, x, index, params.imr));
      await expectUnchanged(before, ch, [f.ethId], [alice.address]);
      await ch.connect(alice).removeMargin(f.ethId, 190n * WAD);
    });

    it("cannot take the margin to zero or below", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      // The whole margin, even with the price far in the position's favour.
      await f.setPrice(ETH, 2090n * WAD);
      const before = await snapshot(ch, [f.ethId], [alice.address]);
      // The contract reports how far the request exceeds the largest amount that keeps c > 0.
      await expect(ch.connect(alice).removeMargin(f.ethId, 400n * WAD))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(alice.address, 1n);
      await expect(ch.connect(alice).removeMargin(f.ethId, 405n * WAD))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(alice.address, 5n * WAD + 1n);
      await expectUnchanged(before, ch, [f.ethId], [alice.address]);
    });

    it("is blocked while the market is paused", async function () {
      const f = await loadFixture(openedFixture);
      const [alice] = f.traders;
      const ch = f.clearinghouse;
      await ch.setPaused(f.ethId, true);
      const before = await snapshot(ch, [f.ethId], [alice.address]);
      await expect(ch.connect(alice).removeMargin(f.ethId, WAD))
        .to.be.revertedWithCustomError(ch, "MarketIsPaused")
        .withArgs(f.ethId);
      await expectUnchanged(before, ch, [f.ethId], [alice.address]);
      await ch.setPaused(f.ethId, false);
      await ch.connect(alice).removeMargin(f.ethId, WAD);
    });

    it("reverts PositionNotFound without a position and ZeroAmount for zero", async function () {
      const f = await loadFixture(openedFixture);
      const [alice, , carol] = f.traders;
      const ch = f.clearinghouse;
      const before = await snapshot(ch, [f.ethId, f.btcId], [alice.address, carol.address]);
      await expect(ch.connect(carol).removeMargin(f.ethId, WAD))
        .to.be.revertedWithCustomError(ch, "PositionNotFound")
        .withArgs(f.ethId, carol.address);
      await expect(ch.connect(alice).removeMargin(f.btcId, WAD))
        .to.be.revertedWithCustomError(ch, "PositionNotFound")
        .withArgs(f.btcId, alice.address);
      await expect(ch.connect(alice).removeMargin(f.ethId, 0n)).to.be.revertedWithCustomError(ch, "ZeroAmount");
      await expectUnchanged(before, ch, [f.ethId, f.btcId], [alice.address, carol.address]);
    });

    it("applies the same rule to a short: losses on a rally count", async function () {
      const f = await loadFixture(openedFixture);
      const [, bob] = f.traders;
      const ch = f.clearinghouse;
      const params = await ch.marketParams(f.ethId);
      const index = 2050n * WAD;
      await f.setPrice(ETH, index);
      const x = pnlPerUnit(false, ETH_PRICE, index, 0n); // -50
      // 400 - 50 must cover ceil(205): 145 may leave.
      const amount = 145n * WAD + 1n;
      await expect(ch.connect(bob).removeMargin(f.ethId, amount))
        .to.be.revertedWithCustomError(ch, "InsufficientMargin")
        .withArgs(bob.address, marginShortfall(400n * WAD - amount, WAD, x, index, params.imr));
      await ch.connect(bob).removeMargin(f.ethId, 145n * WAD);
      expect((await positionOf(ch, f.ethId, bob.address)).margin).to.equal(255n * WAD);
    });
  });
});
