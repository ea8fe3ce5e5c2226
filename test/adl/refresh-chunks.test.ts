/**
 * `refreshLeafChunk`: a leaf refresh split across calls (docs/mechanism.md section 4). The session book's tie
 * leaf (t1 and t5, both 2x shorts from 2,000) is made stale by a short with a larger `a` in the same
 * leaf that closes again; refreshing it in one-member chunks writes exactly the leaf the replayed
 * book computes from its current members, joins below the last address are merged and counted, and a
 * change to a member below it cancels the refresh.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { fromEvents } from "../../lib/adl";
import { refreshChunks } from "../../lib/adl-session";
import { WAD } from "../../lib/math";
import { ETH_PRICE } from "../helpers/fixture";
import { lev, pos, units } from "../helpers/adl";
import { checkInvariants, fillAt, staleLeaf, traderBelow } from "../helpers/adl-session";

const SHORTS = false;

describe("ADL: leaf refresh split across calls", function () {
  /** The chain's leaf equals the replayed book's (which recomputes a refreshed leaf from its members). */
  async function expectLeafMatchesReplay(f: Awaited<ReturnType<typeof staleLeaf>>["f"], id: string, leaf: number) {
    const book = await fromEvents(f.clearinghouse, f.deleverager, 0, await ethers.provider.getBlockNumber());
    const chain = await f.deleverager.nodeAt(id, SHORTS, 0, leaf);
    const mine = book.tree(id, SHORTS).nodeAt(0, leaf);
    expect([chain.maxA, chain.bestK, chain.maxE, chain.count]).to.deep.equal([
      mine.maxA,
      mine.bestK,
      mine.maxE,
      mine.count,
    ]);
    return chain;
  }

  it("in one-member chunks: writes the exact leaf, as a one-call refresh would, and the replay follows", async function () {
    const { f, id, a, b, leaf } = await staleLeaf();
    const del = f.deleverager;
    const stale = await del.nodeAt(id, SHORTS, 0, leaf);
    const dust = await checkInvariants(f);
    const book = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
    expect(refreshChunks(book, id, SHORTS, leaf, 1)).to.deep.equal([[a.address], [b.address]]);
    const first = del.refreshLeafChunk(id, SHORTS, leaf, [a.address]);
    await expect(first).to.emit(del, "LeafRefreshChunk").withArgs(id, SHORTS, leaf, a.address, 1, 2);
    await expect(first).to.not.emit(del, "NodeRefreshed");
    // Nothing written yet.
    expect(await del.nodeAt(id, SHORTS, 0, leaf)).to.deep.equal(stale);
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [b.address]))
      .to.emit(del, "NodeRefreshed")
      .withArgs(id, SHORTS, 0, leaf);
    const chunked = await expectLeafMatchesReplay(f, id, leaf);
    expect(chunked.maxA).to.be.lessThan(stale.maxA);
    // The one-call refresh of the same members writes the same record.
    await (await del.refresh(id, SHORTS, 0, leaf, [a.address, b.address])).wait();
    expect(await del.nodeAt(id, SHORTS, 0, leaf)).to.deep.equal(chunked);
    await checkInvariants(f, dust);
  });

  it("a join below the last address is merged and counted; a change below it cancels the refresh", async function () {
    const { f, t, id, a, b, leaf } = await staleLeaf();
    const del = f.deleverager;
    await (await del.refreshLeafChunk(id, SHORTS, leaf, [a.address])).wait();
    // A short below a's address joins the leaf (2x from 2,000): merged and counted.
    const joiner = await traderBelow(f, a.address);
    await fillAt(f, t[8], joiner, units(1), ETH_PRICE, { long: lev(2), short: lev(2) });
    expect(Number((await pos(f, id, joiner.address)).leaf)).to.equal(leaf);
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [b.address])).to.emit(del, "NodeRefreshed");
    const node = await expectLeafMatchesReplay(f, id, leaf);
    expect(node.count).to.equal(3n);

    // Again: a listed member (a) changes its margin after its chunk, which cancels the refresh; the
    // next chunk then starts a new one that cannot complete without a.
    await (await del.refreshLeafChunk(id, SHORTS, leaf, [joiner.address, a.address])).wait();
    await (await f.clearinghouse.connect(a).addMargin(id, WAD)).wait();
    const moved = Number((await pos(f, id, a.address)).leaf);
    const count = moved === leaf ? 3 : 2;
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [b.address]))
      .to.emit(del, "LeafRefreshChunk")
      .withArgs(id, SHORTS, leaf, b.address, 1, count);
  });

  it("rejects a non-member and a list out of order within a call; across calls a lower first member restarts", async function () {
    const { f, t, id, a, b, leaf } = await staleLeaf();
    const del = f.deleverager;
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [t[3].address]))
      .to.be.revertedWithCustomError(del, "AdlNotMember")
      .withArgs(t[3].address);
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [b.address, a.address]))
      .to.be.revertedWithCustomError(del, "AdlMembersNotAscending")
      .withArgs(b.address, a.address);
    await (await del.refreshLeafChunk(id, SHORTS, leaf, [b.address])).wait();
    // A chunk from below the last address restarts the refresh (a first chunk that skipped a could
    // otherwise never complete): merged from scratch, then completed.
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [a.address]))
      .to.emit(del, "LeafRefreshChunk")
      .withArgs(id, SHORTS, leaf, a.address, 1, 2);
    await expect(del.refreshLeafChunk(id, SHORTS, leaf, [b.address])).to.emit(del, "NodeRefreshed");
    await expectLeafMatchesReplay(f, id, leaf);
  });
});
