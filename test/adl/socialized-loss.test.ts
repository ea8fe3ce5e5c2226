/**
 * The final layer (docs/mechanism.md section 7.6): when no opposite position is eligible, or ADL has
 * been too slow for T_social, `socializeLoss` lets the fund pay what it can and charges the rest to
 * every opposite position through its side's loss index, and the caller takes the bankrupt position
 * over at zero equity. Each test predicts the state to the wei from what it read before the call.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD, divFloor, mulDivUp } from "../../lib/math";
import { ETH, ETH_PRICE, systemFixture } from "../helpers/fixture";
import { keeperPlan, lev, noEligibleBook, pos, tradeAt, units, PENDING } from "../helpers/adl";
import { conservation } from "../helpers/liquidation";
import { accounts, noEligibleProof, pendingView, socializeExactly } from "../helpers/social";

describe("ADL: socialized loss, the final layer", function () {
  async function impossible() {
    const f = await loadFixture(systemFixture);
    await noEligibleBook(f, 3);
    return f;
  }

  it("nothing settles debt ADL cannot: with no eligible counterparty, the final layer settles B at once", async function () {
    const f = await impossible();
    const [b, , t2, , , t5, , , , t9] = f.traders;
    const id = f.ethId;
    const call = await noEligibleProof(f, id, b.address);
    expect(call.covered, "the fund falls short").to.be.lessThan(call.deficit);
    expect(call.plan, "no ADL list exists").to.equal(undefined);
    await expect(keeperPlan(f, id, b.address)).to.be.rejectedWith(/no eligible counterparty/);
    const { step, receipt } = await socializeExactly(f, id, b.address, t9);
    // Four late long units share 900 - A per unit of B; each keeps positive equity.
    expect(step).to.equal(mulDivUp(call.deficit - call.covered, WAD, units(4)));
    expect(await f.lens.equity(id, t2.address)).to.be.greaterThan(0n);
    expect(await f.lens.equity(id, t5.address)).to.be.greaterThan(0n);
    console.log(`      gas, socializeLoss with an empty-list proof (N = 4): ${receipt.gasUsed}`);
  });

  it("a charged position realizes exactly its loss-index charge when it closes", async function () {
    const f = await impossible();
    const [b, , t2, t3, , , , , , t9] = f.traders;
    const id = f.ethId;
    const { step } = await socializeExactly(f, id, b.address, t9);
    // t2 (1 long unit at 2,900, 10x) sells out to t3's short at 3,100: the payout is c + floor(q * x / W)
    // with x = P - (F + L_long) - K.
    const p = await pos(f, id, t2.address);
    const free = await f.clearinghouse.freeCollateral(t2.address);
    const view = await pendingView(f, id);
    await tradeAt(f, t3, t2, units(1), 3100n * WAD, { long: lev(2), short: lev(2) });
    const fee = mulDivUp(mulDivUp(units(1), 3100n * WAD, WAD), 5n * 10n ** 14n, WAD);
    const expected = p.margin + divFloor(p.size * (3100n * WAD - view.fundingLong - p.entry), WAD);
    expect(view.fundingLong).to.equal((await f.clearinghouse.marketState(id)).cumulativeFunding + step);
    // t2 is the taker of the fill (the long is the maker): its free collateral moves by payout - taker fee.
    expect((await f.clearinghouse.freeCollateral(t2.address)) - free + fee).to.equal(expected);
    expect(await conservation(f, [f.ethId, f.btcId], accounts(f))).to.be.greaterThanOrEqual(0n);
  });

  it("the empty-list proof is refused while an eligible counterparty exists; the deadline trigger then settles after T_social", async function () {
    const f = await loadFixture(systemFixture);
    const [b, s1, , , , , , , , t9] = f.traders;
    const id = f.ethId;
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    await f.setPrice(ETH, 1700n * WAD);
    const call = await noEligibleProof(f, id, b.address);
    expect(call.plan?.counterparties).to.deep.equal([s1.address]);
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, call.proof)).to.be.revertedWithCustomError(
      f.deleverager,
      "AdlMemberOutranks",
    );
    // Without a proof the deadline trigger needs B on the unsettled list for T_social = 2T.
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, []))
      .to.be.revertedWithCustomError(f.deleverager, "AdlSocialTooEarly")
      .withArgs(id, b.address, 0n);
    await (await f.deleverager.reportUnsettled(id, b.address)).wait();
    const since = await f.deleverager.unsettledSince(id, b.address);
    const delay = await f.deleverager.socialDelay(id);
    expect(delay).to.equal(2n * (await f.deleverager.sessionTtl(id)));
    // One second early (the price refreshed just before, within the strict window).
    await time.setNextBlockTimestamp(since + delay - 2n);
    await f.setPrice(ETH, 1700n * WAD);
    await expect(f.deleverager.connect(t9).socializeLoss(id, b.address, []))
      .to.be.revertedWithCustomError(f.deleverager, "AdlSocialTooEarly")
      .withArgs(id, b.address, since + delay);
    // Nobody ran ADL for T_social: the final layer settles B, charging every short.
    await time.setNextBlockTimestamp(since + delay);
    await socializeExactly(f, id, b.address, t9, false);
  });

  it("rejects the owner, a solvent position, a direct call and a covered position (an open session: test/review/socialized-loss.test.ts)", async function () {
    const f = await impossible();
    const [b, , , , , , , , , t9] = f.traders;
    const id = f.ethId;
    const call = await noEligibleProof(f, id, b.address);
    const del = f.deleverager;
    await expect(del.connect(b).socializeLoss(id, b.address, call.proof))
      .to.be.revertedWithCustomError(del, "AdlSocialSelf")
      .withArgs(b.address);
    await expect(del.connect(b).socializeLoss(id, t9.address, call.proof))
      .to.be.revertedWithCustomError(del, "AdlNotBankrupt")
      .withArgs(id, t9.address, 0n);
    await expect(f.clearinghouse.connect(t9).settleSocializedLoss(id, b.address, 0n, t9.address))
      .to.be.revertedWithCustomError(f.clearinghouse, "NotRankIndex")
      .withArgs(t9.address);
    // A well-staked fund covers B: liquidation, not the final layer.
    const snap = await takeSnapshot();
    const fund = await f.insuranceFund.getAddress();
    await (await f.token.mint(t9.address, 10_000n * 10n ** 6n)).wait();
    await (await f.token.connect(t9).approve(fund, ethers.MaxUint256)).wait();
    await (await f.insuranceFund.connect(t9).deposit(10_000n * 10n ** 6n, t9.address)).wait();
    await expect(del.connect(t9).socializeLoss(id, b.address, call.proof)).to.be.revertedWithCustomError(
      del,
      "AdlFundSufficient",
    );
    await snap.restore();
    expect(await pos(f, id, b.address)).to.include({ size: units(1) });
  });

  it("cascade: a charge that bankrupts a position sends it through the same layers, and settlement ends", async function () {
    const f = await loadFixture(systemFixture);
    await noEligibleBook(f, 0); // one late long unit (t2) carries the whole charge
    const id = f.ethId;
    const takers = [f.traders[9], f.traders[8], f.traders[7], f.traders[6]];
    const steps: string[] = [];
    for (let round = 0; round < 8; round++) {
      const bankrupt = [];
      for (const t of f.traders) if ((await f.lens.equity(id, t.address, PENDING)) < 0n) bankrupt.push(t.address);
      if (bankrupt.length === 0) break;
      const B = bankrupt[0];
      const call = await noEligibleProof(f, id, B);
      const taker = takers.find((t) => t.address !== B)!;
      takers.push(takers.shift()!);
      if (call.plan) {
        await (
          await f.deleverager.connect(f.keeper).deleverage(id, B, call.plan.counterparties, call.plan.proof)
        ).wait();
        steps.push("ADL");
      } else {
        await socializeExactly(f, id, B, taker);
        steps.push("socialized");
      }
    }
    for (const t of f.traders) expect(await f.lens.equity(id, t.address, PENDING)).to.be.greaterThanOrEqual(0n);
    // B's charge bankrupts t2, whose charge bankrupts the first taker, whose deficit ADL settles.
    expect(steps).to.deep.equal(["socialized", "socialized", "ADL"]);
    const st = await f.clearinghouse.marketState(id);
    expect(st.longOpenInterest).to.equal(st.shortOpenInterest);
  });
});
