import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH_PRICE, BTC_PRICE, type Fixture } from "../helpers/fixture";
import { signed, snapshot, expectRejected, type SignedOrder } from "../helpers/clearinghouse";
import { WAD } from "../../lib/math";

/** Three pairs across both markets, with distinct traders: alice/bob and carol/dave in ETH, erin/frank in BTC. */
async function threePairs(f: Fixture): Promise<{ m: SignedOrder; t: SignedOrder; fill: bigint }[]> {
  const [alice, bob, carol, dave, erin, frank] = f.traders;
  const eth = (size: bigint, price: bigint) => ({ marketId: f.ethId, size, limitPrice: price });
  const btc = (size: bigint, price: bigint) => ({ marketId: f.btcId, size, limitPrice: price });
  return [
    {
      m: await signed(f.clearinghouse, alice, eth(2n * WAD, ETH_PRICE + WAD)),
      t: await signed(f.clearinghouse, bob, eth(-2n * WAD, ETH_PRICE - WAD)),
      fill: 2n * WAD,
    },
    {
      m: await signed(f.clearinghouse, carol, eth(-WAD, ETH_PRICE - 3n * WAD)),
      t: await signed(f.clearinghouse, dave, eth(3n * WAD, ETH_PRICE)),
      fill: WAD,
    },
    {
      m: await signed(f.clearinghouse, erin, btc(WAD / 10n, BTC_PRICE)),
      t: await signed(f.clearinghouse, frank, btc(-WAD / 10n, BTC_PRICE)),
      fill: WAD / 10n,
    },
  ];
}

const asMatch = (p: { m: SignedOrder; t: SignedOrder; fill: bigint }) => ({
  maker: p.m.order,
  makerSignature: p.m.sig,
  taker: p.t.order,
  takerSignature: p.t.sig,
  fillSize: p.fill,
});

describe("Clearinghouse matchOrderBatch", function () {
  it("leaves exactly the state of the same matches sent one by one in the same block", async function () {
    const f = await loadFixture(systemFixture);
    const pairs = await threePairs(f);
    const accounts = f.traders.slice(0, 6).map((t) => t.address);
    const hashes = await Promise.all(
      pairs.flatMap((p) => [p.m.order, p.t.order].map((o) => f.clearinghouse.hashOrder(o))),
    );
    const ids = [f.ethId, f.btcId];

    // Both branches run in a block at the same timestamp, so funding accrues identically.
    const at = (await time.latest()) + 10;
    const start = await ethers.provider.send("evm_snapshot", []);
    await time.setNextBlockTimestamp(at);
    await ethers.provider.send("evm_setAutomine", [false]);
    for (const p of pairs) {
      await f.clearinghouse.connect(f.keeper).matchOrders(p.m.order, p.m.sig, p.t.order, p.t.sig, p.fill);
    }
    await ethers.provider.send("evm_mine", []);
    await ethers.provider.send("evm_setAutomine", [true]);
    const oneByOne = await snapshot(f.clearinghouse, ids, accounts, hashes);
    await ethers.provider.send("evm_revert", [start]);

    await time.setNextBlockTimestamp(at);
    const tx = await f.clearinghouse.connect(f.keeper).matchOrderBatch(pairs.map(asMatch));
    const receipt = await tx.wait();
    const batched = await snapshot(f.clearinghouse, ids, accounts, hashes);
    expect(batched).to.deep.equal(oneByOne);
    const matched = receipt!.logs.filter(
      (l) => l.topics[0] === f.clearinghouse.interface.getEvent("OrdersMatched").topicHash,
    );
    expect(matched.length).to.equal(3);
  });

  it("reverts whole when one match fails, with that match's error, and changes nothing", async function () {
    const f = await loadFixture(systemFixture);
    const pairs = await threePairs(f);
    const broken = pairs.map(asMatch);
    // The second match asks for more than its maker order holds.
    broken[1] = { ...broken[1], fillSize: 2n * WAD };
    const hash = await f.clearinghouse.hashOrder(pairs[1].m.order);
    await expectRejected(
      f,
      { ids: [f.ethId, f.btcId], accounts: f.traders.slice(0, 6).map((t) => t.address) },
      () => f.clearinghouse.connect(f.keeper).matchOrderBatch(broken),
      "OrderOverfilled",
      hash,
      0n,
      2n * WAD,
      WAD,
    );
  });

  it("rejects an empty batch with OrderBatchEmpty", async function () {
    const f = await loadFixture(systemFixture);
    await expectRejected(
      f,
      { ids: [f.ethId], accounts: [f.keeper.address] },
      () => f.clearinghouse.connect(f.keeper).matchOrderBatch([]),
      "OrderBatchEmpty",
    );
  });

  it("pays the fixed costs once: five fills in one batch cost less per fill than five single matches", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const order = async (signer: typeof alice, size: bigint) =>
      signed(f.clearinghouse, signer, { marketId: f.ethId, size, limitPrice: ETH_PRICE });
    const singles: bigint[] = [];
    const start = await ethers.provider.send("evm_snapshot", []);
    for (let i = 0; i < 5; i++) {
      const m = await order(alice, WAD);
      const t = await order(bob, -WAD);
      const r = await (await f.clearinghouse.connect(f.keeper).matchOrders(m.order, m.sig, t.order, t.sig, WAD)).wait();
      singles.push(r!.gasUsed);
    }
    await ethers.provider.send("evm_revert", [start]);
    const batch = [];
    for (let i = 0; i < 5; i++)
      batch.push(asMatch({ m: await order(alice, WAD), t: await order(bob, -WAD), fill: WAD }));
    const r = await (await f.clearinghouse.connect(f.keeper).matchOrderBatch(batch)).wait();
    const singleTotal = singles.reduce((a, b) => a + b, 0n);
    expect(r!.gasUsed).to.be.lessThan(singleTotal);
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).size).to.equal(5n * WAD);
  });
});
