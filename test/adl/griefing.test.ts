/**
 * Griefing single-transaction ADL, and the bound the final layer's deadline trigger puts on it
 * (docs/mechanism.md section 7.6). The attacker holds every eligible counterparty position and moves
 * it between two of its accounts before each honest call lands, so every list the honest keeper
 * builds names only positions that have closed (`AdlNoLiveEntry`). It pays two trading fees per move.
 * Whatever it does, once B has been unsettled for T_social the keeper settles it with
 * `socializeLoss(market, B, [])`, which no list or book change can make stale.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD, mulDivUp } from "../../lib/math";
import { ETH, ETH_PRICE, systemFixture } from "../helpers/fixture";
import { keeperPlan, lev, pos, tradeAt, units } from "../helpers/adl";
import { socializeExactly } from "../helpers/social";

const GAP = 1700n * WAD;
/** How often the honest keeper tries (and the attacker answers): once per simulated round. */
const ROUND_SECONDS = 300n;

describe("ADL griefing: the deadline trigger bounds the delay", function () {
  it("a front-runner rotating the eligible positions stalls every deleverage call, yet B is settled at T_social", async function () {
    const f = await loadFixture(systemFixture);
    const [b, a1, a2, , , , , , , keeper] = f.traders;
    const id = f.ethId;
    const size = units(5);
    await tradeAt(f, b, a1, size, ETH_PRICE, { long: lev(10), short: lev(2) });
    await f.setPrice(ETH, GAP);
    await (await f.deleverager.reportUnsettled(id, b.address)).wait();
    const since = await f.deleverager.unsettledSince(id, b.address);
    const due = since + (await f.deleverager.socialDelay(id));

    const params = await f.clearinghouse.marketParams(id);
    const notional = mulDivUp(size, GAP, WAD);
    const feesPerMove = mulDivUp(notional, params.makerFee, WAD) + mulDivUp(notional, params.takerFee, WAD);
    const wealth = async () =>
      (await f.clearinghouse.freeCollateral(a1.address)) +
      (await f.clearinghouse.freeCollateral(a2.address)) +
      (await f.lens.equity(id, a1.address)) +
      (await f.lens.equity(id, a2.address));
    const wealthBefore = await wealth();
    let holder = a1;
    let other = a2;
    let attempts = 0;
    let attackerPaid = 0n;
    while ((await time.latest()) + Number(ROUND_SECONDS) < Number(due)) {
      // The honest keeper plans on the current book...
      const v = await keeperPlan(f, id, b.address);
      expect(v.plan.counterparties).to.deep.equal([holder.address]);
      // ...the attacker moves its short to its other account first (two fees)...
      await tradeAt(f, holder, other, size, GAP, { long: lev(2), short: lev(2) });
      [holder, other] = [other, holder];
      attackerPaid += feesPerMove;
      // ...and the keeper's call finds no live entry.
      await expect(
        f.deleverager.connect(f.keeper).deleverage(id, b.address, v.plan.counterparties, v.plan.proof),
      ).to.be.revertedWithCustomError(f.deleverager, "AdlNoLiveEntry");
      attempts++;
      await time.increase(ROUND_SECONDS);
    }
    expect(attempts).to.be.greaterThan(5);
    // Each move realizes the position at the index and reopens it there: only the fees are lost
    // (and at most a wei of flooring per move).
    const lost = wealthBefore - (await wealth());
    expect(lost).to.be.within(attackerPaid, attackerPaid + BigInt(attempts));
    expect(await pos(f, id, b.address)).to.include({ size });

    // T_social after the report, the deadline trigger settles B on the attacker's side of the book.
    await time.setNextBlockTimestamp(due - 1n);
    await f.setPrice(ETH, GAP);
    await time.setNextBlockTimestamp(due);
    await socializeExactly(f, id, b.address, keeper, false);
    expect(await pos(f, id, b.address)).to.include({ size: 0n });
    const settledAt = BigInt(await time.latest());
    expect(settledAt - since, "the delay is T_social, whatever the attacker did").to.equal(due - since);

    // What the stall cost: two fees per move; an attacker answering every 12-second block pays 300
    // moves an hour. Reported for docs/security.md.
    const perHourEveryBlock = (feesPerMove * 3600n) / 12n;
    console.log(
      `      ${attempts} stalled calls over ${(due - since) / 60n} min; fees per move ${feesPerMove} ` +
        `(${Number(feesPerMove) / 1e18} quote); per hour answering every 12 s block: ${Number(perHourEveryBlock) / 1e18} quote`,
    );
  });
});
