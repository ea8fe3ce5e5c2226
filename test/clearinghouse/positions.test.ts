import { expect } from "chai";
import { leafOf } from "../../lib/rank-tree";
import { bandReference } from "../../lib/local";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { systemFixture, ETH, ETH_PRICE, SCALE, USDC, type Fixture } from "../helpers/fixture";
import {
  signed,
  submit,
  matchExactly,
  expectRejected,
  positionOf,
  feeOf,
  splitFees,
  drainFree,
} from "../helpers/clearinghouse";
import { WAD, divCeil, divFloor, mulDivUp } from "../../lib/math";
import { EMPTY_POSITION, blendEntry, contribution, leverageUp, pnlDown, releasedMargin } from "../../lib/position";

const P = ETH_PRICE;
const X = (n: number | bigint): bigint => BigInt(n) * WAD;

describe("Clearinghouse positions", function () {
  /** `maker` trades `size` (> 0 buys) against `taker` at `price`, checked against applyFill. */
  async function fill(
    f: Fixture,
    maker: HardhatEthersSigner,
    taker: HardhatEthersSigner,
    size: bigint,
    price: bigint,
    lev: { maker?: bigint; taker?: bigint } = {},
    index = P,
  ) {
    const abs = size < 0n ? -size : size;
    const m = await signed(f.clearinghouse, maker, { marketId: f.ethId, size, limitPrice: price, leverage: lev.maker });
    const t = await signed(f.clearinghouse, taker, {
      marketId: f.ethId,
      size: -size,
      limitPrice: price,
      leverage: lev.taker,
    });
    return matchExactly(f, m, t, abs, index);
  }

  it("opens a long and a short with margin ceil(d*p/leverage), K = p - F and a = ceil(q*W/c)", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const r = await fill(f, alice, bob, X(3), X(2001), { maker: 7n * WAD, taker: 3n * WAD });
    const c = mulDivUp(X(3), X(2001), 7n * WAD); // 857.571428... rounded up
    expect(r.maker.position).to.deep.equal({
      isLong: true,
      size: X(3),
      entry: X(2001),
      margin: c,
      leverage: leverageUp(X(3), c),
    });
    expect(r.taker.position.margin).to.equal(X(2001));
    expect(r.taker.position.isLong).to.equal(false);
  });

  it("blends K on an increase, rounded up for the long and down for the short", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    await fill(f, alice, bob, X(1), P);
    const price = P + WAD / 100n; // 2,000.01: (2000 + 2 * 2000.01) / 3 is not an integer
    const r = await fill(f, alice, bob, X(2), price);
    const exact = X(1) * P + X(2) * price;
    expect(exact % X(3)).to.not.equal(0n);
    expect(r.maker.position.entry).to.equal(divCeil(exact, X(3)));
    expect(r.taker.position.entry).to.equal(divFloor(exact, X(3)));
    expect(r.maker.position.entry - r.taker.position.entry).to.equal(1n);
    expect(r.maker.position.entry).to.equal(blendEntry(true, X(1), P, X(2), price, 0n));
  });

  it("reduces by d: releases floor(c*d/q), books floor(d*x/W), and keeps K and a exactly", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await fill(f, alice, bob, X(3), P, { maker: 7n * WAD });
    const before = await positionOf(f.clearinghouse, f.ethId, alice.address);
    const d = WAD / 3n; // 0.333...: neither c*d/q nor d*x/W is exact
    const price = 1990n * WAD + 7n;
    const r = await fill(f, carol, alice, d, price);
    const released = releasedMargin(before.margin, d, before.size);
    const pnl = pnlDown(d, price - before.entry);
    expect((before.margin * d) % before.size).to.not.equal(0n);
    expect((d * (price - before.entry)) % WAD).to.not.equal(0n);
    expect(r.taker.payout).to.equal(released + pnl);
    expect(r.taker.position).to.deep.equal({
      ...before,
      size: before.size - d,
      margin: before.margin - released,
    });
  });

  it("emits PositionChanged on a reduction with the booked PnL floor(d*x/W) as realizedPnl", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await fill(f, alice, bob, X(2), P); // c = 800
    const m = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: X(1), limitPrice: X(2030) });
    const t = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -X(1), limitPrice: X(2030) });
    // Released margin is 400 and the booked PnL 30: the event must not report 430 as realized PnL.
    const receipt = await (await submit(f.clearinghouse, f.keeper, m, t, X(1))).wait();
    const events = receipt!.logs
      .map((l) => f.clearinghouse.interface.parseLog(l))
      .filter((e) => e?.name === "PositionChanged" && e.args.account === alice.address);
    expect(events).to.have.length(1);
    const { isLong, size, entry, margin, leverage, leaf, realizedPnl, cumulativeFunding } = events[0]!.args;
    expect([isLong, size, entry, margin, leverage, leaf, cumulativeFunding]).to.deep.equal([
      true,
      X(1),
      P,
      X(400),
      leverageUp(X(2), X(800)),
      // The leaf the rank index assigned at opening; a reduction keeps it.
      BigInt(leafOf(leverageUp(X(2), X(800)), P, bandReference(P))),
      0n,
    ]);
    expect(realizedPnl, "realizedPnl carries the released margin too").to.equal(X(30));
  });

  it("clears the record on a full close and credits free collateral with c + PnL - fee exactly", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await fill(f, alice, bob, X(2), P);
    await f.setPrice(ETH, X(2040));
    const free = await f.clearinghouse.freeCollateral(alice.address);
    const r = await fill(f, carol, alice, X(2), X(2050), {}, X(2040));
    expect(r.taker.position).to.deep.equal(EMPTY_POSITION);
    expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(
      free + X(800) + X(100) - feeOf(X(2), X(2050), 5n * 10n ** 14n),
    );
    const stored = await f.clearinghouse.getPosition(f.ethId, alice.address);
    expect([stored.size, stored.margin, stored.entry, stored.leverage, stored.isLong, stored.leaf]).to.deep.equal([
      0n,
      0n,
      0n,
      0n,
      false,
      0n,
    ]);
  });

  it("flips through zero as a full close followed by an opening with its own margin", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await fill(f, alice, bob, X(1), P);
    const r = await fill(f, carol, alice, X(3), X(1995), { taker: 4n * WAD });
    expect(r.taker.reduced).to.equal(X(1));
    expect(r.taker.increased).to.equal(X(2));
    expect(r.taker.payout).to.equal(X(400) - X(5));
    expect(r.taker.position).to.deep.equal({
      isLong: false,
      size: X(2),
      entry: X(1995),
      margin: X(2 * 1995) / 4n,
      leverage: leverageUp(X(2), X(2 * 1995) / 4n),
    });
  });

  it("debits a negative payout of a voluntary close from free collateral and reverts if it is short, never clamping", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob, carol] = f.traders;
    await fill(f, alice, bob, X(1), P, { maker: 10n * WAD }); // c = 200
    await f.setPrice(ETH, X(1750)); // 250 of loss against 200 of margin
    await drainFree(f, alice);
    expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(0n);
    const m = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: WAD, limitPrice: X(1750) });
    const t = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -WAD, limitPrice: X(1750) });
    const hashes = [await f.clearinghouse.hashOrder(m.order), await f.clearinghouse.hashOrder(t.order)];
    await expectRejected(
      f,
      { ids: [f.ethId], accounts: [alice.address, carol.address], hashes },
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "InsufficientFreeCollateral",
      alice.address,
      0n,
      X(50),
    );
    await f.clearinghouse.connect(alice).deposit(alice.address, 60n * USDC);
    const r = await matchExactly(f, m, t, WAD, X(1750));
    expect(r.taker.payout).to.equal(-X(50));
    expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(X(10) - feeOf(WAD, X(1750), 5n * 10n ** 14n));
  });

  describe("minimum notional", function () {
    it("rejects an opening below it, valued at the index and not the trade price", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const d = 48n * 10n ** 14n; // 0.0048 ETH: 10.03 at 2,090 but 9.6 at the index
      const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: d, limitPrice: X(2090) });
      const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -d, limitPrice: X(2090) });
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [alice.address, bob.address] },
        () => submit(f.clearinghouse, f.keeper, m, t, d),
        "NotionalBelowMinimum",
        alice.address,
        X(96) / 10n,
        X(10),
      );
    });

    it("rejects a reduction that leaves a remainder below it, but allows a full close", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob, carol] = f.traders;
      await fill(f, alice, bob, X(1), P);
      const d = WAD - 4n * 10n ** 15n; // leaves 0.004 ETH = 8
      const m = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: d, limitPrice: P });
      const t = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -WAD, limitPrice: P });
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [alice.address, carol.address] },
        () => submit(f.clearinghouse, f.keeper, m, t, d),
        "NotionalBelowMinimum",
        alice.address,
        X(8),
        X(10),
      );
      await fill(f, carol, alice, X(1), P);
    });

    it("applies to the new leg of a flip", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob, carol] = f.traders;
      await fill(f, alice, bob, X(1), P);
      const d = WAD + 4n * 10n ** 15n;
      const m = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: d, limitPrice: P });
      const t = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -d, limitPrice: P });
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [alice.address, carol.address] },
        () => submit(f.clearinghouse, f.keeper, m, t, d),
        "NotionalBelowMinimum",
        alice.address,
        X(8),
        X(10),
      );
    });
  });

  describe("margin posted on an increase", function () {
    it("is the margin test's shortfall when that exceeds ceil(d*p/leverage): buying above the index at 10x", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const r = await fill(f, alice, bob, X(1), X(2100), { maker: 10n * WAD, taker: 10n * WAD });
      // chosen 210; the long starts 100 under water and needs 200: c = 300.
      expect(mulDivUp(X(1), X(2100), 10n * WAD)).to.equal(X(210));
      expect(r.maker.posted).to.equal(X(300));
      expect(r.maker.position.margin).to.equal(X(300));
      // The short is 100 in profit, which never counts: it posts its chosen 210 >= 200.
      expect(r.taker.posted).to.equal(X(210));
    });

    it("is at least the initial requirement whatever leverage the order asks for", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const r = await fill(f, alice, bob, X(1), P, { maker: 50n * WAD, taker: 1000n * WAD });
      expect(r.maker.posted).to.equal(X(200));
      expect(r.taker.posted).to.equal(X(200));
    });

    it("reverts InsufficientFreeCollateral when free collateral cannot post it", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      await drainFree(f, bob, 399n * USDC);
      const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: P });
      const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -WAD, limitPrice: P });
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [alice.address, bob.address] },
        () => submit(f.clearinghouse, f.keeper, m, t, WAD),
        "InsufficientFreeCollateral",
        bob.address,
        X(399),
        X(400),
      );
    });
  });

  describe("fees", function () {
    it("charges ceil(notional * fee) to each side's free collateral and splits them by fundFeeShare and keeperFeeShare", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const d = 123456789012345679n;
      const price = 2001n * WAD + 230000000000000001n;
      const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: d, limitPrice: price });
      const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -d, limitPrice: price });
      const makerFee = feeOf(d, price, 2n * 10n ** 14n);
      const takerFee = feeOf(d, price, 5n * 10n ** 14n);
      const [toFund, toKeepers, toTreasury] = splitFees(makerFee + takerFee, WAD / 2n, WAD / 10n);
      expect((makerFee + takerFee) % 10n).to.not.equal(0n); // both shares round down: the treasury keeps the rest
      await expect(submit(f.clearinghouse, f.keeper, m, t, d))
        .to.emit(f.clearinghouse, "FeesCollected")
        .withArgs(f.ethId, toFund, toKeepers, toTreasury);
      expect(await f.clearinghouse.pendingFundFees()).to.equal(toFund);
      expect(await f.clearinghouse.keeperReserve(f.ethId)).to.equal(toKeepers);
      expect(await f.clearinghouse.treasuryBalance()).to.equal(toTreasury);
      expect(toFund + toKeepers + toTreasury).to.equal(makerFee + takerFee);
    });

    it("sweeps whole token units of fund fees to the insurance fund, keeping the sub-unit remainder", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const fund = await f.insuranceFund.getAddress();
      expect(await f.clearinghouse.insuranceFund()).to.equal(fund);
      await fill(f, alice, bob, 123456789012345678n, P + 7n);
      const pending = await f.clearinghouse.pendingFundFees();
      expect(pending % SCALE).to.not.equal(0n);
      const tokens = pending / SCALE;
      const tx = f.clearinghouse.connect(f.keeper).sweepFundFees();
      await expect(tx).to.emit(f.clearinghouse, "FundFeesSwept").withArgs(fund, tokens);
      await expect(tx).to.changeTokenBalances(f.token, [fund, await f.clearinghouse.getAddress()], [tokens, -tokens]);
      expect(await f.clearinghouse.pendingFundFees()).to.equal(pending % SCALE);
    });

    it("lets only the default admin set the insurance fund, never to the zero address", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, , , , , , , , other] = f.traders;
      await expectRejected(
        f,
        { ids: [], accounts: [] },
        () => f.clearinghouse.connect(alice).setInsuranceFund(other.address),
        "AccessControlUnauthorizedAccount",
        alice.address,
        ethers.ZeroHash,
      );
      await expect(f.clearinghouse.setInsuranceFund(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.clearinghouse,
        "ZeroAddress",
      );
      await expect(f.clearinghouse.setInsuranceFund(other.address))
        .to.emit(f.clearinghouse, "InsuranceFundSet")
        .withArgs(other.address);
      expect(await f.clearinghouse.insuranceFund()).to.equal(other.address);
    });

    it("pays the treasury out only to TREASURER_ROLE and never more than it holds", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      await fill(f, alice, bob, X(5), P); // fees 2 + 5: 3.5 to the fund, 0.7 to keepers, 2.8 to the treasury
      const treasury = await f.clearinghouse.treasuryBalance();
      expect(treasury).to.equal(28n * 10n ** 17n);
      const role = await f.clearinghouse.TREASURER_ROLE();
      await expectRejected(
        f,
        { ids: [], accounts: [alice.address] },
        () => f.clearinghouse.connect(alice).withdrawTreasury(alice.address, USDC),
        "AccessControlUnauthorizedAccount",
        alice.address,
        role,
      );
      await expectRejected(
        f,
        { ids: [], accounts: [alice.address] },
        () => f.clearinghouse.withdrawTreasury(alice.address, 3n * USDC),
        "InsufficientTreasury",
        treasury,
        X(3),
      );
      const tx = f.clearinghouse.withdrawTreasury(alice.address, 2n * USDC);
      await expect(tx)
        .to.emit(f.clearinghouse, "TreasuryWithdrawn")
        .withArgs(alice.address, 2n * USDC);
      await expect(tx).to.changeTokenBalance(f.token, alice, 2n * USDC);
      expect(await f.clearinghouse.treasuryBalance()).to.equal((8n * WAD) / 10n);
    });
  });

  it("keeps open interest balanced, sum s*K exact and the collateral conserved over a sequence of fills", async function () {
    const f = await loadFixture(systemFixture);
    const ts = f.traders.slice(0, 5);
    let seed = 12345n;
    const rand = (n: bigint) => {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n;
      return (seed >> 16n) % n;
    };
    for (let i = 0; i < 14; i++) {
      const a = ts[Number(rand(5n))];
      let b = ts[Number(rand(5n))];
      if (a === b) b = ts[(ts.indexOf(a) + 1) % 5];
      const size = (rand(3000n) + 10n) * 10n ** 15n * (rand(2n) === 0n ? 1n : -1n);
      const price = P - X(50) + rand(X(100));
      await fill(f, a, b, size, price, { maker: (rand(9n) + 1n) * WAD, taker: (rand(9n) + 1n) * WAD });
      const state = await f.clearinghouse.marketState(f.ethId);
      const positions = await Promise.all(ts.map((t) => positionOf(f.clearinghouse, f.ethId, t.address)));
      const long = positions.filter((p) => p.isLong).reduce((s, p) => s + p.size, 0n);
      const short = positions.filter((p) => !p.isLong).reduce((s, p) => s + p.size, 0n);
      expect(state.longOpenInterest).to.equal(long);
      expect(state.shortOpenInterest).to.equal(short);
      expect(long).to.equal(short);
      const sumSK = positions.reduce((s, p) => s + contribution(p), 0n);
      expect(state.sumSizeTimesEntry).to.equal(sumSK);
      for (const p of positions) if (p.size !== 0n) expect(p.margin).to.be.greaterThan(0n);
      const balance = (await f.token.balanceOf(await f.clearinghouse.getAddress())) * SCALE;
      const free = (await Promise.all(f.traders.map((t) => f.clearinghouse.freeCollateral(t.address)))).reduce(
        (s, v) => s + v,
        0n,
      );
      const margins = positions.reduce((s, p) => s + p.margin, 0n);
      const treasury =
        (await f.clearinghouse.treasuryBalance()) +
        (await f.clearinghouse.roundingReserve(f.ethId)) +
        (await f.clearinghouse.roundingReserve(f.btcId)) +
        (await f.clearinghouse.keeperReserve(f.ethId)) +
        (await f.clearinghouse.keeperReserve(f.btcId));
      const dust = WAD * (balance - free - margins - (await f.clearinghouse.pendingFundFees()) - treasury) + sumSK;
      expect(dust >= 0n, `dust ${dust}`).to.equal(true);
    }
  });
});
