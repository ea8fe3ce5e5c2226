/**
 * Bankrupt positions under liquidation (docs/mechanism.md section 3, Liquidation and Insurance fund):
 * the fund pays the drop in the WHOLE position's deficit (D - D'), only if it covers all of D,
 * the rounding reserve pays the 0 to 1 wei the floors leave, the taken part ends at exactly zero,
 * and the keeper is paid the fixed keeper pay from the keeper reserve. Plus: a same-owner liquidator cannot profit.
 *
 * Alice is long 1 ETH at 10x from 2,000 (c = 200), Bob short; at 1,750 her equity is -50.
 */
import { expect } from "chai";
import { loadFixture, takeSnapshot } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, USDC, type Fixture } from "../helpers/fixture";
import { fullSnapshot, liquidateExactly, openAt, positionOf, stake } from "../helpers/liquidation";
import { WAD } from "../../lib/math";

const X5 = 5n * WAD;
const X10 = 10n * WAD;

async function aliceBankrupt(stakeTokens: bigint, gap = 1750n * WAD): Promise<Fixture> {
  const f = await loadFixture(systemFixture);
  const [alice, bob, , dave] = f.traders;
  await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
  // Staking sweeps the 0.7 of pending trading fees into the fund first.
  if (stakeTokens > 0n) await stake(f, dave, stakeTokens);
  await f.setPrice(ETH, gap);
  expect(await f.lens.isBankrupt(f.ethId, alice.address)).to.equal(true);
  return f;
}

/** OpenZeppelin ERC-4626 with a decimals offset of 6: assets = floor(s * (A + 1) / (S + 10^6)). */
async function valueOf(f: Fixture, shares: bigint): Promise<bigint> {
  const assets = await f.insuranceFund.totalAssets();
  const supply = await f.insuranceFund.totalSupply();
  const value = (shares * (assets + 1n)) / (supply + 10n ** 6n);
  expect(await f.insuranceFund.convertToAssets(shares)).to.equal(value);
  return value;
}

describe("Liquidation of bankrupt positions: insurance fund cover", function () {
  it("covers a full bankruptcy: the fund pays exactly D, the taken part ends at zero, stakers bear it", async function () {
    const f = await aliceBankrupt(10_000n * USDC);
    const [alice, , carol, dave] = f.traders;
    const shares = await f.insuranceFund.balanceOf(dave.address);
    const valueBefore = await valueOf(f, shares);
    const fundBefore = await f.insuranceFund.totalAssets();
    expect(await f.clearinghouse.pendingFundFees()).to.equal(0n);
    // Fees of the opening trade, 1.4: 0.7 to the fund, 0.14 to the keeper reserve, 0.56 to the treasury.
    expect(await f.clearinghouse.treasuryBalance()).to.equal(56n * 10n ** 16n);
    expect(await f.clearinghouse.keeperReserve(f.ethId)).to.equal(14n * 10n ** 16n);
    const aliceFree = await f.clearinghouse.freeCollateral(alice.address);

    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, WAD, X5);
    // D = 50; the fund pays all of it (D' = 0) in whole tokens, and no reserve wei is needed.
    expect(pred.plan.takenEquity).to.equal(-50n * WAD);
    expect(pred.plan.deficit).to.equal(50n * WAD);
    expect(pred.plan.fundPays).to.equal(50n * WAD);
    expect(pred.plan.reservePays).to.equal(0n);
    expect(pred.coverTokens).to.equal(50n * USDC);
    // A bankrupt part pays no fee; the keeper pay (1) is capped by what the keeper reserve holds
    // (0.14), which is now empty; the treasury is untouched.
    expect(pred.plan.toLiquidator).to.equal(0n);
    expect(pred.reward).to.equal(14n * 10n ** 16n);
    expect(await f.clearinghouse.keeperReserve(f.ethId)).to.equal(0n);
    expect(await f.clearinghouse.treasuryBalance()).to.equal(56n * 10n ** 16n);
    // The bankrupt owner gets nothing and owes nothing: the taken part ended at exactly zero.
    expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(aliceFree);
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).size).to.equal(0n);
    // Stakers absorb the loss: the fund holds 50 tokens less and each share is worth less.
    expect(await f.insuranceFund.totalAssets()).to.equal(fundBefore - 50n * USDC);
    // Dave bears his pro-rata part of the 50 tokens; the 10^6 virtual shares of the ERC-4626
    // offset bear the rest (they own part of the 0.7 fees swept in before the first stake).
    const valueAfter = await valueOf(f, shares);
    const supply = await f.insuranceFund.totalSupply();
    const proRata = (50n * USDC * shares) / (supply + 10n ** 6n);
    expect(valueBefore - valueAfter).to.be.within(proRata - 1n, proRata + 1n);
    expect(valueBefore - valueAfter).to.be.within(49_990_000n, 50n * USDC);
  });

  it("pays keeper pay only for the take that finishes a bankrupt position, as far as the reserve goes", async function () {
    const f = await aliceBankrupt(10_000n * USDC);
    const [alice, , carol, dave] = f.traders;
    const ch = f.clearinghouse;
    const carolFree = await ch.freeCollateral(carol.address);
    // Half of a bankrupt position is less than the most allowed now (all of it): no keeper pay.
    const first = await liquidateExactly(f, f.ethId, alice.address, carol, WAD / 2n, X5);
    expect(first.reward).to.equal(0n);
    // Carol posted the margin of her 0.5 ETH leg at 5x, ceil(0.5 * 1750 / 5) = 175.
    expect(await ch.freeCollateral(carol.address)).to.equal(carolFree - 175n * WAD);
    // The rest is the whole remaining position: keeperPay (1), capped at what the reserve holds (0.14).
    const second = await liquidateExactly(f, f.ethId, alice.address, dave, WAD / 2n, X5);
    expect(second.reward).to.equal(14n * 10n ** 16n);
    expect(await ch.keeperReserve(f.ethId)).to.equal(0n);
  });

  it("draws unswept fund fees first, then whole tokens, keeping the sub-token surplus as fund fees", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol, dave] = f.traders;
    await stake(f, dave, 10_000n * USDC); // before the trade: its 0.7 of fund fees stays pending
    await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
    await f.setPrice(ETH, 175_012_345_678n * 10n ** 10n); // D = 49.87654322
    expect(await f.clearinghouse.pendingFundFees()).to.equal(7n * 10n ** 17n);
    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, WAD, X5);
    const rest = pred.plan.fundPays - 7n * 10n ** 17n;
    expect(pred.plan.fundPays).to.equal(49_876_543_220n * 10n ** 9n);
    expect(pred.coverTokens).to.equal(49_176_544n);
    expect(await f.clearinghouse.pendingFundFees()).to.equal(pred.coverTokens * 10n ** 12n - rest);
    expect(await f.clearinghouse.pendingFundFees()).to.equal(78n * 10n ** 10n);
  });

  it("reverts AdlOnly(market, account, D, available) when the fund cannot cover D; nothing moves", async function () {
    const f = await aliceBankrupt(0n);
    const [alice, bob, carol] = f.traders;
    const ch = f.clearinghouse;
    const accounts = [alice.address, bob.address, carol.address];
    const before = await fullSnapshot(f, [f.ethId, f.btcId], accounts);
    // Available: 0 tokens in the fund plus the 0.7 of fees not yet swept.
    await expect(ch.connect(carol).liquidate(f.ethId, alice.address, WAD, X5))
      .to.be.revertedWithCustomError(ch, "AdlOnly")
      .withArgs(f.ethId, alice.address, 50n * WAD, 7n * 10n ** 17n);
    expect(await fullSnapshot(f, [f.ethId, f.btcId], accounts)).to.deep.equal(before);
  });

  it("reverts AdlOnly for a small partial take too: the fund must cover the WHOLE deficit", async function () {
    const f = await aliceBankrupt(49n * USDC); // fund: 49 staked + 0.7 swept fees = 49.7 < 50
    const [alice, bob, carol] = f.traders;
    const ch = f.clearinghouse;
    const accounts = [alice.address, bob.address, carol.address];
    const before = await fullSnapshot(f, [f.ethId, f.btcId], accounts);
    await expect(ch.connect(carol).liquidate(f.ethId, alice.address, WAD / 10n, X5))
      .to.be.revertedWithCustomError(ch, "AdlOnly")
      .withArgs(f.ethId, alice.address, 50n * WAD, 497n * 10n ** 17n);
    expect(await fullSnapshot(f, [f.ethId, f.btcId], accounts)).to.deep.equal(before);
  });

  it("covers a partial take of a bankrupt position with D - D'; the reserve pays the floor's wei", async function () {
    // x = 1750.12345678 - 2000 is not a whole number of units, so floors leave one wei.
    const f = await aliceBankrupt(10_000n * USDC, 175_012_345_678n * 10n ** 10n);
    const [alice, , carol, dave, erin] = f.traders;
    // Top the market's keeper reserve up beyond keeperPay (anyone may fund it).
    await (await f.clearinghouse.connect(erin).fundKeeperReserve(f.ethId, 10n * USDC)).wait();
    const ch = f.clearinghouse;
    const before = await positionOf(f, f.ethId, alice.address);
    const deficit = -(await f.lens.equity(f.ethId, alice.address));
    const d = WAD / 3n;

    const first = await liquidateExactly(f, f.ethId, alice.address, carol, d, X5);
    const remainderDeficit = -(await f.lens.equity(f.ethId, alice.address));
    expect(first.plan.deficit).to.equal(deficit);
    expect(first.plan.deficitAfter).to.equal(remainderDeficit);
    expect(first.plan.fundPays).to.equal(deficit - remainderDeficit);
    expect(first.plan.reservePays).to.equal(1n);
    expect(first.plan.fundPays + first.plan.reservePays).to.equal(-first.plan.takenEquity);
    expect(await ch.roundingReserve(f.ethId)).to.equal(10n ** 12n - 1n);
    // A third of a bankrupt position is not the most allowed (all of it): no keeper pay yet.
    expect(first.reward).to.equal(0n);
    // The remainder keeps its deficit (never paid into margin that stays open), K and a.
    const after = await positionOf(f, f.ethId, alice.address);
    expect(after).to.deep.equal({ ...before, size: before.size - d, margin: before.margin - first.plan.released });
    expect(remainderDeficit).to.be.greaterThan(0n);
    expect(await f.lens.isBankrupt(f.ethId, alice.address)).to.equal(true);

    // A second keeper takes the rest: the fund pays D', in total exactly D.
    const second = await liquidateExactly(f, f.ethId, alice.address, dave, after.size, X5);
    expect(second.plan.fundPays).to.equal(remainderDeficit);
    expect(second.plan.reservePays).to.equal(0n);
    // The take that finishes the position earns keeperPay (1 quote unit), which the reserve affords.
    expect(second.reward).to.equal(WAD);
    expect(first.plan.fundPays + second.plan.fundPays).to.equal(deficit);
  });
});

describe("Liquidation by a second account of the same owner", function () {
  it("does not profit: combined wealth drops by the fund's share less the capped keeper pay, never less than 0", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, , , , , aliceToo] = f.traders;
    const ch = f.clearinghouse;
    await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
    await f.setPrice(ETH, 1880n * WAD);
    const wealth = async () =>
      (await ch.freeCollateral(alice.address)) +
      (await f.lens.equity(f.ethId, alice.address)) +
      (await ch.freeCollateral(aliceToo.address)) +
      (await f.lens.equity(f.ethId, aliceToo.address));
    const before = await wealth();
    const cap = await f.lens.maxLiquidationSize(f.ethId, alice.address);
    const pred = await liquidateExactly(f, f.ethId, alice.address, aliceToo, cap, X5);
    // Why exactly the fund's share:
    // - the taken part's equity V moves from Alice's position into... Alice's position (it stays
    //   in margin, less the fee), and the part itself moves to aliceToo at the index price P, where
    //   its PnL is zero (K = P - F exactly), so the takeover itself creates or destroys nothing;
    // - aliceToo's margin comes out of its own free collateral: a move within the same owner;
    // - of the fee paid by Alice, the liquidator's share comes back to aliceToo, and only the
    //   fund's share (fee - floor(fee * share)) leaves the owner;
    // - with x = -120 a whole number of units, floor(d*x/W) + floor((q-d)*x/W) == floor(q*x/W),
    //   so no rounding wei is lost either (in general the split can cost the owner at most 1 wei,
    //   never gain it).
    // - the keeper pay from the reserve is capped at the fund's share of the ordinary fee, which
    //   equals the fund's share here (the taken part's equity exceeds the fee): no gain.
    expect(pred.plan.toLiquidator).to.be.greaterThan(0n);
    expect(pred.reward).to.be.greaterThan(0n);
    expect(pred.reward).to.be.lessThanOrEqual(pred.plan.toFund);
    expect(before - (await wealth())).to.equal(pred.plan.toFund - pred.reward);
  });
});

describe("Liquidation pay: waiting for bankruptcy never pays", function () {
  /**
   * The attack: with equity between 0 and the fee, liquidating in time paid the liquidator its share
   * of that equity, while waiting until the position was bankrupt paid its share of the full fee from
   * the treasury and made the fund pay instead of earn. Now the liquidator gets its share of
   * min(fee, equity of the taken part) plus the same fixed keeper pay either way, and a bankrupt part
   * pays the keeper pay only, so liquidating in time always pays at least as much.
   */
  it("waiting for bankruptcy: the in-time liquidation at equity below the fee pays more than the bankrupt one", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol, dave, erin] = f.traders;
    await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
    await stake(f, dave, 10_000n * USDC);
    // Top the market's keeper reserve up beyond keeperPay (anyone may fund it).
    await (await f.clearinghouse.connect(erin).fundKeeperReserve(f.ethId, 10n * USDC)).wait();
    const snap = await takeSnapshot();

    // In time: at 1,810 Alice's equity is 10, below the fee on her notional (18.10).
    await f.setPrice(ETH, 1810n * WAD);
    expect(await f.lens.equity(f.ethId, alice.address)).to.equal(10n * WAD);
    const cap = await f.lens.maxLiquidationSize(f.ethId, alice.address);
    const inTime = await liquidateExactly(f, f.ethId, alice.address, carol, cap, X5);
    const paidInTime = inTime.plan.toLiquidator + inTime.reward;
    expect(inTime.plan.toFund, "the fund earns its fee share").to.be.greaterThan(0n);

    // Waiting: at 1,780 Alice is bankrupt (equity -20) and the fund covers her.
    await snap.restore();
    await f.setPrice(ETH, 1780n * WAD);
    const late = await liquidateExactly(f, f.ethId, alice.address, carol, WAD, X5);
    const paidLate = late.plan.toLiquidator + late.reward;
    expect(late.plan.toLiquidator, "a bankrupt part pays no fee").to.equal(0n);
    expect(late.reward, "only the fixed keeper pay").to.equal(WAD);
    expect(late.plan.fundPays, "the fund pays instead of earning").to.equal(20n * WAD);
    expect(paidInTime).to.be.greaterThan(paidLate);
  });
});
