import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, type Fixture } from "../helpers/fixture";
import {
  PARAMS_DELAY,
  changeMarketParams,
  expectRejected,
  fieldIs,
  fundingStateOf,
  isParams,
  open,
  paramsArray,
  refreshFeeds,
  signed,
  submit,
  type ParamFieldName,
} from "../helpers/clearinghouse";
import { defaultMarketParams, type MarketParams } from "../../lib/local";
import { projectFunding, premiumOf } from "../../lib/funding";
import { equityOf, pnlPerUnit, requirementUp } from "../../lib/position";
import { WAD } from "../../lib/math";

const P = ETH_PRICE;
const PP = 10n ** 16n; // one percentage point
const HOUR = 3600n;

/**
 * [field, proposed, lowest, highest]: a value one wei beyond the one step a change may make from
 * the default parameters, and the range of that step.
 */
const BEYOND_STEP: [ParamFieldName, bigint, bigint, bigint][] = [
  ["imr", 11n * PP + 1n, 9n * PP, 11n * PP],
  ["imr", 9n * PP - 1n, 9n * PP, 11n * PP],
  ["mmr", (11n * PP) / 2n + 1n, (9n * PP) / 2n, (11n * PP) / 2n],
  ["mmr", (9n * PP) / 2n - 1n, (9n * PP) / 2n, (11n * PP) / 2n],
  ["makerFee", 12n * 10n ** 14n + 1n, 0n, 12n * 10n ** 14n],
  ["takerFee", 15n * 10n ** 14n + 1n, 0n, 15n * 10n ** 14n],
  ["priceBand", 6n * PP + 1n, 4n * PP, 6n * PP],
  ["priceBand", 4n * PP - 1n, 4n * PP, 6n * PP],
  ["fundFeeShare", 60n * PP + 1n, 40n * PP, 60n * PP],
  ["fundFeeShare", 40n * PP - 1n, 40n * PP, 60n * PP],
  ["maxPremium", (5n * PP) / 4n + 1n, (3n * PP) / 4n, (5n * PP) / 4n],
  ["maxPremium", (3n * PP) / 4n - 1n, (3n * PP) / 4n, (5n * PP) / 4n],
  ["minNotional", 20n * WAD + 1n, 5n * WAD, 20n * WAD],
  ["minNotional", 5n * WAD - 1n, 5n * WAD, 20n * WAD],
  ["fundingPeriod", 16n * HOUR + 1n, 4n * HOUR, 16n * HOUR],
  ["fundingPeriod", 4n * HOUR - 1n, 4n * HOUR, 16n * HOUR],
  ["fundingWindow", 2n * HOUR + 1n, HOUR / 2n, 2n * HOUR],
  ["fundingWindow", HOUR / 2n - 1n, HOUR / 2n, 2n * HOUR],
  ["liquidationFee", (3n * PP) / 2n + 1n, PP / 2n, (3n * PP) / 2n],
  ["liquidationFee", PP / 2n - 1n, PP / 2n, (3n * PP) / 2n],
  ["liquidatorShare", 60n * PP + 1n, 40n * PP, 60n * PP],
  ["liquidatorShare", 40n * PP - 1n, 40n * PP, 60n * PP],
  ["takerBand", PP + 1n, 0n, PP],
  ["keeperFeeShare", 20n * PP + 1n, 0n, 20n * PP],
  ["keeperPay", 2n * WAD + 1n, 0n, 2n * WAD],
];

/** Every field one whole step above the defaults. */
const ONE_STEP_UP = defaultMarketParams({
  imr: 11n * PP,
  mmr: (11n * PP) / 2n,
  makerFee: 12n * 10n ** 14n,
  takerFee: 15n * 10n ** 14n,
  priceBand: 6n * PP,
  fundFeeShare: 60n * PP,
  maxPremium: (5n * PP) / 4n,
  minNotional: 20n * WAD,
  fundingPeriod: 16n * HOUR,
  fundingWindow: 2n * HOUR,
  liquidationFee: (3n * PP) / 2n,
  liquidatorShare: 60n * PP,
  takerBand: PP,
  keeperFeeShare: 20n * PP,
  keeperPay: 2n * WAD,
});

/** Every field one whole step below the defaults (the taker band to its least value, one wei). */
const ONE_STEP_DOWN = defaultMarketParams({
  imr: 9n * PP,
  mmr: (9n * PP) / 2n,
  makerFee: 0n,
  takerFee: 0n,
  priceBand: 4n * PP,
  fundFeeShare: 40n * PP,
  maxPremium: (3n * PP) / 4n,
  minNotional: 5n * WAD,
  fundingPeriod: 4n * HOUR,
  fundingWindow: HOUR / 2n,
  liquidationFee: PP / 2n,
  liquidatorShare: 40n * PP,
  takerBand: 1n,
  keeperFeeShare: 0n,
  keeperPay: 0n,
});

const NOTHING_PENDING = paramsArray(defaultMarketParams()).map(() => 0n);

describe("Clearinghouse parameter changes (timelock)", function () {
  const SOL = ethers.encodeBytes32String("SOL-USD");
  const scope = (f: Fixture, accounts: string[] = []) => ({ ids: [f.ethId, f.btcId], accounts });

  /** Proposes `params` for ETH-USD and returns when the change becomes due. */
  async function propose(f: Fixture, params: MarketParams): Promise<bigint> {
    const tx = await f.clearinghouse.proposeMarketParams(f.ethId, params);
    return BigInt((await tx.getBlock())!.timestamp) + PARAMS_DELAY;
  }

  it("waits PARAMS_DELAY, one day, before a change may be applied", async function () {
    const f = await loadFixture(systemFixture);
    expect(await f.clearinghouse.PARAMS_DELAY()).to.equal(PARAMS_DELAY);
    expect(PARAMS_DELAY).to.equal(86_400n);
  });

  it("keeps a proposed change pending and visible, with MarketParamsProposed(params, eta), and changes nothing in force", async function () {
    const f = await loadFixture(systemFixture);
    const params = defaultMarketParams({ takerFee: 10n ** 15n, fundFeeShare: 40n * PP });
    const tx = await f.clearinghouse.proposeMarketParams(f.ethId, params);
    const eta = BigInt((await tx.getBlock())!.timestamp) + PARAMS_DELAY;
    await expect(tx).to.emit(f.clearinghouse, "MarketParamsProposed").withArgs(f.ethId, isParams(params), eta);
    await expect(tx).not.to.emit(f.clearinghouse, "MarketParamsUpdated");
    const [pending, pendingEta] = await f.clearinghouse.pendingMarketParams(f.ethId);
    expect([Array.from(pending), pendingEta]).to.deep.equal([paramsArray(params), eta]);
    expect(Array.from(await f.clearinghouse.marketParams(f.ethId))).to.deep.equal(paramsArray(defaultMarketParams()));
    // The other market has nothing pending.
    const [other, otherEta] = await f.clearinghouse.pendingMarketParams(f.btcId);
    expect([Array.from(other), otherEta]).to.deep.equal([NOTHING_PENDING, 0n]);
  });

  it("refuses to apply a change one second before it is due (MarketParamsNotDue), then lets anyone apply it, accruing funding first", async function () {
    const f = await loadFixture(systemFixture);
    const params = defaultMarketParams({ takerFee: 10n ** 15n, maxPremium: (5n * PP) / 4n });
    const eta = await propose(f, params);
    await time.increaseTo(eta - 10n);
    await refreshFeeds(f);
    await time.setNextBlockTimestamp(eta - 1n);
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.connect(f.traders[9]).applyMarketParams(f.ethId),
      "MarketParamsNotDue",
      f.ethId,
      eta,
    );
    await time.setNextBlockTimestamp(eta);
    const tx = f.clearinghouse.connect(f.traders[9]).applyMarketParams(f.ethId);
    await expect(tx).to.emit(f.clearinghouse, "FundingAccrued");
    await expect(tx).to.emit(f.clearinghouse, "MarketParamsUpdated").withArgs(f.ethId, isParams(params));
    expect(Array.from(await f.clearinghouse.marketParams(f.ethId))).to.deep.equal(paramsArray(params));
    expect((await f.clearinghouse.marketState(f.ethId)).lastFundingTime).to.equal(eta);
    const [pending, pendingEta] = await f.clearinghouse.pendingMarketParams(f.ethId);
    expect([Array.from(pending), pendingEta]).to.deep.equal([NOTHING_PENDING, 0n]);
    // Applied once: there is nothing left to apply.
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.applyMarketParams(f.ethId),
      "MarketParamsNotPending",
      f.ethId,
    );
  });

  it("lets the market admin cancel a pending change with MarketParamsCancelled; it can then never be applied", async function () {
    const f = await loadFixture(systemFixture);
    const eta = await propose(f, defaultMarketParams({ mmr: (11n * PP) / 2n }));
    await expect(f.clearinghouse.cancelMarketParams(f.ethId))
      .to.emit(f.clearinghouse, "MarketParamsCancelled")
      .withArgs(f.ethId, eta);
    const [pending, pendingEta] = await f.clearinghouse.pendingMarketParams(f.ethId);
    expect([Array.from(pending), pendingEta]).to.deep.equal([NOTHING_PENDING, 0n]);
    await time.increaseTo(eta);
    await refreshFeeds(f);
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.applyMarketParams(f.ethId),
      "MarketParamsNotPending",
      f.ethId,
    );
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.cancelMarketParams(f.ethId),
      "MarketParamsNotPending",
      f.ethId,
    );
    expect((await f.clearinghouse.marketParams(f.ethId)).mmr).to.equal(5n * PP);
  });

  it("replaces a pending change with a new proposal, whose delay starts again", async function () {
    const f = await loadFixture(systemFixture);
    const first = await propose(f, defaultMarketParams({ takerFee: 10n ** 15n }));
    await time.increaseTo(first - 100n);
    const second = defaultMarketParams({ makerFee: 0n });
    const eta = await propose(f, second);
    expect(eta > first + PARAMS_DELAY - 100n).to.equal(true);
    await time.increaseTo(first);
    await refreshFeeds(f);
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.applyMarketParams(f.ethId),
      "MarketParamsNotDue",
      f.ethId,
      eta,
    );
    await time.increaseTo(eta);
    await refreshFeeds(f);
    await f.clearinghouse.applyMarketParams(f.ethId);
    expect(Array.from(await f.clearinghouse.marketParams(f.ethId))).to.deep.equal(paramsArray(second));
  });

  it("validates a proposal against the same bounds as a listing", async function () {
    const f = await loadFixture(systemFixture);
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.proposeMarketParams(f.ethId, defaultMarketParams({ takerBand: 6n * PP })),
      "MarketParamOutOfBounds",
      fieldIs("takerBand"),
      6n * PP,
      1n,
      5n * PP,
    );
  });

  for (const [field, value, min, max] of BEYOND_STEP) {
    const current = BigInt(defaultMarketParams()[field] as bigint);
    it(`rejects ${field} one wei ${value > current ? "above" : "below"} one step from ${current} with MarketParamStepTooLarge(${field}, ${current}, ${value}, ${min}, ${max})`, async function () {
      const f = await loadFixture(systemFixture);
      await expectRejected(
        f,
        scope(f),
        () => f.clearinghouse.proposeMarketParams(f.ethId, defaultMarketParams({ [field]: value })),
        "MarketParamStepTooLarge",
        fieldIs(field),
        current,
        value,
        min,
        max,
      );
    });
  }

  it("accepts every field moved by one whole step at once, up, and then down from there a day later", async function () {
    const f = await loadFixture(systemFixture);
    await changeMarketParams(f, f.ethId, ONE_STEP_UP);
    expect(Array.from(await f.clearinghouse.marketParams(f.ethId))).to.deep.equal(paramsArray(ONE_STEP_UP));
    // Two steps down from there in one change is refused; the first field it names is imr.
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.proposeMarketParams(f.ethId, ONE_STEP_DOWN),
      "MarketParamStepTooLarge",
      fieldIs("imr"),
      11n * PP,
      9n * PP,
      10n * PP,
      12n * PP,
    );
    await changeMarketParams(f, f.ethId, defaultMarketParams());
    await changeMarketParams(f, f.ethId, ONE_STEP_DOWN);
    expect(Array.from(await f.clearinghouse.marketParams(f.ethId))).to.deep.equal(paramsArray(ONE_STEP_DOWN));
  });

  it("reserves proposing and cancelling to MARKET_ADMIN_ROLE, and rejects a market never listed", async function () {
    const f = await loadFixture(systemFixture);
    const [alice] = f.traders;
    const role = await f.clearinghouse.MARKET_ADMIN_ROLE();
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.connect(alice).proposeMarketParams(f.ethId, defaultMarketParams()),
      "AccessControlUnauthorizedAccount",
      alice.address,
      role,
    );
    await propose(f, defaultMarketParams({ makerFee: 0n }));
    await expectRejected(
      f,
      scope(f),
      () => f.clearinghouse.connect(alice).cancelMarketParams(f.ethId),
      "AccessControlUnauthorizedAccount",
      alice.address,
      role,
    );
    await expectRejected(
      f,
      { ids: [SOL], accounts: [] },
      () => f.clearinghouse.proposeMarketParams(SOL, defaultMarketParams()),
      "MarketUnknown",
      SOL,
    );
    await expectRejected(
      f,
      { ids: [SOL], accounts: [] },
      () => f.clearinghouse.applyMarketParams(SOL),
      "MarketParamsNotPending",
      SOL,
    );
  });

  it("keeps the market usable after the funding window is halved fifty minutes into a window", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    await open(f, f.ethId, alice, bob, WAD, P);
    const eta = await propose(f, defaultMarketParams({ fundingWindow: HOUR / 2n }));
    // Fifty minutes into the hour-long window in which the change becomes due.
    const start = (await f.clearinghouse.marketState(f.ethId)).windowStart;
    const windows = (eta - start + HOUR - 1n) / HOUR;
    const at = start + windows * HOUR + 3000n;
    await time.increaseTo(at - 10n);
    await refreshFeeds(f);
    await time.setNextBlockTimestamp(at);
    await f.clearinghouse.applyMarketParams(f.ethId);
    const s = await f.clearinghouse.marketState(f.ethId);
    expect([s.windowStart, s.lastFundingTime]).to.deep.equal([at - 3000n, at]);
    await time.increase(60);
    // Funding, trading and margin moves keep working; accrual does not underflow.
    await expect(f.clearinghouse.accrueFunding(f.ethId)).to.not.be.reverted;
    await expect(f.clearinghouse.connect(alice).addMargin(f.ethId, WAD)).to.not.be.reverted;
    const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: P });
    const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -WAD, limitPrice: P });
    await submit(f.clearinghouse, f.keeper, m, t, WAD);
    expect(await f.lens.equity(f.ethId, alice.address)).to.be.greaterThan(0n);
  });

  it("wash-trader funding: a funding change cannot make a healthy 10x long liquidatable before its delay has passed", async function () {
    // The attack, when a change took effect at once: the admin set priceBand and maxPremium to
    // 10%, fundingPeriod to 1 hour and fundingWindow to 1 minute, and a wash trader filled 10%
    // above the index every minute. With no price move, a healthy 10x long was liquidatable after
    // 31 one-minute windows.
    const f = await loadFixture(systemFixture);
    const ch = f.clearinghouse;
    const [alice, bob, carol, dave] = f.traders;
    await open(f, f.ethId, alice, bob, 10n * WAD, P, { long: 10n * WAD });
    const accounts = [alice.address, bob.address, carol.address, dave.address];

    // That change is now refused outright: the band may move by one percentage point.
    const attack = defaultMarketParams({
      priceBand: 10n * PP,
      maxPremium: 10n * PP,
      fundingPeriod: HOUR,
      fundingWindow: 60n,
    });
    await expectRejected(
      f,
      scope(f, accounts),
      () => ch.proposeMarketParams(f.ethId, attack),
      "MarketParamStepTooLarge",
      fieldIs("priceBand"),
      5n * PP,
      10n * PP,
      4n * PP,
      6n * PP,
    );
    // The largest step toward it is accepted, but only as a pending change, visible to everyone.
    const step = defaultMarketParams({
      priceBand: 6n * PP,
      maxPremium: (5n * PP) / 4n,
      fundingPeriod: 4n * HOUR,
      fundingWindow: HOUR / 2n,
    });
    // Proposed half an hour into the first funding window (the market's listing started it).
    const listedAt = (await ch.marketState(f.ethId)).windowStart;
    await time.setNextBlockTimestamp(listedAt + HOUR / 2n);
    const proposal = await ch.proposeMarketParams(f.ethId, step);
    const eta = BigInt((await proposal.getBlock())!.timestamp) + PARAMS_DELAY;
    await expect(proposal).to.emit(ch, "MarketParamsProposed").withArgs(f.ethId, isParams(step), eta);
    const [pending, pendingEta] = await ch.pendingMarketParams(f.ethId);
    expect([Array.from(pending), pendingEta]).to.deep.equal([paramsArray(step), eta]);

    // Until the change is due, the wash trader fills 100 ETH at the top of the band in force
    // (2,100: +5%, clamped to the 1% premium cap) once in every one-hour funding window, carol
    // and dave taking turns to buy. F follows lib/funding.ts at the old parameters to the wei.
    const old = defaultMarketParams();
    const [window, period, cap] = [BigInt(old.fundingWindow), BigInt(old.fundingPeriod), BigInt(old.maxPremium)];
    const wash = 100n * WAD;
    const top = 2100n * WAD;
    let expected = await fundingStateOf(ch, f.ethId);
    let carolBuys = true;
    let fills = 0;
    for (let t = expected.windowStart + window + 1n; t + 1n < eta - 3n; t += window) {
      await time.setNextBlockTimestamp(t);
      await f.setPrice(ETH, P); // fresh for the wash trader's increase
      const [buyer, seller] = carolBuys ? [carol, dave] : [dave, carol];
      const m = await signed(ch, buyer, { marketId: f.ethId, size: wash, limitPrice: top });
      const tk = await signed(ch, seller, { marketId: f.ethId, size: -wash, limitPrice: top });
      const openInterest = (await ch.marketState(f.ethId)).longOpenInterest;
      await time.setNextBlockTimestamp(t + 1n);
      await submit(ch, f.keeper, m, tk, wash);
      expected = projectFunding(expected, window, period, P, t + 1n, openInterest);
      expected.premiumTimesSize += premiumOf(top, P, cap) * wash;
      expected.windowSize += wash;
      expect(await fundingStateOf(ch, f.ethId)).to.deep.equal(expected);
      carolBuys = !carolBuys;
      fills += 1;
    }
    expect(fills).to.equal(24);

    // Three seconds before the change is due, funding accrues at the old parameters ...
    await time.setNextBlockTimestamp(eta - 3n);
    await f.setPrice(ETH, P);
    const openInterest = (await ch.marketState(f.ethId)).longOpenInterest;
    await time.setNextBlockTimestamp(eta - 2n);
    await ch.accrueFunding(f.ethId);
    expected = projectFunding(expected, window, period, P, eta - 2n, openInterest);
    expect(await fundingStateOf(ch, f.ethId)).to.deep.equal(expected);
    // ... and the 10x long is healthy: it paid 53.64 per unit of funding and keeps an equity of
    // 1,463.65 against a maintenance requirement of 1,000.
    const pos = await ch.getPosition(f.ethId, alice.address);
    const equity = equityOf(pos.margin, pos.size, pnlPerUnit(true, pos.entry, P, expected.cumulativeFunding));
    const maintenance = requirementUp(pos.size, P, BigInt(old.mmr));
    expect([pos.margin, maintenance]).to.deep.equal([2000n * WAD, 1000n * WAD]);
    expect(expected.cumulativeFunding).to.equal(53_635_101_010_036_576_000n);
    expect(equity).to.equal(1_463_648_989_899_634_240_000n);
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(false);
    // The change is still only pending: applying it a second early is refused.
    await time.setNextBlockTimestamp(eta - 1n);
    await expectRejected(
      f,
      scope(f, accounts),
      () => ch.connect(f.keeper).applyMarketParams(f.ethId),
      "MarketParamsNotDue",
      f.ethId,
      eta,
    );
    expect(Array.from(await ch.marketParams(f.ethId))).to.deep.equal(paramsArray(old));
    // From eta on anyone may apply it; a further step waits another day.
    await time.setNextBlockTimestamp(eta);
    await ch.connect(f.keeper).applyMarketParams(f.ethId);
    expect(Array.from(await ch.marketParams(f.ethId))).to.deep.equal(paramsArray(step));
  });
});
