import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { MockAggregator, OracleAdapter } from "../../typechain-types";

const ETH_USD = ethers.encodeBytes32String("ETH-USD");
const STETH_ETH = ethers.encodeBytes32String("STETH-ETH");
const UNKNOWN = ethers.encodeBytes32String("DOGE-USD");

const ORACLE_ADMIN_ROLE = ethers.id("ORACLE_ADMIN_ROLE");
const DEFAULT_ADMIN_ROLE = ethers.ZeroHash;

const HEARTBEAT = 86_400n; // one day
const STRICT_MAX_AGE = 300n; // five minutes
const GRACE_PERIOD = 3_600n; // one hour

// ETH-USD: 8-decimal feed, accepted between $1 and $1,000,000.
const ETH_MIN = ethers.parseEther("1");
const ETH_MAX = ethers.parseEther("1000000");
const ETH_ANSWER = 3_000_12345678n; // $3,000.12345678 with 8 decimals

// STETH-ETH: 18-decimal feed, accepted between 0.5 and 1.5.
const STETH_MIN = ethers.parseEther("0.5");
const STETH_MAX = ethers.parseEther("1.5");
const STETH_ANSWER = 999_999_999_999_999_999n; // 0.999999999999999999

const UINT96_MAX = 2n ** 96n - 1n;
const UINT256_MAX = ethers.MaxUint256;
const INT256_MAX = ethers.MaxInt256;

enum ResponseMode {
  Normal,
  Revert,
  ShortData,
  OversizedRoundId,
  OversizedAnsweredInRound,
}

async function now(): Promise<bigint> {
  return BigInt(await time.latest());
}

async function feedConfig(
  aggregator: MockAggregator | string,
  overrides: Partial<OracleAdapter.FeedConfigStruct> = {},
): Promise<OracleAdapter.FeedConfigStruct> {
  return {
    aggregator: typeof aggregator === "string" ? aggregator : await aggregator.getAddress(),
    heartbeat: HEARTBEAT,
    strictMaxAge: STRICT_MAX_AGE,
    minPrice: ETH_MIN,
    maxPrice: ETH_MAX,
    ...overrides,
  };
}

async function deployFixture() {
  const [admin, oracleAdmin, stranger] = await ethers.getSigners();

  const adapter = (await ethers.deployContract("OracleAdapter", [admin.address])) as unknown as OracleAdapter;
  await adapter.connect(admin).grantRole(ORACLE_ADMIN_ROLE, oracleAdmin.address);

  const ethFeed = (await ethers.deployContract("MockAggregator", [8, ETH_ANSWER])) as unknown as MockAggregator;
  const stethFeed = (await ethers.deployContract("MockAggregator", [18, STETH_ANSWER])) as unknown as MockAggregator;
  const sequencer = (await ethers.deployContract("MockAggregator", [0, 0])) as unknown as MockAggregator;

  await adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed));
  await adapter
    .connect(oracleAdmin)
    .setFeed(STETH_ETH, await feedConfig(stethFeed, { minPrice: STETH_MIN, maxPrice: STETH_MAX }));

  return { adapter, ethFeed, stethFeed, sequencer, admin, oracleAdmin, stranger };
}

/** Same as deployFixture, with a sequencer-uptime feed that has reported "up" for longer than the grace period. */
async function sequencerFixture() {
  const fixture = await deployFixture();
  const { adapter, oracleAdmin, sequencer } = fixture;
  await adapter.connect(oracleAdmin).setSequencerFeed(await sequencer.getAddress(), GRACE_PERIOD);
  await time.increase(GRACE_PERIOD + 1n);
  return fixture;
}

describe("OracleAdapter", function () {
  describe("deployment", function () {
    it("grants DEFAULT_ADMIN_ROLE to the admin but not ORACLE_ADMIN_ROLE", async function () {
      const [admin] = await ethers.getSigners();
      const adapter = await ethers.deployContract("OracleAdapter", [admin.address]);
      expect(await adapter.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(true);
      expect(await adapter.hasRole(ORACLE_ADMIN_ROLE, admin.address)).to.equal(false);
    });

    it("exposes the role id and the 18-decimal price scale", async function () {
      const { adapter } = await loadFixture(deployFixture);
      expect(await adapter.ORACLE_ADMIN_ROLE()).to.equal(ORACLE_ADMIN_ROLE);
      expect(await adapter.PRICE_DECIMALS()).to.equal(18n);
    });

    it("refuses the zero address as admin", async function () {
      const factory = await ethers.getContractFactory("OracleAdapter");
      await expect(factory.deploy(ethers.ZeroAddress)).to.be.revertedWithCustomError(factory, "OracleZeroAdmin");
    });

    it("starts without a sequencer-uptime feed", async function () {
      const { adapter } = await loadFixture(deployFixture);
      expect(await adapter.sequencerFeed()).to.equal(ethers.ZeroAddress);
      expect(await adapter.sequencerGracePeriod()).to.equal(0n);
    });
  });

  describe("setFeed", function () {
    it("stores the configuration together with the decimals read from the aggregator", async function () {
      const { adapter, ethFeed } = await loadFixture(deployFixture);
      const eth = await adapter.feedConfig(ETH_USD);
      expect(eth.aggregator).to.equal(await ethFeed.getAddress());
      expect(eth.decimals).to.equal(8n);
      expect(eth.heartbeat).to.equal(HEARTBEAT);
      expect(eth.strictMaxAge).to.equal(STRICT_MAX_AGE);
      expect(eth.minPrice).to.equal(ETH_MIN);
      expect(eth.maxPrice).to.equal(ETH_MAX);
      expect((await adapter.feedConfig(STETH_ETH)).decimals).to.equal(18n);
    });

    it("emits FeedConfigured with the stored values", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      const btc = ethers.encodeBytes32String("BTC-USD");
      await expect(adapter.connect(oracleAdmin).setFeed(btc, await feedConfig(ethFeed)))
        .to.emit(adapter, "FeedConfigured")
        .withArgs(btc, await ethFeed.getAddress(), HEARTBEAT, STRICT_MAX_AGE, ETH_MIN, ETH_MAX, 8);
    });

    it("reconfigures an existing feed in place", async function () {
      const { adapter, stethFeed, oracleAdmin } = await loadFixture(deployFixture);
      const cfg = await feedConfig(stethFeed, { heartbeat: 7_200n, strictMaxAge: 60n, minPrice: 10n, maxPrice: 20n });
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, cfg))
        .to.emit(adapter, "FeedConfigured")
        .withArgs(ETH_USD, await stethFeed.getAddress(), 7_200n, 60n, 10n, 20n, 18);
      const stored = await adapter.feedConfig(ETH_USD);
      expect(stored.aggregator).to.equal(await stethFeed.getAddress());
      expect(stored.decimals).to.equal(18n);
      expect(stored.heartbeat).to.equal(7_200n);
    });

    it("accepts a strict window equal to the heartbeat", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(
        adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed, { strictMaxAge: HEARTBEAT })),
      ).to.emit(adapter, "FeedConfigured");
    });

    it("rejects the zero address as aggregator", async function () {
      const { adapter, oracleAdmin } = await loadFixture(deployFixture);
      await expect(
        adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethers.ZeroAddress)),
      ).to.be.revertedWithCustomError(adapter, "OracleZeroAggregator");
    });

    it("rejects a zero heartbeat", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed, { heartbeat: 0n })))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidHeartbeat")
        .withArgs(0n);
    });

    it("rejects a zero strict window", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed, { strictMaxAge: 0n })))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidStrictMaxAge")
        .withArgs(0n, HEARTBEAT);
    });

    it("rejects a strict window longer than the heartbeat", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(
        adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed, { strictMaxAge: HEARTBEAT + 1n })),
      )
        .to.be.revertedWithCustomError(adapter, "OracleInvalidStrictMaxAge")
        .withArgs(HEARTBEAT + 1n, HEARTBEAT);
    });

    it("rejects a zero minimum price", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed, { minPrice: 0n })))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidBounds")
        .withArgs(0n, ETH_MAX);
    });

    it("rejects a minimum price equal to the maximum price", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(ethFeed, { minPrice: ETH_MAX })))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidBounds")
        .withArgs(ETH_MAX, ETH_MAX);
    });

    it("rejects a minimum price above the maximum price", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      const cfg = await feedConfig(ethFeed, { minPrice: ETH_MAX, maxPrice: ETH_MIN });
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, cfg))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidBounds")
        .withArgs(ETH_MAX, ETH_MIN);
    });

    it("rejects an aggregator with more than 18 decimals", async function () {
      const { adapter, oracleAdmin } = await loadFixture(deployFixture);
      const feed = (await ethers.deployContract("MockAggregator", [19, 1n])) as unknown as MockAggregator;
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(feed)))
        .to.be.revertedWithCustomError(adapter, "OracleDecimalsTooLarge")
        .withArgs(19);
    });

    it("rejects an aggregator address without code", async function () {
      const { adapter, oracleAdmin, stranger } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(stranger.address)))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidAggregator")
        .withArgs(stranger.address);
    });

    it("rejects a contract that does not implement decimals()", async function () {
      const { adapter, oracleAdmin } = await loadFixture(deployFixture);
      const notAnAggregator = await adapter.getAddress();
      await expect(adapter.connect(oracleAdmin).setFeed(ETH_USD, await feedConfig(notAnAggregator)))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidAggregator")
        .withArgs(notAnAggregator);
    });

    it("is reserved to ORACLE_ADMIN_ROLE holders", async function () {
      const { adapter, ethFeed, stranger } = await loadFixture(deployFixture);
      await expect(adapter.connect(stranger).setFeed(ETH_USD, await feedConfig(ethFeed)))
        .to.be.revertedWithCustomError(adapter, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, ORACLE_ADMIN_ROLE);
    });

    it("is refused to the default admin until it holds ORACLE_ADMIN_ROLE", async function () {
      const { adapter, ethFeed, admin } = await loadFixture(deployFixture);
      await expect(adapter.connect(admin).setFeed(ETH_USD, await feedConfig(ethFeed)))
        .to.be.revertedWithCustomError(adapter, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, ORACLE_ADMIN_ROLE);
      await adapter.connect(admin).grantRole(ORACLE_ADMIN_ROLE, admin.address);
      await expect(adapter.connect(admin).setFeed(ETH_USD, await feedConfig(ethFeed))).to.emit(
        adapter,
        "FeedConfigured",
      );
    });
  });

  describe("removeFeed", function () {
    it("removes a feed, emits FeedRemoved and makes its price unreadable", async function () {
      const { adapter, ethFeed, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).removeFeed(ETH_USD))
        .to.emit(adapter, "FeedRemoved")
        .withArgs(ETH_USD, await ethFeed.getAddress());
      await expect(adapter.getPrice(ETH_USD, false))
        .to.be.revertedWithCustomError(adapter, "OracleFeedUnknown")
        .withArgs(ETH_USD);
    });

    it("clears the stored configuration", async function () {
      const { adapter, oracleAdmin } = await loadFixture(deployFixture);
      await adapter.connect(oracleAdmin).removeFeed(ETH_USD);
      const stored = await adapter.feedConfig(ETH_USD);
      expect(stored.aggregator).to.equal(ethers.ZeroAddress);
      expect(stored.heartbeat).to.equal(0n);
      expect(stored.maxPrice).to.equal(0n);
    });

    it("leaves the other feeds untouched", async function () {
      const { adapter, oracleAdmin } = await loadFixture(deployFixture);
      await adapter.connect(oracleAdmin).removeFeed(ETH_USD);
      const [price] = await adapter.getPrice(STETH_ETH, false);
      expect(price).to.equal(STETH_ANSWER);
    });

    it("rejects removing a feed that is not configured", async function () {
      const { adapter, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).removeFeed(UNKNOWN))
        .to.be.revertedWithCustomError(adapter, "OracleFeedUnknown")
        .withArgs(UNKNOWN);
    });

    it("is reserved to ORACLE_ADMIN_ROLE holders", async function () {
      const { adapter, stranger } = await loadFixture(deployFixture);
      await expect(adapter.connect(stranger).removeFeed(ETH_USD))
        .to.be.revertedWithCustomError(adapter, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, ORACLE_ADMIN_ROLE);
    });
  });

  describe("setSequencerFeed", function () {
    it("stores the sequencer feed and grace period and emits SequencerFeedSet", async function () {
      const { adapter, sequencer, oracleAdmin } = await loadFixture(deployFixture);
      const address = await sequencer.getAddress();
      await expect(adapter.connect(oracleAdmin).setSequencerFeed(address, GRACE_PERIOD))
        .to.emit(adapter, "SequencerFeedSet")
        .withArgs(address, GRACE_PERIOD);
      expect(await adapter.sequencerFeed()).to.equal(address);
      expect(await adapter.sequencerGracePeriod()).to.equal(GRACE_PERIOD);
    });

    it("disables the sequencer check when given the zero address", async function () {
      const { adapter, sequencer, oracleAdmin } = await loadFixture(sequencerFixture);
      await sequencer.setAnswer(1);
      await expect(adapter.connect(oracleAdmin).setSequencerFeed(ethers.ZeroAddress, 0n))
        .to.emit(adapter, "SequencerFeedSet")
        .withArgs(ethers.ZeroAddress, 0n);
      const [price] = await adapter.getPrice(ETH_USD, false);
      expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
    });

    it("rejects a sequencer feed address without code", async function () {
      const { adapter, oracleAdmin, stranger } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setSequencerFeed(stranger.address, GRACE_PERIOD))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidAggregator")
        .withArgs(stranger.address);
    });

    it("rejects a grace period that does not fit in 96 bits", async function () {
      const { adapter, sequencer, oracleAdmin } = await loadFixture(deployFixture);
      await expect(adapter.connect(oracleAdmin).setSequencerFeed(await sequencer.getAddress(), UINT96_MAX + 1n))
        .to.be.revertedWithCustomError(adapter, "OracleInvalidGracePeriod")
        .withArgs(UINT96_MAX + 1n);
    });

    it("is reserved to ORACLE_ADMIN_ROLE holders", async function () {
      const { adapter, sequencer, stranger } = await loadFixture(deployFixture);
      await expect(adapter.connect(stranger).setSequencerFeed(await sequencer.getAddress(), GRACE_PERIOD))
        .to.be.revertedWithCustomError(adapter, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, ORACLE_ADMIN_ROLE);
    });
  });

  describe("getPrice", function () {
    describe("normalisation", function () {
      it("scales an 8-decimal answer exactly to 18 decimals and returns its updatedAt", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const [, , , updatedAt] = await ethFeed.latestRoundData();
        const [price, priceUpdatedAt] = await adapter.getPrice(ETH_USD, false);
        expect(price).to.equal(3_000_123_456_780_000_000_000n);
        expect(priceUpdatedAt).to.equal(updatedAt);
      });

      it("returns an 18-decimal answer unchanged", async function () {
        const { adapter } = await loadFixture(deployFixture);
        const [price] = await adapter.getPrice(STETH_ETH, true);
        expect(price).to.equal(STETH_ANSWER);
      });

      it("scales a 0-decimal answer by 10^18", async function () {
        const { adapter, oracleAdmin } = await loadFixture(deployFixture);
        const feed = (await ethers.deployContract("MockAggregator", [0, 42n])) as unknown as MockAggregator;
        await adapter.connect(oracleAdmin).setFeed(UNKNOWN, await feedConfig(feed));
        const [price] = await adapter.getPrice(UNKNOWN, false);
        expect(price).to.equal(ethers.parseEther("42"));
      });

      it("returns the latest round after the answer changes", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(2_500_00000001n);
        const [price, updatedAt] = await adapter.getPrice(ETH_USD, true);
        expect(price).to.equal(2_500_000_000_010_000_000_000n);
        expect(updatedAt).to.equal(await now());
      });
    });

    it("rejects a feed that is not configured", async function () {
      const { adapter } = await loadFixture(deployFixture);
      await expect(adapter.getPrice(UNKNOWN, false))
        .to.be.revertedWithCustomError(adapter, "OracleFeedUnknown")
        .withArgs(UNKNOWN);
    });

    describe("freshness", function () {
      it("accepts a price exactly as old as the heartbeat", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const [, , , updatedAt] = await ethFeed.latestRoundData();
        await time.increaseTo(updatedAt + HEARTBEAT);
        const [price] = await adapter.getPrice(ETH_USD, false);
        expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
      });

      it("rejects a price older than the heartbeat", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const [, , , updatedAt] = await ethFeed.latestRoundData();
        await time.increaseTo(updatedAt + HEARTBEAT + 1n);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleStalePrice")
          .withArgs(ETH_USD, updatedAt, HEARTBEAT);
      });

      it("accepts in strict mode a price exactly as old as the strict window", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const [, , , updatedAt] = await ethFeed.latestRoundData();
        await time.increaseTo(updatedAt + STRICT_MAX_AGE);
        const [price] = await adapter.getPrice(ETH_USD, true);
        expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
      });

      it("rejects in strict mode a price older than the strict window that ordinary reads still accept", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const [, , , updatedAt] = await ethFeed.latestRoundData();
        await time.increaseTo(updatedAt + STRICT_MAX_AGE + 1n);
        await expect(adapter.getPrice(ETH_USD, true))
          .to.be.revertedWithCustomError(adapter, "OracleStalePrice")
          .withArgs(ETH_USD, updatedAt, STRICT_MAX_AGE);
        const [price] = await adapter.getPrice(ETH_USD, false);
        expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
      });

      it("rejects a round updated after the current block", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const future = (await now()) + 1_000n;
        await ethFeed.setAnswerAt(ETH_ANSWER, future);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleFutureTimestamp")
          .withArgs(ETH_USD, future, await now());
      });
    });

    describe("answer validity", function () {
      it("rejects a zero answer", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(0);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleInvalidAnswer")
          .withArgs(ETH_USD, 0);
      });

      it("rejects a negative answer", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(-1n);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleInvalidAnswer")
          .withArgs(ETH_USD, -1n);
      });

      it("rejects a round that was never updated (updatedAt == 0)", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setRound(7, ETH_ANSWER, await now(), 0, 7);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleIncompleteRound")
          .withArgs(ETH_USD, 7, 7);
      });

      it("rejects a round answered in an earlier round", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        const t = await now();
        await ethFeed.setRound(7, ETH_ANSWER, t, t, 6);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleIncompleteRound")
          .withArgs(ETH_USD, 7, 6);
      });
    });

    describe("bounds", function () {
      it("accepts prices exactly at the minimum and at the maximum", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(1_00000000n);
        expect((await adapter.getPrice(ETH_USD, false))[0]).to.equal(ETH_MIN);
        await ethFeed.setAnswer(1_000_000_00000000n);
        expect((await adapter.getPrice(ETH_USD, false))[0]).to.equal(ETH_MAX);
      });

      it("rejects a price below the minimum", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(99_999_999n);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OraclePriceOutOfBounds")
          .withArgs(ETH_USD, 99_999_999n * 10n ** 10n, ETH_MIN, ETH_MAX);
      });

      it("rejects a price above the maximum", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(1_000_000_00000001n);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OraclePriceOutOfBounds")
          .withArgs(ETH_USD, 1_000_000_00000001n * 10n ** 10n, ETH_MIN, ETH_MAX);
      });

      it("rejects an answer too large to scale as out of bounds instead of overflowing", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setAnswer(INT256_MAX);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OraclePriceOutOfBounds")
          .withArgs(ETH_USD, UINT256_MAX, ETH_MIN, ETH_MAX);
      });
    });

    describe("misbehaving feeds", function () {
      it("reports a reverting feed as OracleFeedReverted", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setShouldRevert(true);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleFeedReverted")
          .withArgs(ETH_USD);
      });

      it("serves the price again once the feed stops reverting", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setShouldRevert(true);
        await ethFeed.setShouldRevert(false);
        const [price] = await adapter.getPrice(ETH_USD, false);
        expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
      });

      it("reports a feed returning too little data as OracleMalformedResponse", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setResponseMode(ResponseMode.ShortData);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleMalformedResponse")
          .withArgs(ETH_USD);
      });

      it("reports a feed returning a round id wider than uint80 as OracleMalformedResponse", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setResponseMode(ResponseMode.OversizedRoundId);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleMalformedResponse")
          .withArgs(ETH_USD);
      });

      it("reports a feed returning an answeredInRound wider than uint80 as OracleMalformedResponse", async function () {
        const { adapter, ethFeed } = await loadFixture(deployFixture);
        await ethFeed.setResponseMode(ResponseMode.OversizedAnsweredInRound);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleMalformedResponse")
          .withArgs(ETH_USD);
      });
    });

    describe("with a sequencer-uptime feed", function () {
      it("serves prices while the sequencer has been up for longer than the grace period", async function () {
        const { adapter } = await loadFixture(sequencerFixture);
        const [price] = await adapter.getPrice(ETH_USD, false);
        expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
      });

      it("rejects prices while the sequencer is down", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setAnswer(1);
        await expect(adapter.getPrice(ETH_USD, false)).to.be.revertedWithCustomError(adapter, "OracleSequencerDown");
      });

      it("treats any non-zero sequencer status as down", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setAnswer(2);
        await expect(adapter.getPrice(ETH_USD, false)).to.be.revertedWithCustomError(adapter, "OracleSequencerDown");
      });

      it("checks the sequencer before the price feed", async function () {
        const { adapter, sequencer, ethFeed } = await loadFixture(sequencerFixture);
        await ethFeed.setShouldRevert(true);
        await sequencer.setAnswer(1);
        await expect(adapter.getPrice(ETH_USD, false)).to.be.revertedWithCustomError(adapter, "OracleSequencerDown");
      });

      it("rejects prices until the grace period has elapsed after the sequencer comes back up", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setAnswer(1);
        await sequencer.setAnswer(0);
        const upSince = await now();
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleSequencerGracePeriod")
          .withArgs(0n, GRACE_PERIOD);
        await time.increaseTo(upSince + GRACE_PERIOD);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleSequencerGracePeriod")
          .withArgs(GRACE_PERIOD, GRACE_PERIOD);
      });

      it("serves prices again once the grace period has elapsed", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setAnswer(1);
        await sequencer.setAnswer(0);
        await time.increaseTo((await now()) + GRACE_PERIOD + 1n);
        const [price] = await adapter.getPrice(ETH_USD, false);
        expect(price).to.equal(ETH_ANSWER * 10n ** 10n);
      });

      it("rejects a sequencer round whose startedAt is zero", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setStartedAt(0);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleSequencerInvalidRound")
          .withArgs(0n);
      });

      it("rejects a sequencer round started after the current block", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        const future = (await now()) + 1_000n;
        await sequencer.setStartedAt(future);
        await expect(adapter.getPrice(ETH_USD, false))
          .to.be.revertedWithCustomError(adapter, "OracleSequencerInvalidRound")
          .withArgs(future);
      });

      it("reports a reverting sequencer feed as OracleSequencerFeedReverted", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setShouldRevert(true);
        await expect(adapter.getPrice(ETH_USD, false)).to.be.revertedWithCustomError(
          adapter,
          "OracleSequencerFeedReverted",
        );
      });

      it("reports a sequencer feed returning too little data as OracleSequencerMalformedResponse", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setResponseMode(ResponseMode.ShortData);
        await expect(adapter.getPrice(ETH_USD, false)).to.be.revertedWithCustomError(
          adapter,
          "OracleSequencerMalformedResponse",
        );
      });

      it("still rejects unknown feeds before consulting the sequencer", async function () {
        const { adapter, sequencer } = await loadFixture(sequencerFixture);
        await sequencer.setAnswer(1);
        await expect(adapter.getPrice(UNKNOWN, false))
          .to.be.revertedWithCustomError(adapter, "OracleFeedUnknown")
          .withArgs(UNKNOWN);
      });
    });
  });
});

describe("MockAggregator", function () {
  async function mockFixture() {
    const feed = (await ethers.deployContract("MockAggregator", [8, ETH_ANSWER])) as unknown as MockAggregator;
    return { feed };
  }

  it("starts at round 1 with the constructor's answer, updated at deployment", async function () {
    const { feed } = await loadFixture(mockFixture);
    const [roundId, answer, startedAt, updatedAt, answeredInRound] = await feed.latestRoundData();
    expect([roundId, answer, answeredInRound]).to.deep.equal([1n, ETH_ANSWER, 1n]);
    expect(startedAt).to.equal(await now());
    expect(updatedAt).to.equal(await now());
    expect(await feed.decimals()).to.equal(8n);
    expect(await feed.description()).to.equal("MockAggregator");
    expect(await feed.version()).to.equal(4n);
  });

  it("opens a new complete round on setAnswer and keeps old rounds readable", async function () {
    const { feed } = await loadFixture(mockFixture);
    await expect(feed.setAnswer(5n)).to.emit(feed, "RoundSet");
    const [roundId, answer, , updatedAt, answeredInRound] = await feed.latestRoundData();
    expect([roundId, answer, updatedAt, answeredInRound]).to.deep.equal([2n, 5n, await now(), 2n]);
    expect((await feed.getRoundData(1))[1]).to.equal(ETH_ANSWER);
  });

  it("sets arbitrary rounds, timestamps and decimals", async function () {
    const { feed } = await loadFixture(mockFixture);
    await feed.setRound(10, 7n, 100, 200, 9);
    expect(await feed.latestRoundData()).to.deep.equal([10n, 7n, 100n, 200n, 9n]);
    await feed.setUpdatedAt(300);
    await feed.setStartedAt(250);
    expect(await feed.latestRoundData()).to.deep.equal([10n, 7n, 250n, 300n, 9n]);
    await feed.setDecimals(6);
    expect(await feed.decimals()).to.equal(6n);
  });

  it("reverts on reads in Revert mode and for rounds that were never set", async function () {
    const { feed } = await loadFixture(mockFixture);
    await expect(feed.getRoundData(99)).to.be.revertedWithCustomError(feed, "MockAggregatorNoData").withArgs(99);
    await feed.setShouldRevert(true);
    expect(await feed.responseMode()).to.equal(BigInt(ResponseMode.Revert));
    await expect(feed.latestRoundData()).to.be.revertedWithCustomError(feed, "MockAggregatorReverted");
    await expect(feed.getRoundData(1)).to.be.revertedWithCustomError(feed, "MockAggregatorReverted");
  });
});
