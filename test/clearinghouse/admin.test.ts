import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH_PRICE, type Fixture } from "../helpers/fixture";
import { expectRejected, fieldIs, isParams, open, paramsArray, type ParamFieldName } from "../helpers/clearinghouse";
import { defaultMarketParams } from "../../lib/local";
import { WAD } from "../../lib/math";

const DAY = 24n * 3600n;

/** [field, value out of bounds, min, max], against the defaults (imr 10%). */
const OUT_OF_BOUNDS: [ParamFieldName, bigint, bigint, bigint][] = [
  ["imr", 10n ** 16n - 1n, 10n ** 16n, 5n * 10n ** 17n],
  ["imr", 5n * 10n ** 17n + 1n, 10n ** 16n, 5n * 10n ** 17n],
  ["mmr", 5n * 10n ** 15n - 1n, 5n * 10n ** 15n, WAD / 10n - 1n],
  ["mmr", WAD / 10n, 5n * 10n ** 15n, WAD / 10n - 1n],
  ["makerFee", 10n ** 16n + 1n, 0n, 10n ** 16n],
  ["takerFee", 10n ** 16n + 1n, 0n, 10n ** 16n],
  ["priceBand", 10n ** 15n - 1n, 10n ** 15n, 10n ** 17n],
  ["priceBand", 10n ** 17n + 1n, 10n ** 15n, 10n ** 17n],
  ["fundFeeShare", WAD + 1n, 0n, WAD],
  ["maxPremium", 10n ** 17n + 1n, 0n, 10n ** 17n],
  ["minNotional", WAD - 1n, WAD, 10n ** 24n],
  ["minNotional", 10n ** 24n + 1n, WAD, 10n ** 24n],
  ["fundingPeriod", 3599n, 3600n, 30n * DAY],
  ["fundingPeriod", 30n * DAY + 1n, 3600n, 30n * DAY],
  ["fundingWindow", 59n, 60n, DAY],
  ["fundingWindow", DAY + 1n, 60n, DAY],
  ["liquidationFee", 5n * 10n ** 16n + 1n, 0n, 5n * 10n ** 16n],
  ["liquidatorShare", WAD + 1n, 0n, WAD],
  // takerBand: above zero and at most priceBand (5% by default).
  ["takerBand", 0n, 1n, WAD / 20n],
  ["takerBand", WAD / 20n + 1n, 1n, WAD / 20n],
  // The keeper share is bounded by what the fund share leaves (defaults: half to the fund).
  ["keeperFeeShare", WAD / 2n + 1n, 0n, WAD / 2n],
  ["keeperPay", 10n ** 21n + 1n, 0n, 10n ** 21n],
];

describe("Clearinghouse market administration", function () {
  const SOL = ethers.encodeBytes32String("SOL-USD");

  describe("listMarket", function () {
    it("lists a market with its parameters, emits MarketListed and starts its funding clock", async function () {
      const f = await loadFixture(systemFixture);
      const params = defaultMarketParams({ imr: WAD / 5n, mmr: WAD / 10n });
      const tx = await f.clearinghouse.listMarket(SOL, params);
      await expect(tx).to.emit(f.clearinghouse, "MarketListed").withArgs(SOL, isParams(params));
      const ts = BigInt((await tx.getBlock())!.timestamp);
      expect(Array.from(await f.clearinghouse.marketParams(SOL))).to.deep.equal(paramsArray(params));
      expect(Array.from(await f.clearinghouse.marketStatus(SOL))).to.deep.equal([true, false]);
      // A listing is in force at once: nothing is pending.
      const [pending, eta] = await f.clearinghouse.pendingMarketParams(SOL);
      expect([Array.from(pending), eta]).to.deep.equal([paramsArray(defaultMarketParams()).map(() => 0n), 0n]);
      const s = await f.clearinghouse.marketState(SOL);
      expect([s.lastFundingTime, s.windowStart, s.cumulativeFunding]).to.deep.equal([ts, ts, 0n]);
    });

    it("rejects a second listing of the same market with MarketAlreadyListed", async function () {
      const f = await loadFixture(systemFixture);
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [] },
        () => f.clearinghouse.listMarket(f.ethId, defaultMarketParams({ imr: WAD / 5n })),
        "MarketAlreadyListed",
        f.ethId,
      );
    });

    it("is reserved to MARKET_ADMIN_ROLE", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      const role = await f.clearinghouse.MARKET_ADMIN_ROLE();
      await expectRejected(
        f,
        { ids: [SOL], accounts: [] },
        () => f.clearinghouse.connect(alice).listMarket(SOL, defaultMarketParams()),
        "AccessControlUnauthorizedAccount",
        alice.address,
        role,
      );
    });

    for (const [field, value, min, max] of OUT_OF_BOUNDS) {
      it(`rejects ${field} = ${value} with MarketParamOutOfBounds(${field}, value, ${min}, ${max})`, async function () {
        const f = await loadFixture(systemFixture);
        await expectRejected(
          f,
          { ids: [SOL], accounts: [] },
          () => f.clearinghouse.listMarket(SOL, defaultMarketParams({ [field]: value })),
          "MarketParamOutOfBounds",
          fieldIs(field),
          value,
          min,
          max,
        );
      });
    }

    it("accepts every parameter on its bounds", async function () {
      const f = await loadFixture(systemFixture);
      await f.clearinghouse.listMarket(SOL, {
        imr: 10n ** 16n,
        mmr: 10n ** 16n - 1n,
        makerFee: 10n ** 16n,
        takerFee: 0n,
        priceBand: 10n ** 17n,
        fundFeeShare: WAD,
        maxPremium: 0n,
        keeperFeeShare: 0n,
        minNotional: 10n ** 24n,
        fundingPeriod: 3600n,
        fundingWindow: DAY,
        liquidationFee: 5n * 10n ** 16n,
        liquidatorShare: 0n,
        takerBand: 10n ** 17n,
        keeperPay: 10n ** 21n,
      });
      // The least taker band: one wei of a fraction, under the least order band.
      const AVAX = ethers.encodeBytes32String("AVAX-USD");
      await f.clearinghouse.listMarket(AVAX, defaultMarketParams({ priceBand: 10n ** 15n, takerBand: 1n }));
      expect((await f.clearinghouse.marketParams(AVAX)).takerBand).to.equal(1n);
    });
  });

  describe("setPaused", function () {
    it("pauses and unpauses a market with MarketPaused events", async function () {
      const f = await loadFixture(systemFixture);
      await expect(f.clearinghouse.setPaused(f.ethId, true))
        .to.emit(f.clearinghouse, "MarketPaused")
        .withArgs(f.ethId, true);
      expect(Array.from(await f.clearinghouse.marketStatus(f.ethId))).to.deep.equal([true, true]);
      expect(Array.from(await f.clearinghouse.marketStatus(f.btcId))).to.deep.equal([true, false]);
      await expect(f.clearinghouse.setPaused(f.ethId, false))
        .to.emit(f.clearinghouse, "MarketPaused")
        .withArgs(f.ethId, false);
      expect(Array.from(await f.clearinghouse.marketStatus(f.ethId))).to.deep.equal([true, false]);
    });

    it("is reserved to PAUSER_ROLE and rejects unknown markets", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [] },
        () => f.clearinghouse.connect(alice).setPaused(f.ethId, true),
        "AccessControlUnauthorizedAccount",
        alice.address,
        await f.clearinghouse.PAUSER_ROLE(),
      );
      await expectRejected(
        f,
        { ids: [SOL], accounts: [] },
        () => f.clearinghouse.setPaused(SOL, true),
        "MarketUnknown",
        SOL,
      );
    });

    it("lets a role granted by the default admin pause", async function () {
      const f: Fixture = await loadFixture(systemFixture);
      const [alice] = f.traders;
      await f.clearinghouse.grantRole(await f.clearinghouse.PAUSER_ROLE(), alice.address);
      await f.clearinghouse.connect(alice).setPaused(f.btcId, true);
      expect((await f.clearinghouse.marketStatus(f.btcId)).paused).to.equal(true);
    });
  });

  describe("setRankIndex", function () {
    it("is one-shot: a second call reverts RankIndexAlreadySet and the index stays", async function () {
      const f = await loadFixture(systemFixture);
      const current = await f.clearinghouse.rankIndex();
      expect(current).to.equal(await f.deleverager.getAddress());
      const [alice] = f.traders;
      await expect(f.clearinghouse.setRankIndex(alice.address))
        .to.be.revertedWithCustomError(f.clearinghouse, "RankIndexAlreadySet")
        .withArgs(current);
      expect(await f.clearinghouse.rankIndex()).to.equal(current);
    });

    it("late rank index: refuses an index once a position exists (it would not hold that position, and closing it would revert)", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const chAddress = await f.clearinghouse.getAddress();
      // A system wired in the wrong order: the index slot is cleared, then a position is opened.
      const indexWord = BigInt(await f.clearinghouse.rankIndex());
      let slot = -1;
      for (let i = 0; i < 64 && slot < 0; i++) {
        const word = BigInt(await ethers.provider.getStorage(chAddress, i));
        if ((word & ((1n << 160n) - 1n)) === indexWord) slot = i;
      }
      expect(slot, "rank index slot").to.be.greaterThanOrEqual(0);
      await ethers.provider.send("hardhat_setStorageAt", [chAddress, ethers.toQuantity(slot), ethers.ZeroHash]);
      expect(await f.clearinghouse.rankIndex()).to.equal(ethers.ZeroAddress);
      await open(f, f.ethId, alice, bob, WAD, ETH_PRICE);
      expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).size).to.equal(WAD);

      await expect(f.clearinghouse.setRankIndex(await f.deleverager.getAddress())).to.be.revertedWithCustomError(
        f.clearinghouse,
        "RankIndexAfterFirstPosition",
      );
      expect(await f.clearinghouse.rankIndex()).to.equal(ethers.ZeroAddress);
    });

    it("rejects the zero address and callers without the default admin role", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      await expect(f.clearinghouse.setRankIndex(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.clearinghouse,
        "ZeroAddress",
      );
      await expect(f.clearinghouse.connect(alice).setRankIndex(alice.address))
        .to.be.revertedWithCustomError(f.clearinghouse, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, ethers.ZeroHash);
    });
  });
});
