import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH_PRICE } from "../helpers/fixture";
import { buildOrder, signAndMatch } from "../../lib/matching";
import { WAD } from "../../lib/math";

describe("Clearinghouse smoke", function () {
  it("opens a long and a short from two matched orders", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const maker = buildOrder(alice.address, { marketId: f.ethId, size: WAD, limitPrice: ETH_PRICE });
    const taker = buildOrder(bob.address, { marketId: f.ethId, size: -WAD, limitPrice: ETH_PRICE });
    await signAndMatch(f.clearinghouse, f.keeper, { signer: alice, order: maker }, { signer: bob, order: taker });
    const long = await f.clearinghouse.getPosition(f.ethId, alice.address);
    const short = await f.clearinghouse.getPosition(f.ethId, bob.address);
    expect(long.isLong).to.equal(true);
    expect(long.size).to.equal(WAD);
    expect(short.isLong).to.equal(false);
    expect(long.margin).to.equal(400n * WAD);
  });
});
