/**
 * Verifiable ADL end to end (docs/mechanism.md sections 3 and 4): positions opened through signed orders at
 * the index (F stays 0), a price gap leaves a long bankrupt while the insurance fund holds only the
 * fund share of trading fees, and a keeper settles it with the list and completeness proof that
 * lib/adl.ts builds from events. Every accepted call is checked to the wei against an independent
 * spec-level prediction (test/helpers/adl.ts); rejections live in deleverage-rejections.test.ts.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../../lib/math";
import { adlDelta, buildDeleverage, buildProof, buildQueue } from "../../lib/adl";
import { positionScore } from "../../lib/score";
import { ETH, ETH_PRICE, systemFixture } from "../helpers/fixture";
import { open } from "../helpers/clearinghouse";
import {
  deleverageExactly,
  expectProofNodesMatchChain,
  keeperPlan,
  keeperView,
  lev,
  pos,
  tradeAt,
  units,
} from "../helpers/adl";

const GAP = 1700n * WAD;

describe("ADL: deleverage happy paths", function () {
  async function single() {
    const f = await loadFixture(systemFixture);
    const [b, s1] = f.traders;
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    await f.setPrice(ETH, GAP);
    return f;
  }

  it("one counterparty: the whole position, fund short, exact post-state and events", async function () {
    const f = await single();
    const [b, s1] = f.traders;
    const id = f.ethId;
    expect(await f.lens.isBankrupt(id, b.address)).to.equal(true);
    const v = await keeperPlan(f, id, b.address);
    expect(v.available).to.be.greaterThan(0n);
    expect(v.available).to.be.lessThan(v.delta.deficit);
    const [viewDelta, viewSigma] = await f.deleverager.adlDelta(id, b.address);
    expect([v.delta.delta, v.delta.sigma]).to.deep.equal([viewDelta, viewSigma]);
    expect(v.plan.counterparties).to.deep.equal([s1.address]);
    const [, chainScore] = await f.deleverager.adlScore(id, s1.address);
    expect(v.plan.scores).to.deep.equal([chainScore]);
    await expectProofNodesMatchChain(f, v.book, id, false, v.plan.proof);
    const before = await f.clearinghouse.freeCollateral(s1.address);
    const { prediction, receipt } = await deleverageExactly(
      f,
      id,
      b.address,
      v.plan.counterparties,
      v.plan.proof,
      v.plan.scores,
    );
    // Both closed; the counterparty got max(V - L, 0) and B's closed part absorbed the whole deficit.
    expect(await pos(f, id, b.address)).to.include({ size: 0n });
    expect(await pos(f, id, s1.address)).to.include({ size: 0n });
    const gain = prediction.closedEquity[0] - prediction.charges[0];
    expect(await f.clearinghouse.freeCollateral(s1.address)).to.equal(before + gain);
    expect(prediction.fundPays).to.equal(v.available);
    console.log(`      gas, deleverage with 1 counterparty: ${receipt.gasUsed}`);
  });

  async function several() {
    const f = await loadFixture(systemFixture);
    const t = f.traders;
    // B long 10 at 10x; shorts t1 5 @2x, t2 3 @3x, t3 4 @5x; t9 long 2 @2x takes the rest.
    await tradeAt(f, t[0], t[1], units(3), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, t[9], t[1], units(2), ETH_PRICE, { long: lev(2), short: lev(2) });
    await tradeAt(f, t[0], t[2], units(3), ETH_PRICE, { long: lev(10), short: lev(3) });
    await tradeAt(f, t[0], t[3], units(4), ETH_PRICE, { long: lev(10), short: lev(5) });
    await f.setPrice(ETH, GAP);
    return f;
  }

  it("several counterparties in different leaves, the last one partial", async function () {
    const f = await loadFixture(several);
    const t = f.traders;
    const id = f.ethId;
    const v = await keeperPlan(f, id, t[0].address);
    expect(v.plan.counterparties).to.deep.equal([t[3].address, t[2].address, t[1].address]);
    expect(v.plan.takes).to.deep.equal([units(4), units(3), units(3)]);
    const leaves = await Promise.all(v.plan.counterparties.map(async (a) => (await pos(f, id, a)).leaf));
    expect(new Set(leaves).size).to.equal(3);
    const opened = v.plan.proof.filter((n) => n.open);
    expect(opened.map((n) => BigInt(n.position)).sort()).to.deep.equal([...leaves].sort());
    await expectProofNodesMatchChain(f, v.book, id, false, v.plan.proof);
    const { prediction } = await deleverageExactly(f, id, t[0].address, v.plan.counterparties, v.plan.proof);
    // t1 keeps 2 units with its a, K and leaf; its margin shrank by the released share only.
    const rest = await pos(f, id, t[1].address);
    expect(rest.size).to.equal(units(2));
    expect(prediction.after.positions.get(t[1].address)).to.deep.equal(rest);
    for (const i of [0, 2, 3]) expect((await pos(f, id, t[i].address)).size).to.equal(0n);
  });

  it("a list shorter than the position settles over two calls at the same subsidy per unit", async function () {
    const f = await loadFixture(several);
    const t = f.traders;
    const id = f.ethId;
    const first = await keeperPlan(f, id, t[0].address, 1);
    expect(first.plan.counterparties).to.deep.equal([t[3].address]);
    const one = await deleverageExactly(f, id, t[0].address, first.plan.counterparties, first.plan.proof);
    expect(one.prediction.remaining).to.equal(units(6));
    const second = await keeperPlan(f, id, t[0].address);
    expect(second.plan.counterparties).to.deep.equal([t[2].address, t[1].address]);
    // sigma = floor(min(A, D) * W / q_B) holds from one call to the next (up to the floor and the
    // few wei of rounding surplus the first call returned to the fund).
    expect(second.delta.sigma - first.delta.sigma).to.be.within(0n, 1n);
    const two = await deleverageExactly(f, id, t[0].address, second.plan.counterparties, second.plan.proof);
    const perUnit1 = (one.prediction.fundPays * WAD) / one.prediction.d;
    const perUnit2 = (two.prediction.fundPays * WAD) / two.prediction.d;
    expect(perUnit2 - perUnit1).to.be.within(-1n, 1n);
    expect(perUnit1 - first.delta.sigma).to.be.within(0n, 1n);
    expect((await pos(f, id, t[0].address)).size).to.equal(0n);
  });

  it("skips a head of highly leveraged late shorts that cannot absorb and settles the eligible ones", async function () {
    const f = await loadFixture(systemFixture);
    const t = f.traders;
    const id = f.ethId;
    await tradeAt(f, t[0], t[1], units(6), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, t[0], t[2], units(4), ETH_PRICE, { long: lev(10), short: lev(3) });
    // Late entrants at 1,450 with 10x and 8x: small margin per unit, small profit at 1,400.
    await tradeAt(f, t[9], t[3], units(3), 1450n * WAD, { long: lev(2), short: lev(10) });
    await tradeAt(f, t[9], t[4], units(2), 1450n * WAD, { long: lev(2), short: lev(8) });
    await f.setPrice(ETH, 1400n * WAD);
    const v = await keeperView(f, id, t[0].address);
    const score = (a: string) => {
      const p = v.book.position(id, a);
      return positionScore(false, p.leverage, p.entry, v.price, v.funding).value;
    };
    // The late shorts rank first by score but are ineligible: their equity per unit is below delta.
    expect(score(t[3].address)).to.be.greaterThan(score(t[2].address));
    expect(score(t[4].address)).to.be.greaterThan(score(t[2].address));
    const queue = buildQueue(v.book, id, t[0].address, v.price, v.funding, v.delta.delta);
    expect(queue.map((q) => q.account)).to.deep.equal([t[2].address, t[1].address]);
    const plan = buildDeleverage(v.book, id, t[0].address, v.price, v.funding, v.delta.delta);
    // Their leaves are never opened: pruned as wholly ineligible.
    const lateLeaves = [t[3], t[4]].map((s) => v.book.position(id, s.address).leaf);
    expect(plan.proof.some((n) => n.open && lateLeaves.includes(n.position))).to.equal(false);
    await deleverageExactly(f, id, t[0].address, plan.counterparties, plan.proof);
    expect((await pos(f, id, t[3].address)).size).to.equal(units(3));
    expect((await pos(f, id, t[4].address)).size).to.equal(units(2));
    expect((await pos(f, id, t[0].address)).size).to.equal(0n);
  });

  it("refresh tightens a stale node, the replay follows NodeRefreshed, and the proof gets shorter", async function () {
    const f = await loadFixture(several);
    const t = f.traders;
    const id = f.ethId;
    // t5 opens a 10x short and closes it: its leaf and ancestors keep the stale a (removal only counts).
    await tradeAt(f, t[8], t[5], units(2), ETH_PRICE, { long: lev(2), short: lev(10) });
    await tradeAt(f, t[5], t[8], units(2), ETH_PRICE);
    await f.setPrice(ETH, GAP);
    const stale = await keeperPlan(f, id, t[0].address);
    const closedLeaf = stale.plan.proof.find((n) => n.open && n.members.length === 0);
    expect(closedLeaf, "the stale leaf is opened with no live member").to.not.equal(undefined);
    // The stale proof is valid as it is.
    await f.deleverager
      .connect(f.keeper)
      .deleverage.staticCall(id, t[0].address, stale.plan.counterparties, stale.plan.proof);
    // Refresh the leaf from its (empty) member list, then every ancestor from its children.
    const leaf = closedLeaf!.position;
    await (await f.deleverager.refresh(id, false, 0, leaf, [])).wait();
    for (let level = 1; level <= 14; level++) {
      await (await f.deleverager.refresh(id, false, level, leaf >> level, [])).wait();
    }
    const fresh = await keeperPlan(f, id, t[0].address);
    expect(fresh.plan.counterparties).to.deep.equal(stale.plan.counterparties);
    expect(fresh.plan.proof.length).to.be.lessThan(stale.plan.proof.length);
    expect(fresh.book.tree(id, false).nodeAt(0, leaf).maxA).to.equal(0n);
    await expectProofNodesMatchChain(f, fresh.book, id, false, fresh.plan.proof);
    await deleverageExactly(f, id, t[0].address, fresh.plan.counterparties, fresh.plan.proof);
  });

  it("replays the book in block pages", async function () {
    const f = await loadFixture(several);
    const t = f.traders;
    const id = f.ethId;
    const a = await keeperView(f, id, t[0].address, 1);
    const b = await keeperView(f, id, t[0].address, 100000);
    for (const acct of t.map((s) => s.address)) {
      expect(a.book.position(id, acct)).to.deep.equal(b.book.position(id, acct));
      const chain = await pos(f, id, acct);
      expect(a.book.position(id, acct)).to.deep.include({
        isLong: chain.isLong,
        size: chain.size,
        entry: chain.entry,
        margin: chain.margin,
        leverage: chain.leverage,
        leaf: Number(chain.leaf),
      });
    }
    const plan = buildDeleverage(a.book, id, t[0].address, a.price, a.funding, a.delta.delta);
    await deleverageExactly(f, id, t[0].address, plan.counterparties, plan.proof);
  });

  it("with funding running: (P, F) read at the pinned block of the call", async function () {
    const f = await loadFixture(systemFixture);
    const t = f.traders;
    const id = f.ethId;
    await tradeAt(f, t[0], t[1], units(4), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, t[0], t[2], units(3), ETH_PRICE, { long: lev(10), short: lev(4) });
    // A fill 1% over the index sets a positive rate for the next window: longs pay.
    await open(f, id, t[7], t[8], units(3), 2020n * WAD, { long: lev(2), short: lev(2) });
    const st = await f.clearinghouse.marketState(id);
    await time.increaseTo(st.windowStart + 3600n + 1200n);
    await f.setPrice(ETH, GAP);
    await time.setNextBlockTimestamp((await time.latest()) + 30);
    const v = await keeperPlan(f, id, t[0].address);
    expect(v.funding).to.be.greaterThan(0n);
    // F moves every second: the values of the call's block differ from those of the last block.
    const lastBlockF = await f.lens.currentFunding(id);
    expect(v.funding).to.not.equal(lastBlockF);
    const stale = adlDelta(v.book, id, t[0].address, v.price, lastBlockF, v.available);
    expect(stale.delta).to.not.equal(v.delta.delta);
    expect(v.plan.counterparties).to.deep.equal([t[2].address, t[8].address, t[1].address]);
    const { prediction } = await deleverageExactly(
      f,
      id,
      t[0].address,
      v.plan.counterparties,
      v.plan.proof,
      v.plan.scores,
    );
    expect((await f.clearinghouse.marketState(id)).cumulativeFunding).to.equal(v.funding);
    expect(prediction.d).to.equal(units(7));
  });

  it("an entry that closed after the keeper built the list is skipped; the call still settles", async function () {
    const f = await loadFixture(several);
    const t = f.traders;
    const id = f.ethId;
    const v = await keeperPlan(f, id, t[0].address);
    expect(v.plan.counterparties).to.deep.equal([t[3].address, t[2].address, t[1].address]);
    // The head buys back its whole short from a newcomer before the call lands.
    await tradeAt(f, t[3], t[7], units(4), GAP, { long: lev(2), short: lev(2) });
    expect((await pos(f, id, t[3].address)).size).to.equal(0n);
    const { prediction } = await deleverageExactly(f, id, t[0].address, v.plan.counterparties, v.plan.proof);
    expect(prediction.takes).to.deep.equal([units(3), units(5)]);
    expect((await pos(f, id, t[0].address)).size).to.equal(units(2));
  });

  it("gas with five counterparties (printed)", async function () {
    const f = await loadFixture(systemFixture);
    const t = f.traders;
    const id = f.ethId;
    for (const [i, l] of [
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 5],
      [5, 6],
    ] as const) {
      await tradeAt(f, t[0], t[i], units(2), ETH_PRICE, { long: lev(10), short: lev(l) });
    }
    await f.setPrice(ETH, GAP);
    const v = await keeperPlan(f, id, t[0].address);
    expect(v.plan.counterparties).to.deep.equal([5, 4, 3, 2, 1].map((i) => t[i].address));
    const { receipt } = await deleverageExactly(f, id, t[0].address, v.plan.counterparties, v.plan.proof);
    console.log(`      gas, deleverage with 5 counterparties: ${receipt.gasUsed} (proof ${v.plan.proof.length} nodes)`);
  });

  it("buildProof for a shorter list only prunes what the bound allows", async function () {
    const f = await loadFixture(several);
    const t = f.traders;
    const id = f.ethId;
    const v = await keeperView(f, id, t[0].address);
    const queue = buildQueue(v.book, id, t[0].address, v.price, v.funding, v.delta.delta);
    const head = buildProof(v.book, id, false, v.price, v.funding, v.delta.delta, queue[0].value);
    expect(head.filter((n) => n.open).map((n) => n.members)).to.deep.equal([[t[3].address]]);
  });
});
