/**
 * Keeper liquidation (docs/mechanism.md section 3, docs/liquidation.md): sizes, fees and every post-state
 * checked to the wei against the TypeScript mirror in test/helpers/liquidation.ts.
 *
 * All trades here happen at the index price, so the funding premium is zero and F stays 0; the
 * mirror still reads F from the state the call wrote.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, type Fixture } from "../helpers/fixture";
import {
  BUFFER,
  feeUp,
  fullSnapshot,
  health,
  liqParams,
  liquidateExactly,
  maxTake,
  openAt,
  positionOf,
} from "../helpers/liquidation";
import { WAD, mulDivDown } from "../../lib/math";
import { requirementUp } from "../../lib/position";

const X5 = 5n * WAD;
const X10 = 10n * WAD;
const price = (units: number): bigint => BigInt(units) * WAD;

/** Alice long `size` at 10x (margin exactly the initial requirement), Bob short at 5x, at 2,000. */
async function aliceLongAtTenX(size: bigint): Promise<Fixture> {
  const f = await loadFixture(systemFixture);
  const [alice, bob] = f.traders;
  await openAt(f, f.ethId, alice, bob, size, ETH_PRICE, { long: X10, short: X5 });
  return f;
}

/** The mirror's cap for `account` at the current oracle price (F = 0), checked against the view. */
async function capOf(f: Fixture, account: string): Promise<bigint> {
  const p = await liqParams(f, f.ethId);
  const [index] = await f.oracle.getPrice(f.ethId, false);
  const pos = await positionOf(f, f.ethId, account);
  const { eq, liquidatable } = health(pos, index, 0n, p);
  expect(liquidatable, "position is liquidatable").to.equal(true);
  const cap = maxTake(pos.size, eq, index, p);
  expect(await f.lens.maxLiquidationSize(f.ethId, account)).to.equal(cap);
  return cap;
}

describe("Liquidation: fees, sizes and post-states against the mirror", function () {
  it("takes a small long over whole, pays the uncapped fee and frees the rest of its equity", async function () {
    const f = await aliceLongAtTenX(WAD / 100n); // 0.01 ETH, notional 20
    const [alice, , carol] = f.traders;
    await f.setPrice(ETH, price(1860)); // equity 2 - 1.4 = 0.6 < maintenance 0.93
    // The least partial take would leave under the 10-unit minimum notional, so the cap is all of it.
    const cap = await capOf(f, alice.address);
    expect(cap).to.equal(WAD / 100n);
    const freeBefore = await f.clearinghouse.freeCollateral(alice.address);
    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, cap, X5);
    // V = 2 - 1.4 = 0.6; fee = ceil(0.01 * 1860 * 1%) = 0.186 < V: not capped.
    expect(pred.plan.takenEquity).to.equal(6n * 10n ** 17n);
    expect(pred.plan.fee).to.equal(186n * 10n ** 15n);
    expect(pred.plan.toLiquidator).to.equal(93n * 10n ** 15n);
    expect(pred.plan.toFund).to.equal(93n * 10n ** 15n);
    expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(freeBefore + 414n * 10n ** 15n);
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).size).to.equal(0n);
    const taken = await positionOf(f, f.ethId, carol.address);
    expect(taken).to.deep.include({ isLong: true, size: WAD / 100n, entry: price(1860) });
  });

  it("caps the fee at the taken part's equity, so the fund never pays a fee", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, , carol] = f.traders;
    await f.setPrice(ETH, price(1815)); // equity 15, the 1% fee would be 18.15
    expect(await capOf(f, alice.address)).to.equal(WAD);
    const freeBefore = await f.clearinghouse.freeCollateral(alice.address);
    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, WAD, X10);
    expect(pred.plan.takenEquity).to.equal(price(15));
    expect(pred.plan.fee).to.equal(price(15));
    expect(pred.plan.toLiquidator + pred.plan.toFund).to.equal(price(15));
    expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(freeBefore);
  });

  it("takes a long partially up to the cap, keeping the net equity in margin and restoring health", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, , carol] = f.traders;
    await f.setPrice(ETH, price(1880)); // equity 80 < maintenance 94
    const p = await liqParams(f, f.ethId);
    const cap = await capOf(f, alice.address);
    expect(cap).to.be.lessThan(WAD);
    const before = await positionOf(f, f.ethId, alice.address);
    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, cap, X5);
    const after = await positionOf(f, f.ethId, alice.address);
    // K and the stored a do not move; c loses only the fee (V - fee stays in the margin).
    expect(after.entry).to.equal(before.entry);
    expect(after.leverage).to.equal(before.leverage);
    expect(after.margin).to.equal(before.margin - pred.plan.released + pred.plan.takenEquity - pred.plan.fee);
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(false);
    const h = health(after, price(1880), 0n, p);
    expect(h.eq).to.be.greaterThanOrEqual(h.maintenance);
    // Taking one unit less than the cap would not have restored mmr * 1.25.
    const target = p.mmr + mulDivDown(p.mmr, BUFFER, WAD);
    const eqBefore = health(before, price(1880), 0n, p).eq;
    const short = eqBefore - feeUp(cap - 1n, price(1880), p.liquidationFee);
    expect(short).to.be.lessThan(requirementUp(WAD - cap + 1n, price(1880), target));
  });

  it("takes a short partially when the price rises, the liquidator going short", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await openAt(f, f.ethId, alice, bob, 2n * WAD, ETH_PRICE, { long: X5, short: X10 });
    await f.setPrice(ETH, price(2120)); // Bob: equity 400 - 240 = 160 < maintenance 212
    const cap = await capOf(f, bob.address);
    expect(cap).to.be.lessThan(2n * WAD);
    await liquidateExactly(f, f.ethId, bob.address, carol, cap, X5);
    expect(await positionOf(f, f.ethId, carol.address)).to.deep.include({ isLong: false, size: cap });
    expect(await f.lens.isLiquidatable(f.ethId, bob.address)).to.equal(false);
  });

  it("nets the takeover against a liquidator's own opposite position (and flips it past zero)", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, , carol, dave] = f.traders;
    await openAt(f, f.ethId, dave, carol, WAD / 10n, ETH_PRICE); // Carol short 0.1 at 2,000
    await f.setPrice(ETH, price(1880));
    const cap = await capOf(f, alice.address);
    expect(cap).to.be.greaterThan(WAD / 10n);
    // Carol's short closes at 1,880 with a profit of 12, then she opens long (cap - 0.1).
    await liquidateExactly(f, f.ethId, alice.address, carol, cap, X5);
    expect(await positionOf(f, f.ethId, carol.address)).to.deep.include({ isLong: true, size: cap - WAD / 10n });
  });

  it("lets a second liquidator take a remainder that became liquidatable again", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, , carol, dave] = f.traders;
    await f.setPrice(ETH, price(1880));
    await liquidateExactly(f, f.ethId, alice.address, carol, await capOf(f, alice.address), X5);
    await f.setPrice(ETH, price(1830));
    const cap = await capOf(f, alice.address);
    await liquidateExactly(f, f.ethId, alice.address, dave, cap, X5);
  });
});

describe("Liquidation: over-liquidation", function () {
  it("reverts LiquidationTooLarge(size, cap) one wei above the cap and leaves state unchanged", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, bob, carol] = f.traders;
    await f.setPrice(ETH, price(1880));
    const cap = await capOf(f, alice.address);
    const accounts = [alice.address, bob.address, carol.address];
    const before = await fullSnapshot(f, [f.ethId, f.btcId], accounts);
    await expect(f.clearinghouse.connect(carol).liquidate(f.ethId, alice.address, cap + 1n, X5))
      .to.be.revertedWithCustomError(f.clearinghouse, "LiquidationTooLarge")
      .withArgs(cap + 1n, cap);
    expect(await fullSnapshot(f, [f.ethId, f.btcId], accounts)).to.deep.equal(before);
  });

  it("reverts LiquidationTooLarge(size, q) above the whole position and leaves state unchanged", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, bob, carol] = f.traders;
    await f.setPrice(ETH, price(1815)); // cap = whole position
    const accounts = [alice.address, bob.address, carol.address];
    const before = await fullSnapshot(f, [f.ethId, f.btcId], accounts);
    await expect(f.clearinghouse.connect(carol).liquidate(f.ethId, alice.address, WAD + 1n, X5))
      .to.be.revertedWithCustomError(f.clearinghouse, "LiquidationTooLarge")
      .withArgs(WAD + 1n, WAD);
    expect(await fullSnapshot(f, [f.ethId, f.btcId], accounts)).to.deep.equal(before);
  });

  it("reports a cap of 0 for a healthy position and for no position", async function () {
    const f = await aliceLongAtTenX(WAD);
    const [alice, , carol] = f.traders;
    expect(await f.lens.maxLiquidationSize(f.ethId, alice.address)).to.equal(0n);
    expect(await f.lens.maxLiquidationSize(f.ethId, carol.address)).to.equal(0n);
  });

  it("keeps a position below the minimum notional liquidatable by a liquidator without a position (whole takeover)", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    const size = (6n * WAD) / 1000n; // 0.006 ETH at 5x from 2,000: notional 12
    await openAt(f, f.ethId, alice, bob, size, ETH_PRICE, { long: X5, short: X5 });
    await f.setPrice(ETH, price(1640)); // notional 9.84 < 10, equity 2.4 - 2.16 = 0.24 < maintenance
    expect(await capOf(f, alice.address)).to.equal(size);
    expect((await positionOf(f, f.ethId, carol.address)).size).to.equal(0n);
    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, size, X5);
    expect(pred.after.liquidator.size).to.equal(size);
    expect((await positionOf(f, f.ethId, carol.address)).size).to.equal(size);
  });

  it("sizes the cap at least at the minimum notional's worth, so a liquidator without a position can take it", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    const size = (12n * WAD) / 1000n; // 0.012 ETH at 10x from 2,000: notional 24
    await openAt(f, f.ethId, alice, bob, size, ETH_PRICE, { long: X10, short: X5 });
    await f.setPrice(ETH, price(1880));
    const p = await liqParams(f, f.ethId);
    const cap = await capOf(f, alice.address);
    const leastLeg = (p.minNotional * WAD + price(1880) - 1n) / price(1880);
    // Restoring health alone would take less than 10 of notional; the cap is raised to the minimum.
    expect(cap).to.equal(leastLeg);
    expect(cap < size).to.equal(true);
    const pred = await liquidateExactly(f, f.ethId, alice.address, carol, cap, X5);
    expect(mulDivDown(pred.after.liquidator.size, price(1880), WAD) >= p.minNotional).to.equal(true);
    expect(mulDivDown(pred.after.target.size, price(1880), WAD) >= p.minNotional).to.equal(true);
  });
});
