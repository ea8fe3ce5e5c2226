/**
 * Every bad input to `liquidate` reverts with its custom error, with the error's values, and
 * leaves the whole state (positions, market state, free balances, fees, treasury, reserves,
 * token balances of the clearinghouse and the fund) exactly as it was.
 *
 * Unless a test says otherwise Alice is long 1 ETH at 10x from 2,000 and the index is 1,880, so
 * her position IS liquidatable: each revert is caused by the one bad input under test.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { BaseContract } from "ethers";
import { systemFixture, ETH, ETH_PRICE, type Fixture } from "../helpers/fixture";
import { fullSnapshot, liqParams, openAt, positionOf } from "../helpers/liquidation";
import { marketId } from "../../lib/local";
import { WAD } from "../../lib/math";
import { applyFill } from "../../lib/position";

const X5 = 5n * WAD;
const X10 = 10n * WAD;

async function liquidatableAlice(): Promise<Fixture> {
  const f = await loadFixture(systemFixture);
  const [alice, bob] = f.traders;
  await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
  await f.setPrice(ETH, 1880n * WAD);
  return f;
}

/** Runs `call`, expects `error(...args)` from `contract`, and checks the state did not move. */
async function expectRejected(
  f: Fixture,
  call: () => Promise<unknown>,
  contract: BaseContract,
  error: string,
  ...args: unknown[]
): Promise<void> {
  const accounts = [...f.traders.slice(0, 4).map((t) => t.address), f.keeper.address];
  const ids = [f.ethId, f.btcId];
  const before = await fullSnapshot(f, ids, accounts);
  await expect(call())
    .to.be.revertedWithCustomError(contract, error)
    .withArgs(...args);
  expect(await fullSnapshot(f, ids, accounts)).to.deep.equal(before);
}

describe("Liquidation: rejected inputs leave state unchanged", function () {
  it("rejects a healthy position with PositionNotLiquidatable(account, equity, maintenance)", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
    await f.setPrice(ETH, 1900n * WAD); // equity 100 vs maintenance 95: healthy by 5
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, alice.address, WAD / 10n, X5),
      ch,
      "PositionNotLiquidatable",
      alice.address,
      100n * WAD,
      95n * WAD,
    );
  });

  it("dust takeover: refuses a takeover leg that would leave the liquidator a position below the minimum notional", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const ch = f.clearinghouse;
    // 1 wei taken at 1,880: carol would hold a position of 1,880 wei of notional.
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, alice.address, 1n, X5),
      ch,
      "NotionalBelowMinimum",
      carol.address,
      1880n,
      10n * WAD,
    );
  });

  it("dust remainder: refuses a liquidation that would leave the liquidated position below the minimum notional", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    // 0.006 ETH at 10x from 2,000 (notional 12): at 1,880 liquidatable, and any partial take would
    // leave less than the minimum, so the whole size may be taken, but not all but one wei.
    const size = (6n * WAD) / 1000n;
    await openAt(f, f.ethId, alice, bob, size, ETH_PRICE, { long: X10, short: X5 });
    await f.setPrice(ETH, 1880n * WAD);
    const ch = f.clearinghouse;
    expect(await f.lens.maxLiquidationSize(f.ethId, alice.address)).to.equal(size);
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, alice.address, size - 1n, X5),
      ch,
      "NotionalBelowMinimum",
      alice.address,
      1880n,
      10n * WAD,
    );
  });

  it("rejects a position exactly at maintenance (liquidatable means equity < mmr * notional)", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await openAt(f, f.ethId, alice, bob, WAD, ETH_PRICE, { long: X10, short: X5 });
    await (await f.clearinghouse.connect(alice).addMargin(f.ethId, 14n * WAD)).wait(); // c = 214
    await f.setPrice(ETH, 1880n * WAD); // equity 214 - 120 = 94 == maintenance 0.05 * 1880
    const ch = f.clearinghouse;
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(false);
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, alice.address, WAD / 10n, X5),
      ch,
      "PositionNotLiquidatable",
      alice.address,
      94n * WAD,
      94n * WAD,
    );
  });

  it("rejects an unlisted market with MarketUnknown", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const doge = marketId("DOGE-USD");
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(doge, alice.address, WAD / 10n, X5),
      ch,
      "MarketUnknown",
      doge,
    );
  });

  it("rejects an ETH position liquidated through the BTC id with PositionNotFound", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.btcId, alice.address, WAD / 10n, X5),
      ch,
      "PositionNotFound",
      f.btcId,
      alice.address,
    );
  });

  it("rejects an account without a position with PositionNotFound", async function () {
    const f = await liquidatableAlice();
    const [, , carol, dave] = f.traders;
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, dave.address, WAD / 10n, X5),
      ch,
      "PositionNotFound",
      f.ethId,
      dave.address,
    );
  });

  it("rejects self-liquidation with LiquidationSelf", async function () {
    const f = await liquidatableAlice();
    const [alice] = f.traders;
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(alice).liquidate(f.ethId, alice.address, WAD / 10n, X5),
      ch,
      "LiquidationSelf",
      alice.address,
    );
  });

  it("rejects a zero size with ZeroAmount", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const ch = f.clearinghouse;
    await expectRejected(f, () => ch.connect(carol).liquidate(f.ethId, alice.address, 0n, X5), ch, "ZeroAmount");
  });

  it("rejects a zero leverage for the liquidator's increase with OrderInvalidLeverage", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, alice.address, WAD / 10n, 0n),
      ch,
      "OrderInvalidLeverage",
      "0x" + "00".repeat(32),
      0n,
    );
  });

  it("rejects a liquidator whose free collateral cannot post its leg's margin", async function () {
    const f = await liquidatableAlice();
    const [alice] = f.traders;
    const p = await liqParams(f, f.ethId);
    const d = WAD / 10n;
    // The keeper never deposited: its leg posts max(ceil(d*P/leverage), imr test shortfall).
    const leg = applyFill(await positionOf(f, f.ethId, f.keeper.address), d, 1880n * WAD, X5, 1880n * WAD, 0n, p.imr);
    expect(leg.posted).to.equal(376n * 10n ** 17n);
    const ch = f.clearinghouse;
    await expectRejected(
      f,
      () => ch.connect(f.keeper).liquidate(f.ethId, alice.address, d, X5),
      ch,
      "InsufficientFreeCollateral",
      f.keeper.address,
      0n,
      leg.posted,
    );
  });

  it("rejects a paused market with MarketIsPaused", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const ch = f.clearinghouse;
    await (await ch.connect(f.admin).setPaused(f.ethId, true)).wait();
    await expectRejected(
      f,
      () => ch.connect(carol).liquidate(f.ethId, alice.address, WAD / 10n, X5),
      ch,
      "MarketIsPaused",
      f.ethId,
    );
  });

  it("rejects a price older than the strict window (3,600 s) with the adapter's OracleStalePrice", async function () {
    const f = await liquidatableAlice();
    const [alice, , carol] = f.traders;
    const aggregator = f.markets.get(ETH)!.aggregator;
    const [, , , updatedAt] = await aggregator.latestRoundData();
    await time.increase(3601);
    // Views use the 24 h heartbeat and still see a liquidatable position; liquidation does not.
    expect(await f.lens.isLiquidatable(f.ethId, alice.address)).to.equal(true);
    await expectRejected(
      f,
      () => f.clearinghouse.connect(carol).liquidate(f.ethId, alice.address, WAD / 10n, X5),
      f.oracle,
      "OracleStalePrice",
      f.ethId,
      updatedAt,
      3600n,
    );
  });
});
