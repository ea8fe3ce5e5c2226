import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH_PRICE } from "../helpers/fixture";
import { expectRejected, open, signed, submit } from "../helpers/clearinghouse";
import { WAD } from "../../lib/math";
import { MockMulticall__factory } from "../../typechain-types";

/** The local feeds: a day's heartbeat for ordinary reads, an hour for strict ones (lib/local.ts). */
const STRICT_WINDOW_S = 3600;

describe("Clearinghouse on a price older than the strict window", function () {
  /** Alice long 2, bob short 2 at 2,000 while the feed is fresh; then the feed ages two hours. */
  async function agedFixture() {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    await open(f, f.ethId, alice, bob, 2n * WAD, ETH_PRICE);
    await time.increase(2 * STRICT_WINDOW_S);
    return f;
  }

  it("stale-feed risk: refuses to open or increase a position (RiskIncreaseOnStalePrice), state unchanged", async function () {
    const f = await agedFixture();
    const [alice, bob, carol] = f.traders;
    const scope = { ids: [f.ethId], accounts: [alice.address, bob.address, carol.address] };
    // Alice increases against a fresh seller: the increasing leg is refused.
    const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: ETH_PRICE });
    const t = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: -WAD, limitPrice: ETH_PRICE });
    await expectRejected(
      f,
      scope,
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "RiskIncreaseOnStalePrice",
      f.ethId,
    );
  });

  it("still lets both sides reduce, so traders can exit while the feed is stale but within its heartbeat", async function () {
    const f = await agedFixture();
    const [alice, bob] = f.traders;
    const m = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: WAD, limitPrice: ETH_PRICE });
    const t = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -WAD, limitPrice: ETH_PRICE });
    await (await submit(f.clearinghouse, f.keeper, m, t, WAD)).wait();
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).size).to.equal(WAD);
    expect((await f.clearinghouse.getPosition(f.ethId, bob.address)).size).to.equal(WAD);
  });

  it("stale-feed risk: refuses to remove margin with the oracle's strict staleness error, but adding margin works", async function () {
    const f = await agedFixture();
    const [alice] = f.traders;
    const before = await f.clearinghouse.getPosition(f.ethId, alice.address);
    await expect(f.clearinghouse.connect(alice).removeMargin(f.ethId, WAD)).to.be.revertedWithCustomError(
      f.oracle,
      "OracleStalePrice",
    );
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).margin).to.equal(before.margin);
    await (await f.clearinghouse.connect(alice).addMargin(f.ethId, WAD)).wait();
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).margin).to.equal(before.margin + WAD);
  });

  it("opens a position in a transaction that read the price under the heartbeat first (accrueFunding, then a match)", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const multicall = await new MockMulticall__factory(f.admin).deploy();
    const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: ETH_PRICE });
    const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -WAD, limitPrice: ETH_PRICE });
    const ch = f.clearinghouse.interface;
    await (
      await multicall.multicall(await f.clearinghouse.getAddress(), [
        ch.encodeFunctionData("accrueFunding", [f.ethId]),
        ch.encodeFunctionData("matchOrders", [m.order, m.sig, t.order, t.sig, WAD]),
      ])
    ).wait();
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).size).to.equal(WAD);
  });
});
