import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE, type Fixture } from "../helpers/fixture";
import { signed, submit, matchExactly, positionOf, fundingStateOf, open } from "../helpers/clearinghouse";
import { WAD } from "../../lib/math";
import { projectFunding, premiumOf } from "../../lib/funding";
import { pnlDown, pnlPerUnit } from "../../lib/position";

const P = ETH_PRICE;
const WINDOW = 3600n;
const PERIOD = 8n * 3600n;
const MAX_PREMIUM = WAD / 100n;

/** The long open interest of ETH-USD now: the floor of a closing window's weight. */
async function longOI(f: Fixture): Promise<bigint> {
  return (await f.clearinghouse.marketState(f.ethId)).longOpenInterest;
}

describe("Clearinghouse funding", function () {
  /** Alice long and Bob short `size` at `price` (maker alice). */
  async function openAt(f: Fixture, size: bigint, price: bigint) {
    await open(f, f.ethId, f.traders[0], f.traders[1], size, price);
  }

  /** Accrues in a transaction at `ts` and returns the block timestamp it ran at. */
  async function accrueAt(f: Fixture, ts: bigint) {
    await time.setNextBlockTimestamp(ts);
    await (await f.clearinghouse.accrueFunding(f.ethId)).wait();
    return ts;
  }

  it("records each fill's clamped premium weighted by size in the current window", async function () {
    const f = await loadFixture(systemFixture);
    const [, , carol, dave] = f.traders;
    await openAt(f, 2n * WAD, 2010n * WAD); // +0.5%
    await open(f, f.ethId, carol, dave, 3n * WAD, 1995n * WAD); // -0.25%
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    const expected =
      premiumOf(2010n * WAD, P, MAX_PREMIUM) * 2n * WAD + premiumOf(1995n * WAD, P, MAX_PREMIUM) * 3n * WAD;
    expect(s.premiumTimesSize).to.equal(expected);
    expect(s.windowSize).to.equal(5n * WAD);
    expect(s.fundingRate).to.equal(0n);
  });

  it("clamps each fill's premium at maxPremium", async function () {
    const f = await loadFixture(systemFixture);
    await openAt(f, WAD, 2050n * WAD); // +2.5%, clamped to +1%
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(s.premiumTimesSize).to.equal(MAX_PREMIUM * WAD);
    const [, , carol, dave] = f.traders;
    await open(f, f.ethId, carol, dave, WAD, 1940n * WAD); // -3%, clamped to -1%
    expect((await fundingStateOf(f.clearinghouse, f.ethId)).premiumTimesSize).to.equal(0n);
  });

  it("turns fills above the index into a positive rate for the next window, growing F exactly as projectFunding says", async function () {
    const f = await loadFixture(systemFixture);
    await openAt(f, WAD, 2010n * WAD);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    const t = await accrueAt(f, s.windowStart + WINDOW + 600n);
    const expected = projectFunding(s, WINDOW, PERIOD, P, t, await longOI(f));
    const after = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(after).to.deep.equal(expected);
    expect(after.fundingRate).to.equal(premiumOf(2010n * WAD, P, MAX_PREMIUM) / PERIOD);
    expect(after.fundingRate > 0n).to.equal(true);
    // 600 seconds at the new rate: rate * P * 600 / W.
    expect(after.cumulativeFunding).to.equal((after.fundingRate * P * 600n) / WAD);
    const t2 = await accrueAt(f, t + 1234n);
    expect((await fundingStateOf(f.clearinghouse, f.ethId)).cumulativeFunding).to.equal(
      projectFunding(after, WINDOW, PERIOD, P, t2, await longOI(f)).cumulativeFunding,
    );
  });

  it("turns fills below the index into a negative rate: F falls and shorts pay", async function () {
    const f = await loadFixture(systemFixture);
    await openAt(f, WAD, 1990n * WAD);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    const t = await accrueAt(f, s.windowStart + WINDOW + 1800n);
    const after = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(after).to.deep.equal(projectFunding(s, WINDOW, PERIOD, P, t, await longOI(f)));
    expect(after.fundingRate < 0n).to.equal(true);
    expect(after.cumulativeFunding < 0n).to.equal(true);
  });

  it("resets the rate to zero after a window without fills, having charged that window in full", async function () {
    const f = await loadFixture(systemFixture);
    await openAt(f, WAD, 2010n * WAD);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    const t = await accrueAt(f, s.windowStart + 3n * WINDOW + 5n);
    const after = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(after).to.deep.equal(projectFunding(s, WINDOW, PERIOD, P, t, await longOI(f)));
    expect(after.fundingRate).to.equal(0n);
    const rate = premiumOf(2010n * WAD, P, MAX_PREMIUM) / PERIOD;
    expect(after.cumulativeFunding).to.equal((rate * P * WINDOW) / WAD);
    expect(after.windowStart).to.equal(s.windowStart + 3n * WINDOW);
  });

  it("does not let a thin fill steer the rate: a window's premium is diluted by open interest", async function () {
    const f = await loadFixture(systemFixture);
    await openAt(f, 10n * WAD, P); // 10 ETH of open interest, no premium
    const s0 = await fundingStateOf(f.clearinghouse, f.ethId);
    await accrueAt(f, s0.windowStart + WINDOW + 1n); // a quiet window begins
    await f.setPrice(ETH, P); // a fresh round: risk may only grow on a price within the strict window
    // The attacker's two accounts (already holding positions) trade 1 wei at the band's edge.
    await open(f, f.ethId, f.traders[0], f.traders[1], 1n, 2090n * WAD);
    const s1 = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(s1.premiumTimesSize).to.equal(MAX_PREMIUM);
    const t = await accrueAt(f, s1.windowStart + WINDOW + 10n);
    const after = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(after).to.deep.equal(projectFunding(s1, WINDOW, PERIOD, P, t, await longOI(f)));
    // 1e16 * 1 / 1e19 truncates to 0: the fill moved nothing.
    expect(after.fundingRate).to.equal(0n);
  });

  it("lets volume comparable to open interest set the full premium", async function () {
    const f = await loadFixture(systemFixture);
    await openAt(f, 10n * WAD, 2010n * WAD); // the window's volume equals the open interest
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    await accrueAt(f, s.windowStart + WINDOW + 1n);
    const after = await fundingStateOf(f.clearinghouse, f.ethId);
    expect(after.fundingRate).to.equal(premiumOf(2010n * WAD, P, MAX_PREMIUM) / PERIOD);
  });

  it("moves long equity down and short equity up by the same amount", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    await openAt(f, WAD, 2010n * WAD);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    await accrueAt(f, s.windowStart + WINDOW);
    const F0 = (await f.clearinghouse.marketState(f.ethId)).cumulativeFunding;
    const [long0, short0] = [await f.lens.equity(f.ethId, alice.address), await f.lens.equity(f.ethId, bob.address)];
    await accrueAt(f, s.windowStart + WINDOW + 3000n);
    const F1 = (await f.clearinghouse.marketState(f.ethId)).cumulativeFunding;
    expect(await f.lens.currentFunding(f.ethId)).to.equal(F1);
    const [long1, short1] = [await f.lens.equity(f.ethId, alice.address), await f.lens.equity(f.ethId, bob.address)];
    expect(F1 > F0).to.equal(true);
    expect(long1 - long0).to.equal(-(F1 - F0));
    expect(short1 - short0).to.equal(F1 - F0);
  });

  it("never pays out more funding than it collects when sizes make the PnL round", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const q = WAD + WAD / 3n; // 1.333...: q * F / W is not an integer
    await openAt(f, q, 2010n * WAD);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    await accrueAt(f, s.windowStart + WINDOW);
    const e0 = (await f.lens.equity(f.ethId, alice.address)) + (await f.lens.equity(f.ethId, bob.address));
    await accrueAt(f, s.windowStart + WINDOW + 2777n);
    const e1 = (await f.lens.equity(f.ethId, alice.address)) + (await f.lens.equity(f.ethId, bob.address));
    expect(e1 - e0 <= 0n && e1 - e0 >= -1n, `drift ${e1 - e0}`).to.equal(true);
  });

  it("keeps K unchanged while funding accrues and realizes funding only when the position is reduced", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, , carol] = f.traders;
    await openAt(f, 2n * WAD, 2010n * WAD);
    const before = await positionOf(f.clearinghouse, f.ethId, alice.address);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    await accrueAt(f, s.windowStart + WINDOW + 3599n);
    await f.clearinghouse.connect(alice).addMargin(f.ethId, WAD); // a margin move does not settle funding
    const mid = await positionOf(f.clearinghouse, f.ethId, alice.address);
    expect(mid.entry).to.equal(before.entry);
    expect(mid.margin).to.equal(before.margin + WAD);
    const F = (await f.clearinghouse.marketState(f.ethId)).cumulativeFunding;
    expect(F > 0n).to.equal(true);
    // Alice sells 1 back at the index: x = (P - F) - K, so her PnL carries the funding she owes.
    // A fresh round first: carol's leg opens a position, which needs a price within the strict window.
    await f.setPrice(ETH, P);
    const m = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: WAD, limitPrice: P });
    const t = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -WAD, limitPrice: P });
    const r = await matchExactly(f, m, t, WAD, P);
    const Fused = r.funding;
    const pnl = pnlDown(WAD, pnlPerUnit(true, before.entry, P, Fused));
    expect(pnl).to.equal(-10n * WAD - Fused);
    expect(r.taker.payout).to.equal(mid.margin / 2n + pnl);
    expect(r.taker.position.entry).to.equal(before.entry);
    expect(r.taker.position.leverage).to.equal(mid.leverage);
  });

  it("blends F into K on an increase so that the new units owe only funding accrued afterwards", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    await openAt(f, WAD, 2010n * WAD);
    const s = await fundingStateOf(f.clearinghouse, f.ethId);
    await time.increaseTo(s.windowStart + WINDOW + 1000n);
    await f.setPrice(ETH, P); // a fresh round: an increase needs a price within the strict window
    const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: P });
    const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -WAD, limitPrice: P });
    await submit(f.clearinghouse, f.keeper, m, t, WAD);
    const F = (await f.clearinghouse.marketState(f.ethId)).cumulativeFunding;
    const pos = await positionOf(f.clearinghouse, f.ethId, alice.address);
    // K = ceil((2010 + (2000 - F)) / 2)
    const num = 2010n * WAD * WAD + WAD * (P - F);
    expect(pos.entry).to.equal((num + 2n * WAD - 1n) / (2n * WAD));
  });
});
