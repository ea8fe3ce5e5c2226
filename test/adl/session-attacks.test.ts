/**
 * ADL sessions under attack (docs/adl.md, "Review findings"): each test replays an attack found in
 * review and asserts the fixed behaviour: the attack fails or is harmless, and the honest keeper still
 * settles within the session's time T.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionReceipt } from "ethers";
import type { ProofNode } from "../../lib/adl";
import { fromEvents } from "../../lib/adl";
import {
  RESTART_HELD,
  buildProofFrom,
  contractSender,
  driveSession,
  nextSessionStep,
  readSession,
  type SessionState,
} from "../../lib/adl-session";
import { leafOf } from "../../lib/rank-tree";
import { leverageUp } from "../../lib/position";
import { WAD, mulDivUp } from "../../lib/math";
import { ETH, ETH_PRICE, SCALE, USDC, type Fixture } from "../helpers/fixture";
import { keeperPlan, keeperView, lev, pos, units } from "../helpers/adl";
import {
  GAP,
  WIDE,
  checkInvariants,
  continueAll,
  fillAt,
  finishExactly,
  reserveKey,
  sessionBook,
  sessionProofTxs,
  staleLeaf,
  tie,
  traderBelow,
} from "../helpers/adl-session";

const SHORTS = false;
const LONGS = true;
const LEAVES = 1 << 14;
const MAX_ADDRESS = "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF";

/** The session book with a session open on the shorts against B = t0. */
async function opened() {
  const f = await loadFixture(sessionBook);
  const id = f.ethId;
  const B = f.traders[0].address;
  const v = await keeperPlan(f, id, B);
  await (await f.deleverager.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
  return { f, id, B, s: await readSession(f.deleverager, id, SHORTS) };
}

/** The honest proof from the cursor up to (not including) opened leaf `leaf`, plus `leaf` listing `members`. */
async function proofTo(f: Fixture, id: string, leaf: number, members: string[]): Promise<ProofNode[]> {
  const { txs } = await sessionProofTxs(f, id, SHORTS, WIDE);
  const proof = txs[0];
  const at = proof.findIndex((n) => n.open && n.position === leaf);
  expect(at).to.be.greaterThanOrEqual(0);
  return [...proof.slice(0, at), { level: 0, position: leaf, open: true, members }];
}

/**
 * Per-call bounds at which one member is a quarter of maxOpenedMembers: a one-member chunk is then
 * real progress and gets (or renews) the hold, as a full chunk does at the default bounds.
 */
const QUARTER_IS_ONE = 4;

/**
 * The session book with a session open and maxOpenedMembers at QUARTER_IS_ONE, after a griefer listed
 * only `b` of the tied leaf {a, b}: a chunk that skips the lower member `a` and, being a quarter of
 * maxOpenedMembers, leaves the leaf held by the griefer.
 */
async function grieferHolds() {
  const { f, id, B, s } = await opened();
  await (await f.deleverager.setBounds(64, 512, QUARTER_IS_ONE)).wait();
  const [a, b] = tie(f);
  const leaf = Number((await pos(f, id, a.address)).leaf);
  const griefer = f.traders[7];
  const proof = await proofTo(f, id, leaf, [b.address]);
  const tx = await f.deleverager.connect(griefer).continueAdlSession(id, SHORTS, proof);
  return { f, id, B, s0: s, a, b, leaf, griefer, tx, listed: listedIn(proof) };
}

/** How many members the opened leaves of `proof` list. */
const listedIn = (proof: ProofNode[]): bigint => BigInt(proof.reduce((n, x) => n + (x.open ? x.members.length : 0), 0));

/** Sum of the `paidMembers` of the AdlSessionContinued events of `receipts`. */
function paidMembers(f: Fixture, receipts: ContractTransactionReceipt[]): bigint {
  let paid = 0n;
  for (const r of receipts) {
    for (const l of r.logs) {
      const e = f.deleverager.interface.parseLog(l);
      if (e?.name === "AdlSessionContinued") paid += e.args.paidMembers as bigint;
    }
  }
  return paid;
}

/** Moves the chain past `timestamp` and posts a fresh price round (the strict window). */
async function after(f: Fixture, timestamp: bigint): Promise<void> {
  await time.increaseTo(timestamp + 1n);
  await f.setPrice(ETH, GAP);
}

describe("ADL sessions: review findings (attacks fail, the honest keeper finishes within T)", function () {
  describe("held leaf (finding 1)", function () {
    it("a partial chunk with a non-member, or with no member, is rejected", async function () {
      const { f, id } = await opened();
      const del = f.deleverager;
      const [a] = tie(f);
      const leaf = Number((await pos(f, id, a.address)).leaf);
      const griefer = f.traders[7];
      for (const members of [[MAX_ADDRESS], [], [a.address, MAX_ADDRESS]]) {
        await expect(del.connect(griefer).continueAdlSession(id, SHORTS, await proofTo(f, id, leaf, members)))
          .to.be.revertedWithCustomError(del, "AdlPartialChunk")
          .withArgs(leaf);
      }
      // A non-member in a chunk that completes its leaf is skipped, as in deleverage.
      const [, b] = tie(f);
      await (
        await del
          .connect(griefer)
          .continueAdlSession(id, SHORTS, await proofTo(f, id, leaf, [a.address, b.address, MAX_ADDRESS]))
      ).wait();
      const s = await readSession(del, id, SHORTS);
      expect([s.cursor > leaf, s.held]).to.deep.equal([true, false]);
    });

    it("a hold that skips a lower member is reserved to its holder for HOLD_WINDOW, then anyone restarts it and finishes within T", async function () {
      const { f, id, s0, a, b, leaf, griefer, tx, listed } = await grieferHolds();
      const del = f.deleverager;
      let s = await readSession(del, id, SHORTS);
      const window = await del.HOLD_WINDOW();
      const held = BigInt(await time.latest());
      expect([s.cursor, s.held, s.heldLast, s.heldTally, s.holder, s.holdUntil]).to.deep.equal([
        leaf,
        true,
        b.address,
        1n,
        griefer.address,
        held + window,
      ]);
      // Within the window only the holder may continue or restart the leaf.
      const restart: ProofNode[] = [{ level: 0, position: leaf, open: true, members: [a.address, b.address] }];
      await expect(del.connect(f.keeper).continueAdlSession(id, SHORTS, restart))
        .to.be.revertedWithCustomError(del, "AdlLeafReserved")
        .withArgs(leaf, griefer.address, s.holdUntil);
      await expect(del.finishAdlSession(id, SHORTS))
        .to.be.revertedWithCustomError(del, "AdlSessionIncomplete")
        .withArgs(leaf, true);
      // Once the hold lapses, the keeper lists the leaf from its first member: a restart.
      await after(f, s.holdUntil);
      const book = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
      const proof = buildProofFrom(book, id, SHORTS, s, s.cursor, RESTART_HELD);
      expect(proof[0]).to.deep.include({ level: 0, position: leaf, open: true, members: [a.address, b.address] });
      const restarted = (await (await del.connect(f.keeper).continueAdlSession(id, SHORTS, [proof[0]])).wait())!;
      // Paid once per member: the griefer for every live member it listed (b the last), the restart
      // of {a, b} only for one more (the tally beyond the one already paid for).
      expect(paidMembers(f, [(await tx.wait())!])).to.equal(listed);
      expect(paidMembers(f, [restarted])).to.equal(1n);
      await continueAll(f, id, SHORTS, { ...WIDE, maxOpenedMembers: QUARTER_IS_ONE });
      s = await readSession(del, id, SHORTS);
      expect([s.cursor, s.held, s.holder]).to.deep.equal([LEAVES, false, ethers.ZeroAddress]);
      await finishExactly(f, id, SHORTS);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s0.deadline);
      expect((await pos(f, id, s0.bankrupt)).size).to.equal(0n);
    });

    it("empty continue: a call with no proof node cannot take a lapsed hold over (AdlProofEmpty), so the keeper restarts at once", async function () {
      const { f, id, s0 } = await grieferHolds();
      const del = f.deleverager;
      const held = await readSession(del, id, SHORTS);
      await after(f, held.holdUntil);
      // Once the hold lapsed, a second account's empty call used to reserve the leaf for another window.
      await expect(del.connect(f.traders[8]).continueAdlSession(id, SHORTS, [])).to.be.revertedWithCustomError(
        del,
        "AdlProofEmpty",
      );
      const s = await readSession(del, id, SHORTS);
      expect([s.holder, s.holdUntil]).to.deep.equal([held.holder, held.holdUntil]);
      const book = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
      await (
        await del
          .connect(f.keeper)
          .continueAdlSession(id, SHORTS, buildProofFrom(book, id, SHORTS, s, s.cursor, RESTART_HELD))
      ).wait();
      await continueAll(f, id, SHORTS, { ...WIDE, maxOpenedMembers: QUARTER_IS_ONE });
      await finishExactly(f, id, SHORTS);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s0.deadline);
    });

    it("the holder's own hold: others cannot undo it, the holder may restart it without renewing it", async function () {
      const { f, id } = await opened();
      const del = f.deleverager;
      // One member is a quarter of maxOpenedMembers here: the keeper's one-member chunk is real progress.
      await (await del.setBounds(64, 512, QUARTER_IS_ONE)).wait();
      const [a, b] = tie(f);
      const leaf = Number((await pos(f, id, a.address)).leaf);
      await (
        await del.connect(f.keeper).continueAdlSession(id, SHORTS, await proofTo(f, id, leaf, [a.address]))
      ).wait();
      const s = await readSession(del, id, SHORTS);
      expect([s.held, s.heldLast, s.holder]).to.deep.equal([true, a.address, f.keeper.address]);
      // A griefer's restart with one member would throw the keeper's chunks away: refused.
      await expect(
        del
          .connect(f.traders[7])
          .continueAdlSession(id, SHORTS, [{ level: 0, position: leaf, open: true, members: [a.address] }]),
      )
        .to.be.revertedWithCustomError(del, "AdlLeafReserved")
        .withArgs(leaf, f.keeper.address, s.holdUntil);
      // The holder restarts its own hold (same tally after listing a again), then completes it.
      await (
        await del
          .connect(f.keeper)
          .continueAdlSession(id, SHORTS, [{ level: 0, position: leaf, open: true, members: [a.address] }])
      ).wait();
      // A restart by the holder never renews its window (it could otherwise hold the leaf forever).
      const restarted = await readSession(del, id, SHORTS);
      expect([restarted.heldTally, restarted.holder, restarted.holdUntil]).to.deep.equal([
        1n,
        f.keeper.address,
        s.holdUntil,
      ]);
      await (
        await del
          .connect(f.keeper)
          .continueAdlSession(id, SHORTS, [{ level: 0, position: leaf, open: true, members: [b.address] }])
      ).wait();
      expect((await readSession(del, id, SHORTS)).held).to.equal(false);
      await continueAll(f, id, SHORTS, { ...WIDE, maxOpenedMembers: QUARTER_IS_ONE });
      await finishExactly(f, id, SHORTS);
    });

    it("nextSessionStep: waits out another account's hold, then restarts; resumes its own", function () {
      const [me, other] = ["0x00000000000000000000000000000000000000aA", "0x00000000000000000000000000000000000000bB"];
      const s = {
        id: 1n,
        bankrupt: ethers.ZeroAddress,
        deadline: 100n,
        cursor: 5,
        held: true,
        holder: other,
        holdUntil: 50n,
      } as SessionState;
      expect(nextSessionStep(s, ethers.ZeroAddress, 50n, me)).to.deep.equal({
        kind: "hold",
        holder: other,
        until: 50n,
      });
      expect(nextSessionStep(s, ethers.ZeroAddress, 51n, me)).to.deep.equal({ kind: "continue", restart: true });
      expect(nextSessionStep(s, ethers.ZeroAddress, 40n, other.toLowerCase())).to.deep.equal({ kind: "continue" });
      expect(nextSessionStep({ ...s, held: false }, ethers.ZeroAddress, 40n, me)).to.deep.equal({ kind: "continue" });
    });

    it("the keeper driver waits out another account's hold, restarts the leaf and settles within T", async function () {
      const { f, id, B, s0 } = await grieferHolds();
      const del = f.deleverager.connect(f.keeper);
      const waits: bigint[] = [];
      const report = await driveSession(
        {
          deleverager: del,
          book: async () => fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber()),
          market: async () => {
            const v = await keeperView(f, id, B);
            return { price: v.price, funding: v.funding, delta: v.delta.delta };
          },
          now: async () => BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 1n,
          send: contractSender(del),
          waitUntil: async (until) => {
            waits.push(until);
            await after(f, until);
          },
        },
        id,
        B,
        { limits: { ...WIDE, maxOpenedMembers: QUARTER_IS_ONE } },
      );
      expect(report.settled).to.equal(true);
      expect(report.sessions).to.equal(0); // the session was already open: the driver took it over
      expect(waits.length).to.equal(1);
      expect(report.transactions.map((x) => x.method).slice(-1)).to.deep.equal(["finish"]);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s0.deadline);
      expect((await pos(f, id, B)).size).to.equal(0n);
      await checkInvariants(f);
    });
  });

  describe("the bankrupt position changes before finish (finding 2)", function () {
    it("B closes and reopens at a higher K: the finish trades nothing, nobody pays, the reserve is released", async function () {
      const { f, id, s } = await opened();
      const t = f.traders;
      const [B, del, ch] = [t[0], f.deleverager, f.clearinghouse];
      await continueAll(f, id, SHORTS);
      await fillAt(f, t[9], B, units(10), GAP);
      await fillAt(f, B, t[9], units(4), 3000n * WAD, { long: lev(10) });
      await f.setPrice(ETH, GAP);
      expect(await f.lens.isBankrupt(id, B.address)).to.equal(true);
      const heads = await Promise.all(s.entries.map((a) => pos(f, id, a)));
      const frees = await Promise.all(s.entries.map((a) => ch.freeCollateral(a)));
      const [reserve, treasury, avail] = [
        await ch.roundingReserve(id),
        await ch.treasuryBalance(),
        await f.insuranceFund.available(),
      ];
      const dust = await checkInvariants(f);
      const tx = await del.finishAdlSession(id, SHORTS);
      await expect(tx).to.emit(del, "AdlSessionFinished").withArgs(id, SHORTS, s.id, 0);
      await expect(tx).to.not.emit(del, "CounterpartyDeleveraged");
      expect(await Promise.all(s.entries.map((a) => pos(f, id, a)))).to.deep.equal(heads);
      expect(await Promise.all(s.entries.map((a) => ch.freeCollateral(a)))).to.deep.equal(frees);
      expect([await ch.roundingReserve(id), await ch.treasuryBalance()]).to.deep.equal([reserve, treasury]);
      expect(await f.insuranceFund.available()).to.equal(avail + s.reserveTokens);
      expect(await f.insuranceFund.reserveOf(reserveKey(id, SHORTS, s.id))).to.equal(0n);
      await checkInvariants(f, dust);
    });

    it("B flips to a bankrupt short: the shorts session's finish trades nothing instead of reverting", async function () {
      const { f, id, s } = await opened();
      const t = f.traders;
      const B = t[0];
      await fillAt(f, t[9], B, units(10), GAP);
      await fillAt(f, t[9], B, units(5), GAP, { short: lev(10) });
      await f.setPrice(ETH, 1600n * WAD);
      expect(await f.lens.isBankrupt(id, B.address)).to.equal(true);
      await continueAll(f, id, SHORTS);
      const shorts = await Promise.all(s.entries.map((a) => pos(f, id, a)));
      await expect(f.deleverager.finishAdlSession(id, SHORTS))
        .to.emit(f.deleverager, "AdlSessionFinished")
        .withArgs(id, SHORTS, s.id, 0);
      expect(await Promise.all(s.entries.map((a) => pos(f, id, a)))).to.deep.equal(shorts);
      expect((await pos(f, id, B.address)).isLong).to.equal(false);
      await checkInvariants(f);
    });
  });

  describe("a listed counterparty changes side before finish", function () {
    it("session flip: a listed short that buys its way long is skipped, and the finish settles the rest", async function () {
      const { f, id, B, s } = await opened();
      const t = f.traders;
      const del = f.deleverager;
      await continueAll(f, id, SHORTS);
      // The first listed short buys its whole size plus 1 from t9: it closes and opens long.
      const flipperAddress = s.entries[0];
      const flipper = t.find((x) => x.address === flipperAddress)!;
      const before = await pos(f, id, flipperAddress);
      expect(before.isLong).to.equal(false);
      await fillAt(f, flipper, t[9], before.size + units(1), GAP);
      expect((await pos(f, id, flipperAddress)).isLong).to.equal(true);
      const flipped = await pos(f, id, flipperAddress);
      const bBefore = await pos(f, id, B);
      const dust = await checkInvariants(f);

      const tx = await del.finishAdlSession(id, SHORTS);
      const receipt = (await tx.wait())!;
      const legs = receipt.logs
        .map((l) => {
          try {
            return del.interface.parseLog(l);
          } catch {
            return null;
          }
        })
        .filter((e) => e?.name === "CounterpartyDeleveraged");
      expect(legs.length, "the other listed shorts are deleveraged").to.be.greaterThan(0);
      expect(legs.map((e) => e!.args.counterparty)).to.not.include(flipperAddress);
      expect(await pos(f, id, flipperAddress), "the flipped long is untouched").to.deep.equal(flipped);
      expect((await pos(f, id, B)).size < bBefore.size, "B is reduced").to.equal(true);
      await checkInvariants(f, dust);
    });
  });

  describe("fund reserves (finding 3, finding 4 and the observations)", function () {
    it("two sessions of one account keep separate reserves: ending one leaves the other's set aside", async function () {
      const { f, id, s: s1 } = await opened();
      const t = f.traders;
      const [B, del, fund] = [t[0], f.deleverager, f.insuranceFund];
      await fillAt(f, t[9], B, units(10), GAP);
      await fillAt(f, t[9], B, units(5), GAP, { short: lev(10) });
      await f.setPrice(ETH, 1600n * WAD);
      await (await f.token.mint(await f.admin.getAddress(), 50n * USDC)).wait();
      await (await f.token.connect(f.admin).approve(await fund.getAddress(), 50n * USDC)).wait();
      await (await fund.connect(f.admin).donate(50n * USDC)).wait();
      const v2 = await keeperPlan(f, id, B.address);
      await (await del.connect(f.keeper).openAdlSession(id, B.address, v2.plan.counterparties)).wait();
      const s2 = await readSession(del, id, LONGS);
      expect([s1.reserveTokens > 0n, s2.reserveTokens > 0n]).to.deep.equal([true, true]);
      expect(await fund.reserveOf(reserveKey(id, SHORTS, s1.id))).to.equal(s1.reserveTokens);
      expect(await fund.reserveOf(reserveKey(id, LONGS, s2.id))).to.equal(s2.reserveTokens);
      await after(f, s1.deadline);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s2.deadline);
      await (await del.expireAdlSession(id, SHORTS)).wait();
      expect(await fund.reserveOf(reserveKey(id, SHORTS, s1.id))).to.equal(0n);
      expect(await fund.reserveOf(reserveKey(id, LONGS, s2.id))).to.equal(s2.reserveTokens);
      expect(await fund.totalReserved()).to.equal(s2.reserveTokens);
      await after(f, s2.deadline);
      await (await del.expireAdlSession(id, LONGS)).wait();
      expect(await fund.totalReserved()).to.equal(0n);
      await checkInvariants(f);
    });

    it("a fund that refuses the release does not stop the session from ending; anyone releases the key once stale", async function () {
      const { f, id, s } = await opened();
      const [del, fund] = [f.deleverager, f.insuranceFund];
      // The deleverager is one of the fund's fixed drawers, so the fund cannot refuse it; stand in
      // for a fund that does by swapping in code that reverts every call, then putting it back.
      const fundAddress = await fund.getAddress();
      const code = await ethers.provider.getCode(fundAddress);
      await ethers.provider.send("hardhat_setCode", [fundAddress, "0x60006000fd"]);
      await after(f, s.deadline);
      await expect(del.expireAdlSession(id, SHORTS))
        .to.emit(del, "AdlReserveReleaseFailed")
        .withArgs(id, SHORTS, s.id, fundAddress);
      await ethers.provider.send("hardhat_setCode", [fundAddress, code]);
      expect((await readSession(del, id, SHORTS)).id).to.equal(0n);
      const key = reserveKey(id, SHORTS, s.id);
      expect(await fund.reserveOf(key)).to.equal(s.reserveTokens);
      await time.increaseTo((await fund.reservedAt(key)) + (await fund.STALE_RESERVE_AGE()));
      await (await fund.connect(f.traders[9]).releaseStale(key)).wait();
      expect(await fund.totalReserved()).to.equal(0n);
    });

    it("a finish with no trade because B recovered takes B off the unsettled list", async function () {
      const { f, id, B, s } = await opened();
      await continueAll(f, id, SHORTS);
      expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([B]);
      const deficit = -(await f.lens.equity(id, B));
      await (await f.clearinghouse.connect(f.traders[0]).addMargin(id, deficit + WAD)).wait();
      await expect(f.deleverager.finishAdlSession(id, SHORTS))
        .to.emit(f.deleverager, "AdlSessionFinished")
        .withArgs(id, SHORTS, s.id, 0);
      expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([]);
    });
  });

  describe("holds only for progress (hold taking turns)", function () {
    /**
     * The session book with a third member j of the tie leaf (below a, at 1.98x from 2,000: the same
     * leaf, ranked below the tie, so unlisted), then a session open on the shorts.
     */
    async function tripleTieOpened() {
      const f = await loadFixture(sessionBook);
      const t = f.traders;
      const id = f.ethId;
      const [a, b] = tie(f);
      const leaf = Number((await pos(f, id, a.address)).leaf);
      const j = await traderBelow(f, a.address);
      await fillAt(f, t[8], j, units(1), ETH_PRICE, { long: lev(2), short: lev(1.98) });
      await f.setPrice(ETH, GAP);
      expect(Number((await pos(f, id, j.address)).leaf)).to.equal(leaf);
      expect((await f.deleverager.nodeAt(id, SHORTS, 0, leaf)).count).to.equal(3n);
      const B = t[0].address;
      const v = await keeperPlan(f, id, B);
      expect(v.plan.counterparties).to.not.include(j.address);
      await (await f.deleverager.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
      return { f, id, B, leaf, j, a, b, s0: await readSession(f.deleverager, id, SHORTS) };
    }

    it("hold taking turns: one-member chunks by two accounts reserve the leaf against nobody, so the keeper completes it at once", async function () {
      // Before, every chunk that left a leaf held bought its sender a HOLD_WINDOW: two accounts
      // listing one member each in turn kept the honest keeper out for the whole T, at 80,725 gas per
      // window for a one-member resume on this book (83,763 for a one-member restart). Now only a chunk of at least a
      // quarter of maxOpenedMembers live members holds the leaf: at the default 2,000, 500 members,
      // about 210,000 + 500 x 13,190 = 6.8M gas per one-minute window (sessions figures of docs/gas.md),
      // so an hour of delay costs an attacker about 408M gas, and it needs 500 live members in the leaf.
      const { f, id, leaf, j, a, b, s0 } = await tripleTieOpened();
      const del = f.deleverager;
      const [g1, g2] = [f.traders[7], f.traders[8]];
      const first = await del.connect(g1).continueAdlSession(id, SHORTS, await proofTo(f, id, leaf, [j.address]));
      let s = await readSession(del, id, SHORTS);
      expect([s.cursor, s.held, s.heldLast, s.heldTally, s.holder, s.holdUntil]).to.deep.equal([
        leaf,
        true,
        j.address,
        1n,
        ethers.ZeroAddress,
        0n,
      ]);
      // The second account goes on in the same minute: nothing to wait out, and it reserves nothing.
      const second = await del
        .connect(g2)
        .continueAdlSession(id, SHORTS, [{ level: 0, position: leaf, open: true, members: [a.address] }]);
      s = await readSession(del, id, SHORTS);
      expect([s.held, s.heldLast, s.heldTally, s.holder, s.holdUntil]).to.deep.equal([
        true,
        a.address,
        2n,
        ethers.ZeroAddress,
        0n,
      ]);
      // The honest keeper, at once, lists the leaf from its first member (a restart) and completes it.
      const book = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
      const proof = buildProofFrom(book, id, SHORTS, s, s.cursor, RESTART_HELD);
      expect(proof[0]).to.deep.include({
        level: 0,
        position: leaf,
        open: true,
        members: [j.address, a.address, b.address],
      });
      await (await del.connect(f.keeper).continueAdlSession(id, SHORTS, proof)).wait();
      s = await readSession(del, id, SHORTS);
      expect([s.cursor, s.held]).to.deep.equal([LEAVES, false]);
      await finishExactly(f, id, SHORTS);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s0.deadline);
      const gas = [(await first.wait())!.gasUsed, (await second.wait())!.gasUsed];
      console.log(`      one-member chunks (proof to the leaf, then one member): ${gas.join(", ")} gas, no hold`);
    });

    it("one-member takeover: a lapsed hold taken over by another account's one-member restart gets no new window", async function () {
      const { f, id, leaf, j, a, s0 } = await tripleTieOpened();
      const del = f.deleverager;
      // maxOpenedMembers 8: a quarter is two members.
      await (await del.setBounds(64, 512, 8)).wait();
      const [g1, g2] = [f.traders[7], f.traders[8]];
      await (
        await del.connect(g1).continueAdlSession(id, SHORTS, await proofTo(f, id, leaf, [j.address, a.address]))
      ).wait();
      const held = await readSession(del, id, SHORTS);
      expect([held.heldTally, held.holder, held.holdUntil]).to.deep.equal([
        2n,
        g1.address,
        BigInt(await time.latest()) + (await del.HOLD_WINDOW()),
      ]);
      await after(f, held.holdUntil);
      // Another account restarts the lapsed hold with one member: the leaf's state moves, the hold does not.
      const restart = await del
        .connect(g2)
        .continueAdlSession(id, SHORTS, [{ level: 0, position: leaf, open: true, members: [j.address] }]);
      let s = await readSession(del, id, SHORTS);
      expect([s.heldLast, s.heldTally, s.holder, s.holdUntil]).to.deep.equal([
        j.address,
        1n,
        g1.address,
        held.holdUntil,
      ]);
      // Listed again, j earns nothing: the restart pays only beyond the tally already paid for.
      await expect(restart).to.emit(del, "AdlSessionContinued").withArgs(id, SHORTS, held.id, leaf, true, 1, 1, 0);
      // So the keeper goes on at once: it restarts the leaf and settles within T.
      const book = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
      await (
        await del
          .connect(f.keeper)
          .continueAdlSession(id, SHORTS, buildProofFrom(book, id, SHORTS, s, s.cursor, RESTART_HELD))
      ).wait();
      s = await readSession(del, id, SHORTS);
      expect([s.cursor, s.held]).to.deep.equal([LEAVES, false]);
      await finishExactly(f, id, SHORTS);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s0.deadline);
    });
  });

  describe("session bond (false session)", function () {
    it("false session: a list that skips the head costs its opener the bond, which the challenger earns", async function () {
      const f = await loadFixture(sessionBook);
      const t = f.traders;
      const id = f.ethId;
      const [del, ch] = [f.deleverager, f.clearinghouse];
      const B = t[0].address;
      const [a] = tie(f);
      const [attacker, watcher] = [t[7], t[8]];
      const [bond] = await del.sessionTerms(id);
      const tokens = bond / SCALE;
      expect(tokens).to.equal(100n * USDC);
      const wallet = await f.token.balanceOf(attacker.address);
      // The list skips the head t3: the walk checks order and eligibility, not completeness.
      const open = await del.connect(attacker).openAdlSession(id, B, [t[2].address, a.address]);
      const s = await readSession(del, id, SHORTS);
      await expect(open).to.emit(del, "AdlSessionBondPosted").withArgs(id, SHORTS, s.id, attacker.address, tokens);
      expect([s.opener, s.bondTokens]).to.deep.equal([attacker.address, tokens]);
      expect(await f.token.balanceOf(attacker.address)).to.equal(wallet - tokens);
      expect(await f.token.balanceOf(await del.getAddress())).to.equal(tokens);
      // While it is open, single-transaction ADL on the side is refused.
      const v = await keeperPlan(f, id, B);
      await expect(del.connect(f.keeper).deleverage(id, B, v.plan.counterparties, v.plan.proof))
        .to.be.revertedWithCustomError(del, "AdlSessionActive")
        .withArgs(id, SHORTS);
      // A watcher names the skipped head and earns the bond, as free collateral in the clearinghouse.
      const free = await ch.freeCollateral(watcher.address);
      const dust = await checkInvariants(f);
      const challenge = await del.connect(watcher).challengeAdlSession(id, SHORTS, t[3].address);
      await expect(challenge)
        .to.emit(del, "AdlSessionChallenged")
        .withArgs(id, SHORTS, s.id, t[3].address, watcher.address);
      await expect(challenge).to.emit(del, "AdlSessionBondPaid").withArgs(id, SHORTS, s.id, watcher.address, tokens);
      expect(await ch.freeCollateral(watcher.address)).to.equal(free + tokens * SCALE);
      expect(await f.token.balanceOf(await del.getAddress())).to.equal(0n);
      expect(await f.token.balanceOf(attacker.address)).to.equal(wallet - tokens);
      await checkInvariants(f, dust);
      // What a delay costs: each false session is challenged in the next block, so it holds the side
      // for about one 12-second block and an hour of delay takes 300 of them: 300 bonds (30,000 quote
      // units at the default 100 each) plus 300 opens, all paid to the watchers.
      const [openGas, challengeGas] = [(await open.wait())!.gasUsed, (await challenge.wait())!.gasUsed];
      console.log(
        `      false session: open ${openGas} gas + ${tokens / USDC} quote units of bond, challenge ${challengeGas} gas; ` +
          `an hour of one-block delays: 300 bonds = ${(300n * tokens) / USDC} quote units + ${300n * openGas} gas`,
      );
      // The honest keeper then settles B, and gets its own bond back at the finish.
      await (await del.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
      await continueAll(f, id, SHORTS);
      const { receipt } = await finishExactly(f, id, SHORTS);
      const paid = receipt.logs.map((l) => del.interface.parseLog(l)).find((e) => e?.name === "AdlSessionBondPaid");
      expect([paid!.args.to, paid!.args.tokens]).to.deep.equal([f.keeper.address, tokens]);
      expect((await pos(f, id, B)).size).to.equal(0n);
    });
  });

  describe("paid session work (whoever finishes takes all the pay)", function () {
    /** The session book with 1,000 quote units in the ETH keeper reserve and a session open. */
    async function fundedOpened() {
      const f = await loadFixture(sessionBook);
      const admin = await f.admin.getAddress();
      await (await f.token.mint(admin, 1000n * USDC)).wait();
      await (await f.token.connect(f.admin).approve(await f.clearinghouse.getAddress(), 1000n * USDC)).wait();
      await (await f.clearinghouse.connect(f.admin).fundKeeperReserve(f.ethId, 1000n * USDC)).wait();
      const v = await keeperPlan(f, f.ethId, f.traders[0].address);
      await (
        await f.deleverager.connect(f.keeper).openAdlSession(f.ethId, f.traders[0].address, v.plan.counterparties)
      ).wait();
      const [, memberPay] = await f.deleverager.sessionTerms(f.ethId);
      return { f, id: f.ethId, B: f.traders[0].address, memberPay };
    }

    it("whoever finishes takes all the pay: the prover earns memberPay per member verified, the finisher keeperPay", async function () {
      const { f, id, B, memberPay } = await fundedOpened();
      const [del, ch] = [f.deleverager, f.clearinghouse];
      const [prover, finisher] = [f.traders[7], f.traders[8]];
      expect(memberPay).to.equal(5n * 10n ** 16n);
      const { txs } = await sessionProofTxs(f, id, SHORTS, WIDE);
      const members = listedIn(txs.flat());
      expect(members).to.equal(4n);
      const [proverFree, finisherFree, reserve] = [
        await ch.freeCollateral(prover.address),
        await ch.freeCollateral(finisher.address),
        await ch.keeperReserve(id),
      ];
      const receipts: ContractTransactionReceipt[] = [];
      for (const tx of txs)
        receipts.push((await (await del.connect(prover).continueAdlSession(id, SHORTS, tx)).wait())!);
      expect(paidMembers(f, receipts)).to.equal(members);
      expect(await ch.freeCollateral(prover.address)).to.equal(proverFree + members * memberPay);
      expect(await ch.keeperReserve(id)).to.equal(reserve - members * memberPay);
      const keeperPay = (await ch.marketParams(id)).keeperPay;
      await expect(del.connect(finisher).finishAdlSession(id, SHORTS))
        .to.emit(ch, "KeeperRewardPaid")
        .withArgs(id, finisher.address, keeperPay);
      expect((await pos(f, id, B)).size).to.equal(0n);
      expect(await ch.freeCollateral(finisher.address)).to.equal(finisherFree + keeperPay);
      expect(await ch.freeCollateral(prover.address)).to.equal(proverFree + members * memberPay);
      await checkInvariants(f);
    });

    it("restarts and resumes of a held leaf pay each member once", async function () {
      const { f, id, memberPay } = await fundedOpened();
      const [del, ch] = [f.deleverager, f.clearinghouse];
      await (await del.setBounds(64, 512, QUARTER_IS_ONE)).wait();
      const [a, b] = tie(f);
      const leaf = Number((await pos(f, id, a.address)).leaf);
      const { txs } = await sessionProofTxs(f, id, SHORTS, WIDE);
      const members = listedIn(txs.flat());
      const keeper = f.keeper;
      const free = await ch.freeCollateral(keeper.address);
      const chunk = (m: string[]): ProofNode[] => [{ level: 0, position: leaf, open: true, members: m }];
      const proof = await proofTo(f, id, leaf, [a.address]);
      const receipts = [(await (await del.connect(keeper).continueAdlSession(id, SHORTS, proof)).wait())!];
      // The holder lists a again (a restart): verified again, paid nothing, and no pay event.
      const again = del.connect(keeper).continueAdlSession(id, SHORTS, chunk([a.address]));
      const held = await readSession(del, id, SHORTS);
      await expect(again).to.emit(del, "AdlSessionContinued").withArgs(id, SHORTS, held.id, leaf, true, 1, 1, 0);
      await expect(again).to.not.emit(ch, "KeeperRewardPaid");
      receipts.push((await (await again).wait())!);
      // Resuming with b pays for b only.
      const resume = del.connect(keeper).continueAdlSession(id, SHORTS, chunk([b.address]));
      await expect(resume)
        .to.emit(del, "AdlSessionContinued")
        .withArgs(id, SHORTS, held.id, leaf + 1, false, 0, 1, 1);
      receipts.push((await (await resume).wait())!);
      for (;;) {
        const { session, txs: rest } = await sessionProofTxs(f, id, SHORTS, {
          ...WIDE,
          maxOpenedMembers: QUARTER_IS_ONE,
        });
        if (session.cursor >= LEAVES && !session.held) break;
        receipts.push((await (await del.connect(keeper).continueAdlSession(id, SHORTS, rest[0])).wait())!);
      }
      // Over the whole session: each live member of the proof paid exactly once.
      expect(paidMembers(f, receipts)).to.equal(members);
      expect(await ch.freeCollateral(keeper.address)).to.equal(free + members * memberPay);
    });
  });

  describe("S-4: B's own reserve during its session", function () {
    /**
     * A session open on the shorts against B, and a donation that leaves what the fund can pay just
     * short of B's deficit while the fund plus B's reserve cover it.
     */
    async function reserveCoversB() {
      const { f, id, B, s } = await opened();
      const ch = f.clearinghouse;
      const deficit = -(await f.lens.equity(id, B));
      const need = deficit / SCALE + 1n - (await f.insuranceFund.available()) - s.reserveTokens + 10n;
      await (await f.token.mint(await f.admin.getAddress(), need)).wait();
      await (await f.token.connect(f.admin).approve(await f.insuranceFund.getAddress(), need)).wait();
      await (await f.insuranceFund.connect(f.admin).donate(need)).wait();
      const avail = (await f.insuranceFund.available()) * SCALE + (await ch.pendingFundFees());
      expect(avail).to.be.lessThan(deficit);
      expect(avail + s.reserveTokens * SCALE).to.be.greaterThanOrEqual(deficit);
      return { f, id, B, s, size: (await pos(f, id, B)).size };
    }

    /** Liquidates `size` of B from t8: it goes through, B's reserve paying first. Returns the tokens it used. */
    async function liquidateB(f: Fixture, id: string, B: string, s: SessionState, size: bigint): Promise<bigint> {
      const [ch, fund] = [f.clearinghouse, f.insuranceFund];
      const key = reserveKey(id, SHORTS, s.id);
      const before = (await pos(f, id, B)).size;
      const dust = await checkInvariants(f);
      const tx = await ch.connect(f.traders[8]).liquidate(id, B, size, WAD);
      const receipt = (await tx.wait())!;
      // Nobody else's liquidation would count it: the view names the bankrupt position of a session only.
      expect(await f.deleverager.sessionReserve(id, f.traders[3].address)).to.deep.equal([
        ethers.ZeroAddress,
        ethers.ZeroHash,
      ]);
      const covered = receipt.logs.map((l) => ch.interface.parseLog(l)).find((e) => e?.name === "BadDebtCovered")!;
      const used =
        mulDivUp(covered.args.fundPaid, 1n, SCALE) < s.reserveTokens
          ? mulDivUp(covered.args.fundPaid, 1n, SCALE)
          : s.reserveTokens;
      expect(used).to.be.greaterThan(0n);
      await expect(tx)
        .to.emit(fund, "ReserveUsed")
        .withArgs(key, await ch.getAddress(), used, s.reserveTokens - used);
      expect(await fund.reserveOf(key)).to.equal(s.reserveTokens - used);
      expect((await pos(f, id, B)).size).to.equal(before - size);
      await checkInvariants(f, dust);
      return used;
    }

    it("S-4: liquidating B during its own session counts its reserve (it reverted AdlOnly), and the session then finishes with no trade", async function () {
      const { f, id, B, s, size } = await reserveCoversB();
      const del = f.deleverager;
      await liquidateB(f, id, B, s, size);
      // The proof completes and the finish trades nothing (B is closed): the reserve's rest goes back
      // to the fund, the bond to the opener, and B leaves the unsettled list.
      await continueAll(f, id, SHORTS);
      const finish = del.finishAdlSession(id, SHORTS);
      await expect(finish).to.emit(del, "AdlSessionFinished").withArgs(id, SHORTS, s.id, 0);
      await expect(finish)
        .to.emit(del, "AdlSessionBondPaid")
        .withArgs(id, SHORTS, s.id, f.keeper.address, s.bondTokens);
      expect(await f.insuranceFund.reserveOf(reserveKey(id, SHORTS, s.id))).to.equal(0n);
      expect(await f.insuranceFund.totalReserved()).to.equal(0n);
      expect((await del.unsettled(id))[0]).to.deep.equal([]);
      expect(BigInt(await time.latest())).to.be.lessThanOrEqual(s.deadline);
      await checkInvariants(f);
    });

    it("S-4: after a partial liquidation of B the session expires cleanly, and the rest of B is liquidated", async function () {
      const { f, id, B, s, size } = await reserveCoversB();
      const [del, ch, fund] = [f.deleverager, f.clearinghouse, f.insuranceFund];
      const key = reserveKey(id, SHORTS, s.id);
      await liquidateB(f, id, B, s, size / 2n);
      // B is still the session's bankrupt position: its liquidation would still count what is left.
      expect(await del.sessionReserve(id, B)).to.deep.equal([await fund.getAddress(), key]);
      await after(f, s.deadline);
      const expire = del.expireAdlSession(id, SHORTS);
      await expect(expire).to.emit(del, "AdlSessionExpired").withArgs(id, SHORTS, s.id);
      await expect(expire)
        .to.emit(del, "AdlSessionBondPaid")
        .withArgs(id, SHORTS, s.id, f.keeper.address, s.bondTokens);
      expect(await fund.reserveOf(key)).to.equal(0n);
      expect(await fund.totalReserved()).to.equal(0n);
      expect((await readSession(del, id, SHORTS)).id).to.equal(0n);
      expect(await del.sessionReserve(id, B)).to.deep.equal([ethers.ZeroAddress, ethers.ZeroHash]);
      await checkInvariants(f);
      // With the reserve's rest back, the fund alone covers what is left of B.
      await (await ch.connect(f.traders[8]).liquidate(id, B, size - size / 2n, WAD)).wait();
      expect((await pos(f, id, B)).size).to.equal(0n);
      await checkInvariants(f);
    });
  });

  describe("split leaf refresh (finding 5)", function () {
    it("a first chunk that skips a member is reserved to its holder, then restarted by anyone and completed", async function () {
      const { f, t, id, a, b, leaf } = await staleLeaf();
      const del = f.deleverager;
      const stale = await del.nodeAt(id, SHORTS, 0, leaf);
      expect(stale.count).to.equal(2n);
      const snap = await takeSnapshot();
      const g0 = (await (await f.clearinghouse.connect(t[6]).addMargin(id, WAD)).wait())!.gasUsed;
      await snap.restore();
      // One member is a quarter of maxOpenedMembers here: a one-member chunk is real progress.
      await (await del.setBounds(64, 512, QUARTER_IS_ONE)).wait();
      // Non-members and empty partial chunks never start or extend a hold.
      await expect(del.connect(t[7]).refreshLeafChunk(id, SHORTS, leaf, [MAX_ADDRESS]))
        .to.be.revertedWithCustomError(del, "AdlNotMember")
        .withArgs(MAX_ADDRESS);
      await expect(del.connect(t[7]).refreshLeafChunk(id, SHORTS, leaf, []))
        .to.be.revertedWithCustomError(del, "AdlPartialChunk")
        .withArgs(leaf);
      await (await del.connect(t[7]).refreshLeafChunk(id, SHORTS, leaf, [b.address])).wait();
      const until = BigInt(await time.latest()) + (await del.HOLD_WINDOW());
      await expect(del.refreshLeafChunk(id, SHORTS, leaf, [a.address, b.address]))
        .to.be.revertedWithCustomError(del, "AdlLeafReserved")
        .withArgs(leaf, t[7].address, until);
      await time.increaseTo(until + 1n);
      await expect(del.refreshLeafChunk(id, SHORTS, leaf, [a.address, b.address]))
        .to.emit(del, "NodeRefreshed")
        .withArgs(id, SHORTS, 0, leaf);
      const fresh = await del.nodeAt(id, SHORTS, 0, leaf);
      expect(fresh.maxA).to.be.lessThan(stale.maxA);
      expect(fresh.count).to.equal(2n);
      // Nothing pending any more: an unrelated reindex on the side costs what it did before.
      const g2 = (await (await f.clearinghouse.connect(t[6]).addMargin(id, WAD)).wait())!.gasUsed;
      expect(g2).to.equal(g0);
    });

    it("a chunk gets or renews the hold only with at least a quarter of maxOpenedMembers; a smaller one reserves nothing", async function () {
      const f = await loadFixture(sessionBook);
      const t = f.traders;
      const id = f.ethId;
      const del = f.deleverager;
      const [a] = tie(f);
      const leaf = Number((await pos(f, id, a.address)).leaf);
      // A third member of the tie leaf: t7 short at a leverage that lands there.
      const kRef = Number(await del.kRef(id));
      let joinLev = 0n;
      for (let l = 150; l <= 400; l++) {
        const leverage = (BigInt(l) * WAD) / 100n;
        if (leafOf(leverageUp(units(1), mulDivUp(units(1), ETH_PRICE, leverage)), ETH_PRICE, kRef) === leaf) {
          joinLev = leverage;
        }
      }
      expect(joinLev).to.be.greaterThan(0n);
      await fillAt(f, t[8], t[7], units(1), ETH_PRICE, { long: lev(2), short: joinLev });
      await f.setPrice(ETH, GAP);
      expect((await del.nodeAt(id, SHORTS, 0, leaf)).count).to.equal(3n);
      const members = [t[1], t[5], t[7]].map((w) => w.address).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
      const window = await del.HOLD_WINDOW();
      const snap = await takeSnapshot();
      // At 8 a one-member chunk is an eighth of maxOpenedMembers: no hold, t5 completes at once. At 4
      // it is a quarter: t6 holds, its next one-member chunk renews, and t5 waits for the renewal.
      for (const [bound, holds] of [
        [8n, false],
        [4n, true],
      ] as const) {
        await (await del.setBounds(64, 512, bound)).wait();
        await (await del.connect(t[6]).refreshLeafChunk(id, SHORTS, leaf, [members[0]])).wait();
        await time.increase(30);
        await (await del.connect(t[6]).refreshLeafChunk(id, SHORTS, leaf, [members[1]])).wait();
        const second = BigInt(await time.latest()) + window;
        if (holds) {
          await expect(del.connect(t[5]).refreshLeafChunk(id, SHORTS, leaf, members))
            .to.be.revertedWithCustomError(del, "AdlLeafReserved")
            .withArgs(leaf, t[6].address, second);
          // Once it lapses, anyone restarts from the first member and completes the refresh.
          await time.increaseTo(second + 1n);
        }
        await expect(del.connect(t[5]).refreshLeafChunk(id, SHORTS, leaf, members))
          .to.emit(del, "NodeRefreshed")
          .withArgs(id, SHORTS, 0, leaf);
        await snap.restore();
      }
    });
  });
});
