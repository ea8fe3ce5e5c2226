/**
 * Review findings on the keeper reserve and keeper pay (docs/mechanism.md section 7.2), as regression
 * tests: `keeperPay` was a fixed amount per settling call, so whoever settled could multiply it by
 * splitting one settlement into many calls. It is now pro rata to the part settled. Default parameters: keeperPay 1, liquidation fee 1%, liquidator share 50%,
 * minNotional 10, keeperFeeShare 10% of trading fees.
 */
import { expect } from "chai";
import { loadFixture, takeSnapshot } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, USDC, type Fixture } from "../helpers/fixture";
import { openAt, stake } from "../helpers/liquidation";
import { keeperPlan, lev, tradeAt, units } from "../helpers/adl";
import { WAD } from "../../lib/math";

const X5 = 5n * WAD;
const X10 = 10n * WAD;

/** Alice long 1 ETH at 2,000, 10x (c = 200), Bob short; the fund staked; the keeper reserve topped up. */
async function aliceBankruptCovered(): Promise<Fixture> {
  const f = await loadFixture(systemFixture);
  const [alice, bob, , dave, erin] = f.traders;
  await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
  await stake(f, dave, 10_000n * USDC);
  // A healthy keeper reserve: what months of trading fees put there (10% of every fee).
  await (await f.clearinghouse.connect(erin).fundKeeperReserve(f.ethId, 100n * USDC)).wait();
  await f.setPrice(ETH, 1750n * WAD); // equity -50: bankrupt, the fund covers it
  expect(await f.lens.isBankrupt(f.ethId, alice.address)).to.equal(true);
  return f;
}

describe("review: keeper pay farming", function () {
  it("split liquidation: a bankrupt liquidation split into 8 pieces pays keeperPay once in total, as one call does", async function () {
    const f = await aliceBankruptCovered();
    const [alice, , carol, , , , aliceToo] = f.traders;
    const ch = f.clearinghouse;
    const reserve0 = await ch.keeperReserve(f.ethId);

    // Honest: one call for the whole position pays keeperPay once.
    const snap = await takeSnapshot();
    const carolFree = await ch.freeCollateral(carol.address);
    await (await ch.connect(carol).liquidate(f.ethId, alice.address, WAD, X5)).wait();
    const honestPay = reserve0 - (await ch.keeperReserve(f.ethId));
    expect(honestPay).to.equal(WAD);
    expect(await ch.freeCollateral(carol.address)).to.equal(carolFree - 350n * WAD + WAD); // margin 1750/5, + pay
    await snap.restore();

    // Split: pieces of 0.125 ETH taken by Alice's own second account; each earns keeperPay / 8.
    const aliceFree = await ch.freeCollateral(alice.address);
    const tooFree = await ch.freeCollateral(aliceToo.address);
    let gas = 0n;
    for (let i = 0; i < 8; i++) {
      const r = (await (await ch.connect(aliceToo).liquidate(f.ethId, alice.address, WAD / 8n, X5)).wait())!;
      gas += r.gasUsed;
    }
    expect((await ch.getPosition(f.ethId, alice.address)).size).to.equal(0n);
    const splitPay = reserve0 - (await ch.keeperReserve(f.ethId));
    expect(splitPay, "keeperPay once, as for one call").to.equal(honestPay);
    // Alice's owner: the bankrupt account is unchanged, the second account holds Alice's 1 ETH at
    // 1,750 (zero PnL, margin 350 of its own) and keeperPay more than it had, as any liquidator would.
    expect(await ch.freeCollateral(alice.address)).to.equal(aliceFree);
    expect(await ch.freeCollateral(aliceToo.address)).to.equal(tooFree - 350n * WAD + WAD);
    console.log(
      `      split bankrupt liquidation: pay ${splitPay / WAD} vs ${honestPay / WAD}, ${gas / 8n} gas per piece`,
    );
  });

  it("split ADL: one call per counterparty pays keeperPay once in total, as the whole call does", async function () {
    const f = await loadFixture(systemFixture);
    const [b, s1, s2, s3, , , , , , erin] = f.traders;
    const id = f.ethId;
    const ch = f.clearinghouse;
    // B long 3 at 2,000 (10x) against three 1-unit shorts (2x, all eligible once B is bankrupt).
    await tradeAt(f, b, s1, units(1), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, b, s2, units(1), ETH_PRICE, { long: lev(10), short: lev(3) });
    await tradeAt(f, b, s3, units(1), ETH_PRICE, { long: lev(10), short: lev(4) });
    await (await ch.connect(erin).fundKeeperReserve(id, 100n * USDC)).wait();
    await f.setPrice(ETH, 1700n * WAD); // B's equity 600 - 900 = -300; the fund holds ~2 of fees
    const reserve0 = await ch.keeperReserve(id);

    const snap = await takeSnapshot();
    const whole = await keeperPlan(f, id, b.address);
    expect(whole.plan.counterparties.length).to.equal(3);
    await (
      await f.deleverager.connect(f.keeper).deleverage(id, b.address, whole.plan.counterparties, whole.plan.proof)
    ).wait();
    expect((await ch.getPosition(id, b.address)).size).to.equal(0n);
    const honestPay = reserve0 - (await ch.keeperReserve(id));
    expect(honestPay).to.equal(WAD);
    await snap.restore();

    for (let i = 0; i < 3; i++) {
      const k = await keeperPlan(f, id, b.address, 1);
      expect(k.plan.counterparties.length).to.equal(1);
      await (
        await f.deleverager.connect(f.keeper).deleverage(id, b.address, k.plan.counterparties, k.plan.proof)
      ).wait();
    }
    expect((await ch.getPosition(id, b.address)).size).to.equal(0n);
    const splitPay = reserve0 - (await ch.keeperReserve(id));
    // Each call pays keeperPay * d / q_B rounded down: a wei or two less than one call at most.
    expect(splitPay, "keeperPay once for the same settlement").to.be.within(honestPay - 2n, honestPay);
  });

  it("fails: a solvent owner liquidating itself in pieces from a second account still does not profit", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, , , erin, , aliceToo] = f.traders;
    const ch = f.clearinghouse;
    await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
    await (await ch.connect(erin).fundKeeperReserve(f.ethId, 100n * USDC)).wait();
    await f.setPrice(ETH, 1880n * WAD); // equity 80 < maintenance 94: liquidatable, solvent
    const wealth = async () =>
      (await ch.freeCollateral(alice.address)) +
      (await f.lens.equity(f.ethId, alice.address)) +
      (await ch.freeCollateral(aliceToo.address)) +
      (await f.lens.equity(f.ethId, aliceToo.address));
    const before = await wealth();
    const piece = (await f.lens.maxLiquidationSize(f.ethId, alice.address)) / 4n;
    let pieces = 0;
    while (pieces < 8 && (await f.lens.isLiquidatable(f.ethId, alice.address))) {
      await (await ch.connect(aliceToo).liquidate(f.ethId, alice.address, piece, X5)).wait();
      pieces++;
    }
    expect(pieces).to.be.greaterThan(1);
    // Each piece pays keeperPay capped at the fund's share of its fee, which the owner paid: no gain.
    expect(await wealth()).to.be.lessThanOrEqual(before);
  });
});
