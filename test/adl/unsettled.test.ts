/**
 * The unsettled-bankrupt list (docs/mechanism.md section 3, step 5, and section 5): a bankrupt position
 * the fund cannot cover is visible on-chain with its deficit at the current (P, F) until it is
 * settled; a partial ADL call keeps it listed, a full one removes it.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../../lib/math";
import { ETH, ETH_PRICE, systemFixture } from "../helpers/fixture";
import { keeperPlan, lev, tradeAt, units } from "../helpers/adl";

const GAP = 1700n * WAD;

describe("ADL: unsettled bankrupt positions", function () {
  async function bankruptLong() {
    const f = await loadFixture(systemFixture);
    const [b, s1, s2] = f.traders;
    await tradeAt(f, b, s1, units(3), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, b, s2, units(2), ETH_PRICE, { long: lev(10), short: lev(2) });
    await f.setPrice(ETH, GAP);
    return f;
  }

  it("lists a reported bankrupt position with its current deficit and refuses a healthy one", async function () {
    const f = await bankruptLong();
    const [b, s1] = f.traders;
    const id = f.ethId;
    const equity = await f.lens.equity(id, b.address);
    expect(equity < 0n).to.equal(true);
    await expect(f.deleverager.reportUnsettled(id, b.address))
      .to.emit(f.deleverager, "UnsettledAdded")
      .withArgs(id, b.address, -equity);
    // Reporting twice changes nothing.
    await expect(f.deleverager.reportUnsettled(id, b.address)).not.to.emit(f.deleverager, "UnsettledAdded");
    const [accounts, deficits] = await f.deleverager.unsettled(id);
    expect(accounts).to.deep.equal([b.address]);
    expect(deficits).to.deep.equal([-equity]);
    await expect(f.deleverager.reportUnsettled(id, s1.address))
      .to.be.revertedWithCustomError(f.deleverager, "AdlNotBankrupt")
      .withArgs(id, s1.address, 0);
    await expect(f.deleverager.clearUnsettled(id, b.address))
      .to.be.revertedWithCustomError(f.deleverager, "AdlStillUnsettled")
      .withArgs(id, b.address, -equity);
  });

  it("keeps a partly settled position listed and removes it once an ADL call settles the rest", async function () {
    const f = await bankruptLong();
    const [b] = f.traders;
    const id = f.ethId;
    const first = await keeperPlan(f, id, b.address, 1);
    await expect(
      f.deleverager.connect(f.keeper).deleverage(id, b.address, first.plan.counterparties, first.plan.proof),
    ).to.emit(f.deleverager, "UnsettledAdded");
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([b.address]);
    expect((await f.clearinghouse.getPosition(id, b.address)).size > 0n).to.equal(true);
    const second = await keeperPlan(f, id, b.address);
    await expect(
      f.deleverager.connect(f.keeper).deleverage(id, b.address, second.plan.counterparties, second.plan.proof),
    )
      .to.emit(f.deleverager, "UnsettledRemoved")
      .withArgs(id, b.address);
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([]);
  });

  it("lets anyone clear a listed position that recovered (margin added) and reports deficit 0 meanwhile", async function () {
    const f = await bankruptLong();
    const [b] = f.traders;
    const id = f.ethId;
    await f.deleverager.reportUnsettled(id, b.address);
    const deficit = -(await f.lens.equity(id, b.address));
    await f.clearinghouse.connect(b).addMargin(id, deficit + 10n * WAD);
    expect((await f.deleverager.unsettled(id))[1]).to.deep.equal([0n]);
    await expect(f.deleverager.clearUnsettled(id, b.address))
      .to.emit(f.deleverager, "UnsettledRemoved")
      .withArgs(id, b.address);
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([]);
  });
});
