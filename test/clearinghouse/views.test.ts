import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, type Fixture } from "../helpers/fixture";
import { open, positionOf } from "../helpers/clearinghouse";
import { WAD, divFloor, mulDivUp } from "../../lib/math";
import { equityOf, pnlPerUnit, requirementUp } from "../../lib/position";

const P = ETH_PRICE;
const MMR = WAD / 20n;
const INT256_MAX = 2n ** 255n - 1n;

/** Alice long and Bob short 1 ETH at 2,000 (c = 400 each); Alice then takes her margin down to 290. */
async function viewsFixture(): Promise<Fixture> {
  const f = await systemFixture();
  await open(f, f.ethId, f.traders[0], f.traders[1], WAD, P);
  await f.clearinghouse.connect(f.traders[0]).removeMargin(f.ethId, 110n * WAD);
  return f;
}

describe("Clearinghouse views", function () {
  /** Every view of `account` against the library at index `price` (F = 0 throughout). */
  async function expectViews(f: Fixture, account: string, price: bigint) {
    const pos = await positionOf(f.clearinghouse, f.ethId, account);
    const eq = equityOf(pos.margin, pos.size, pnlPerUnit(pos.isLong, pos.entry, price, 0n));
    expect(await f.lens.equity(f.ethId, account)).to.equal(eq);
    expect(await f.lens.marginRatio(f.ethId, account)).to.equal(divFloor(eq * WAD, mulDivUp(pos.size, price, WAD)));
    expect(await f.lens.isLiquidatable(f.ethId, account)).to.equal(eq < requirementUp(pos.size, price, MMR));
    expect(await f.lens.isBankrupt(f.ethId, account)).to.equal(eq < 0n);
    return eq;
  }

  it("report an account without a position as equity 0, ratio int256 max, neither liquidatable nor bankrupt", async function () {
    const f = await loadFixture(viewsFixture);
    const carol = f.traders[2].address;
    expect(await f.lens.equity(f.ethId, carol)).to.equal(0n);
    expect(await f.lens.marginRatio(f.ethId, carol)).to.equal(INT256_MAX);
    expect(await f.lens.isLiquidatable(f.ethId, carol)).to.equal(false);
    expect(await f.lens.isBankrupt(f.ethId, carol)).to.equal(false);
  });

  it("follow the library for both sides across a range of index prices", async function () {
    const f = await loadFixture(viewsFixture);
    const [alice, bob] = f.traders;
    for (const price of [
      P,
      2100n * WAD,
      1900n * WAD,
      1800n * WAD,
      (1754321n * WAD) / 1000n,
      1650n * WAD,
      (2345678n * WAD) / 1000n,
    ]) {
      await f.setPrice(ETH, price);
      await expectViews(f, alice.address, price);
      await expectViews(f, bob.address, price);
    }
  });

  it("are liquidatable strictly below equity = ceil(mmr * notional), not on it", async function () {
    const f = await loadFixture(viewsFixture);
    const [alice] = f.traders;
    // Long 1 at 2,000 with c = 290: at 1,800 equity is 90 = 5% of 1,800 exactly.
    await f.setPrice(ETH, 1800n * WAD);
    expect(await expectViews(f, alice.address, 1800n * WAD)).to.equal(90n * WAD);
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(false);
    const below = 1800n * WAD - 10n ** 10n; // one unit of the 8-decimal feed lower
    await f.setPrice(ETH, below);
    await expectViews(f, alice.address, below);
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(true);
    expect(await f.lens.isBankrupt(f.ethId, alice.address)).to.equal(false);
  });

  it("are bankrupt strictly below zero equity, not at it", async function () {
    const f = await loadFixture(viewsFixture);
    const [alice, bob] = f.traders;
    await f.setPrice(ETH, 1710n * WAD);
    expect(await expectViews(f, alice.address, 1710n * WAD)).to.equal(0n);
    expect(await f.lens.isBankrupt(f.ethId, alice.address)).to.equal(false);
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(true);
    const below = 1710n * WAD - 10n ** 10n;
    await f.setPrice(ETH, below);
    expect(await expectViews(f, alice.address, below)).to.equal(-(10n ** 10n));
    expect(await f.lens.isBankrupt(f.ethId, alice.address)).to.equal(true);
    // The short on the other side is in profit and healthy.
    expect(await f.lens.isLiquidatable(f.ethId, bob.address)).to.equal(false);
  });

  it("mirror for a short on a rally", async function () {
    const f = await loadFixture(viewsFixture);
    const [, bob] = f.traders;
    // Short 1 at 2,000 with c = 400: 400 - (P - 2000) < 5% of P once P > 2,285.714...
    await f.setPrice(ETH, 2285n * WAD);
    await expectViews(f, bob.address, 2285n * WAD);
    expect(await f.lens.isLiquidatable(f.ethId, bob.address)).to.equal(false);
    await f.setPrice(ETH, 2286n * WAD);
    await expectViews(f, bob.address, 2286n * WAD);
    expect(await f.lens.isLiquidatable(f.ethId, bob.address)).to.equal(true);
    await f.setPrice(ETH, 2400n * WAD + 10n ** 10n);
    expect(await f.lens.isBankrupt(f.ethId, bob.address)).to.equal(true);
  });

  it("reject an unknown market with MarketUnknown", async function () {
    const f = await loadFixture(viewsFixture);
    const unknown = ethers.encodeBytes32String("DOGE-USD");
    const alice = f.traders[0].address;
    await f.lens.equity(unknown, alice); // no position: no price is needed
    await expect(f.lens.currentFunding(unknown))
      .to.be.revertedWithCustomError(f.lens, "MarketUnknown")
      .withArgs(unknown);
  });
});
