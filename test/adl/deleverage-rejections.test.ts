/**
 * Every rejected deleverage call says why (custom error with its arguments) and leaves the state
 * exactly as it was: positions and free collateral of every trader, market state, fund tokens and
 * supply, pending fees, treasury, rounding reserves, and both tree roots.
 *
 * Book: B = t0 long 10 at 2,000 with 10x; shorts at 2,000: t3 4 @5x, t2 3 @3x, t1 5 @2x, t5 1 @2x
 * (t1 and t5 share a leaf and tie on score), t6 1 @1x; late shorts t4 2 @10x at 1,450 (ineligible at
 * 1,400); longs t9 and t8 at 2x take the rest. Then the index gaps to 1,400.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../../lib/math";
import { buildProof, type ProofNode } from "../../lib/adl";
import { equityOf, pnlPerUnit } from "../../lib/position";
import { ETH, ETH_PRICE, SCALE, systemFixture } from "../helpers/fixture";
import { stake } from "../helpers/liquidation";
import { deleverageExactly, expectAdlRejected, fundAvailable, keeperPlan, lev, tradeAt, units } from "../helpers/adl";

const GAP = 1400n * WAD;

async function rejectionBook() {
  const f = await loadFixture(systemFixture);
  const t = f.traders;
  await tradeAt(f, t[0], t[3], units(4), ETH_PRICE, { long: lev(10), short: lev(5) });
  await tradeAt(f, t[0], t[2], units(3), ETH_PRICE, { long: lev(10), short: lev(3) });
  await tradeAt(f, t[0], t[1], units(3), ETH_PRICE, { long: lev(10), short: lev(2) });
  await tradeAt(f, t[9], t[1], units(2), ETH_PRICE, { long: lev(2), short: lev(2) });
  await tradeAt(f, t[9], t[5], units(1), ETH_PRICE, { long: lev(2), short: lev(2) });
  await tradeAt(f, t[9], t[6], units(1), ETH_PRICE, { long: lev(2), short: lev(1) });
  await tradeAt(f, t[8], t[4], units(2), 1450n * WAD, { long: lev(2), short: lev(10) });
  await f.setPrice(ETH, GAP);
  return f;
}

describe("ADL: deleverage rejections", function () {
  async function setup() {
    const f = await loadFixture(rejectionBook);
    const t = f.traders;
    const id = f.ethId;
    const B = t[0].address;
    const v = await keeperPlan(f, id, B);
    return { f, t, id, B, v, list: v.plan.counterparties, proof: v.plan.proof, del: f.deleverager };
  }

  it("the honest list and proof: head t3, t2, then the tie in t1/t5's leaf by address", async function () {
    const { f, t, id, B, list, proof } = await setup();
    const tie = [t[1].address, t[5].address].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(list.slice(0, 3)).to.deep.equal([t[3].address, t[2].address, tie[0]]);
    const shared = proof.find((n) => n.open && n.members.includes(t[1].address))!;
    expect(shared.members).to.deep.equal(tie);
    await deleverageExactly(f, id, B, list, proof);
  });

  it("AdlNotBankrupt: the named position has non-negative equity", async function () {
    const { f, t, id, v, list, proof, del } = await setup();
    const s = v.book.position(id, t[3].address);
    const eq = equityOf(s.margin, s.size, pnlPerUnit(s.isLong, s.entry, v.price, v.funding));
    expect(eq).to.be.greaterThanOrEqual(0n);
    await expectAdlRejected(f, id, t[3].address, list, proof, del, "AdlNotBankrupt", id, t[3].address, eq);
    // No position at all: equity 0.
    await expectAdlRejected(f, id, t[7].address, list, proof, del, "AdlNotBankrupt", id, t[7].address, 0n);
  });

  it("AdlFundSufficient: the fund can cover the whole deficit", async function () {
    const { f, t, id, B, v, list, proof, del } = await setup();
    await stake(f, t[7], v.delta.deficit / SCALE + 1n);
    const available = await fundAvailable(f);
    expect(available).to.be.greaterThanOrEqual(v.delta.deficit);
    await expectAdlRejected(f, id, B, list, proof, del, "AdlFundSufficient", v.delta.deficit, available);
  });

  it("AdlEntrySameSide, AdlEntryDuplicate, AdlEntryIsBankrupt", async function () {
    const { f, t, id, B, list, proof, del } = await setup();
    const [a9, a3] = [t[9].address, t[3].address];
    await expectAdlRejected(f, id, B, [a9, ...list], proof, del, "AdlEntrySameSide", a9);
    await expectAdlRejected(f, id, B, [a3, a3], proof, del, "AdlEntryDuplicate", a3);
    await expectAdlRejected(f, id, B, [a3, B], proof, del, "AdlEntryIsBankrupt", B);
    await expectAdlRejected(f, id, B, [B, ...list], proof, del, "AdlEntryIsBankrupt", B);
  });

  it("AdlNoLiveEntry: an empty list, or one whose only entry has no position", async function () {
    const { f, t, id, B, proof, del } = await setup();
    await expectAdlRejected(f, id, B, [], proof, del, "AdlNoLiveEntry");
    await expectAdlRejected(f, id, B, [t[7].address], proof, del, "AdlNoLiveEntry");
  });

  it("AdlListOrder: two entries swapped", async function () {
    const { f, id, B, list, proof, del } = await setup();
    const swapped = [list[1], list[0], ...list.slice(2)];
    await expectAdlRejected(f, id, B, swapped, proof, del, "AdlListOrder", list[1], list[0]);
  });

  it("AdlListPadded: an eligible, lower-ranked entry after the position is covered", async function () {
    const { f, t, id, B, list, proof, del } = await setup();
    expect(list).to.not.include(t[6].address);
    const padded = [...list, t[6].address];
    await expectAdlRejected(f, id, B, padded, proof, del, "AdlListPadded", t[6].address);
  });

  it("AdlEntryIneligible: a late 10x short whose equity per unit is below delta", async function () {
    const { f, t, id, B, v, list, proof, del } = await setup();
    const p = v.book.position(id, t[4].address);
    expect((p.margin * WAD) / p.size + pnlPerUnit(false, p.entry, v.price, v.funding)).to.be.lessThan(v.delta.delta);
    await expectAdlRejected(f, id, B, [t[4].address, ...list], proof, del, "AdlEntryIneligible", t[4].address);
  });

  describe("completeness", function () {
    /** The list without the head t3, with the proof the builder makes for it. */
    async function withoutHead() {
      const s = await setup();
      const rest = s.list.slice(1);
      const lastScore = s.v.plan.scores[s.v.plan.scores.length - 1];
      const proof = buildProof(s.v.book, s.id, false, s.v.price, s.v.funding, s.v.delta.delta, lastScore);
      const leaf3 = s.v.book.position(s.id, s.t[3].address).leaf;
      return { ...s, rest, proof, leaf3 };
    }

    it("AdlMemberOutranks: the head left out sits in an opened leaf", async function () {
      const { f, t, id, B, rest, proof, leaf3, del } = await withoutHead();
      const node = proof.find((n) => n.level === 0 && n.position === leaf3)!;
      expect(node.open).to.equal(true);
      expect(node.members).to.deep.equal([t[3].address]);
      await expectAdlRejected(f, id, B, rest, proof, del, "AdlMemberOutranks", t[3].address);
    });

    it("AdlNodeNotPrunable: the head left out sits in a node claimed pruned", async function () {
      const { f, id, B, rest, proof, leaf3, del } = await withoutHead();
      const forged = proof.map((n) => (n.level === 0 && n.position === leaf3 ? { ...n, open: false, members: [] } : n));
      await expectAdlRejected(f, id, B, rest, forged, del, "AdlNodeNotPrunable", 0, leaf3);
      // Pruning the root outright fails at the root.
      await expectAdlRejected(
        f,
        id,
        B,
        rest,
        [{ level: 14, position: 0, open: false, members: [] }],
        del,
        "AdlNodeNotPrunable",
        14,
        0,
      );
    });

    it("AdlLeafCountMismatch: a member missing from an opened leaf", async function () {
      const { f, t, id, B, list, proof, del } = await setup();
      const i = proof.findIndex((n) => n.open && n.members.includes(t[1].address));
      const leaf = proof[i];
      const dropped = leaf.members.find((m) => !list.includes(m)) ?? leaf.members[leaf.members.length - 1];
      const forged = proof.map((n, j) => (j === i ? { ...n, members: n.members.filter((m) => m !== dropped) } : n));
      const count = BigInt(leaf.members.length);
      await expectAdlRejected(f, id, B, list, forged, del, "AdlLeafCountMismatch", leaf.position, count - 1n, count);
    });

    it("AdlProofGap (a node skipped, a node repeated) and AdlProofIncomplete", async function () {
      const { f, id, B, list, proof, del } = await setup();
      expect(proof.length).to.be.greaterThan(3);
      const end = (n: ProofNode) => (n.position + 1) * 2 ** n.level;
      const gap = [proof[0], ...proof.slice(2)];
      await expectAdlRejected(
        f,
        id,
        B,
        list,
        gap,
        del,
        "AdlProofGap",
        proof[2].level,
        proof[2].position,
        end(proof[0]),
      );
      const overlap = [proof[0], proof[0], ...proof.slice(1)];
      await expectAdlRejected(
        f,
        id,
        B,
        list,
        overlap,
        del,
        "AdlProofGap",
        proof[0].level,
        proof[0].position,
        end(proof[0]),
      );
      const last = proof[proof.length - 1];
      const cut = proof.slice(0, -1);
      await expectAdlRejected(f, id, B, list, cut, del, "AdlProofIncomplete", last.position * 2 ** last.level);
      await expectAdlRejected(f, id, B, list, [], del, "AdlProofIncomplete", 0);
    });
  });

  it("a stale oracle: the strict price is older than its maximum age", async function () {
    const { f, id, B, list, proof } = await setup();
    const market = f.markets.get(ETH)!;
    const [, , , updatedAt] = await market.aggregator.latestRoundData();
    const maxAge = (await f.oracle.feedConfig(id)).strictMaxAge;
    await time.increase(maxAge + 1n);
    await expectAdlRejected(f, id, B, list, proof, f.oracle, "OracleStalePrice", id, updatedAt, maxAge);
  });
});
