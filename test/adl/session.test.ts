/**
 * Multi-transaction ADL sessions (docs/mechanism.md section 4) on the session book (test/helpers/adl-session.ts):
 * open, continue over several transactions (a leaf in chunks too), finish at the pinned subsidy checked
 * to the wei, the guard, one session per side, T and expiry, recovery, challenge, and the keeper
 * driver of lib/adl-session.ts. The section 5 invariants are checked after every step.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../../lib/math";
import { fromEvents } from "../../lib/adl";
import { bandReference } from "../../lib/local";
import {
  buildProofFrom,
  contractSender,
  driveSession,
  nextSessionStep,
  readSession,
  splitProof,
  type SessionState,
} from "../../lib/adl-session";
import { ETH, ETH_PRICE, SCALE } from "../helpers/fixture";
import { keeperPlan, keeperView, lev, pos, units } from "../helpers/adl";
import {
  GAP,
  WIDE,
  checkInvariants,
  continueAll,
  fillAt,
  fillTx,
  finishExactly,
  reserveKey,
  sessionBook,
  sessionProofTxs,
  tie,
  traderBelow,
} from "../helpers/adl-session";

const SHORTS = false;
const LEAVES = 1 << 14;

describe("ADL: sessions", function () {
  async function opened() {
    const f = await loadFixture(sessionBook);
    const t = f.traders;
    const id = f.ethId;
    const B = t[0].address;
    const v = await keeperPlan(f, id, B);
    const tx = await f.deleverager.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties);
    const receipt = (await tx.wait())!;
    const s = await readSession(f.deleverager, id, SHORTS);
    return { f, t, id, B, v, tx, receipt, s };
  }

  it("opens: pins (P, F, sigma, delta), stores the list and its last key, reserves sigma * q_B of the fund", async function () {
    const f0 = await loadFixture(sessionBook);
    const B = f0.traders[0].address;
    const before = await keeperView(f0, f0.ethId, B);
    const tokensBefore = await f0.insuranceFund.available();
    const pendingBefore = await f0.clearinghouse.pendingFundFees();
    const { f, t, id, v, tx, s, receipt } = await opened();
    const [a, b] = tie(f);
    // B's 10 units: t3 4, t2 3, then the tie by address (t5 has 1 unit, t1 5).
    expect(v.plan.counterparties).to.deep.equal([t[3].address, t[2].address, a.address, b.address]);
    expect([s.price, s.funding, s.sigma, s.delta]).to.deep.equal([
      before.price,
      before.funding,
      before.delta.sigma,
      before.delta.delta,
    ]);
    expect(s.entries).to.deep.equal(v.plan.counterparties);
    expect([s.lastAccount, s.lastScore]).to.deep.equal([b.address, v.plan.scores[3]]);
    expect([s.cursor, s.held, s.bankrupt]).to.deep.equal([0, false, B]);
    const block = await ethers.provider.getBlock(receipt.blockNumber);
    expect(s.openedAt).to.equal(BigInt(block!.timestamp));
    expect(s.deadline).to.equal(s.openedAt + (await f.deleverager.sessionTtl(id)));
    await expect(tx)
      .to.emit(f.deleverager, "AdlSessionOpened")
      .withArgs(id, SHORTS, s.id, B, s.price, s.funding, s.sigma, s.delta, s.lastScore, s.lastAccount);
    // The reserve: ceil(floor(sigma * q_B / W) / 1e12) tokens, after the pending fees were swept in.
    const needed = (s.sigma * (await pos(f, id, B)).size) / WAD;
    const expected = (needed + SCALE - 1n) / SCALE;
    expect(s.reserveTokens).to.equal(expected);
    expect(await f.insuranceFund.reserveOf(reserveKey(id, SHORTS, s.id))).to.equal(expected);
    const swept = pendingBefore / SCALE;
    expect(await f.insuranceFund.available()).to.equal(tokensBefore + swept - expected);
    // Listed accounts are marked persistently: the guard knows them in later transactions.
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([B]);
    await checkInvariants(f);
  });

  it("settles over several transactions a book no single call can (per-call bounds), to the wei", async function () {
    const f = await loadFixture(sessionBook);
    const id = f.ethId;
    const B = f.traders[0].address;
    // Per-call work bounds stand in for the gas cap: at most 2 opened members per transaction.
    await (await f.deleverager.setBounds(64, 512, 2)).wait();
    const v = await keeperPlan(f, id, B);
    const opened = v.plan.proof.filter((n) => n.open).reduce((s, n) => s + n.members.length, 0);
    expect(opened).to.be.greaterThan(2);
    await expect(f.deleverager.connect(f.keeper).deleverage(id, B, v.plan.counterparties, v.plan.proof))
      .to.be.revertedWithCustomError(f.deleverager, "AdlOpenedMembersTooMany")
      .withArgs(3, 2);
    let dust = await checkInvariants(f);
    await (await f.deleverager.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
    dust = await checkInvariants(f, dust);
    const limits = { ...WIDE, maxOpenedMembers: 2 };
    const { txs } = await sessionProofTxs(f, id, SHORTS, limits);
    expect(txs.length).to.be.greaterThanOrEqual(2);
    // Finishing before the cursor reaches the end is rejected.
    await expect(f.deleverager.finishAdlSession(id, SHORTS))
      .to.be.revertedWithCustomError(f.deleverager, "AdlSessionIncomplete")
      .withArgs(0, false);
    const s0 = await readSession(f.deleverager, id, SHORTS);
    const first = await f.deleverager.connect(f.keeper).continueAdlSession(id, SHORTS, txs[0]);
    const s1 = await readSession(f.deleverager, id, SHORTS);
    expect(s1.cursor).to.be.greaterThan(0);
    await expect(first)
      .to.emit(f.deleverager, "AdlSessionContinued")
      .withArgs(id, SHORTS, s0.id, s1.cursor, false, 0, 2, 2);
    dust = await checkInvariants(f, dust);
    const gas = await continueAll(f, id, SHORTS, limits);
    expect(gas.length).to.equal(txs.length - 1);
    expect((await readSession(f.deleverager, id, SHORTS)).cursor).to.equal(LEAVES);
    const { d } = await finishExactly(f, id, SHORTS);
    expect(d).to.equal(units(10));
    expect((await pos(f, id, B)).size).to.equal(0n);
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([]);
    console.log(`      gas, continue transactions: ${[(await first.wait())!.gasUsed, ...gas].join(", ")}`);
  });

  it("the guard: listed margin moves, an unlisted position rising above the last entry and a new one ranking above it revert AdlPending", async function () {
    const { f, t, id } = await opened();
    const del = f.deleverager;
    const dust = await checkInvariants(f);
    // A listed trader can neither remove nor add margin (either moves a, hence its score).
    await expect(f.clearinghouse.connect(t[3]).removeMargin(id, 10n * WAD))
      .to.be.revertedWithCustomError(del, "AdlPending")
      .withArgs(id, t[3].address);
    await expect(f.clearinghouse.connect(t[2]).addMargin(id, 10n * WAD))
      .to.be.revertedWithCustomError(del, "AdlPending")
      .withArgs(id, t[2].address);
    // t6 (1x, unlisted, below the last entry): leverage raised to about 3.3x would rank above it.
    await expect(f.clearinghouse.connect(t[6]).removeMargin(id, 1400n * WAD))
      .to.be.revertedWithCustomError(del, "AdlPending")
      .withArgs(id, t[6].address);
    // A new short from 2,000 at 3x: eligible and above the last entry at the pinned values.
    await expect(fillTx(f, t[8], t[7], units(1), ETH_PRICE, { long: lev(2), short: lev(3) }))
      .to.be.revertedWithCustomError(del, "AdlPending")
      .withArgs(id, t[7].address);
    await f.setPrice(ETH, GAP);
    await checkInvariants(f, dust);
  });

  it("the guard lets reductions, closes and unrelated changes through, and the finish skips what closed", async function () {
    const { f, t, id, s } = await opened();
    let dust = await checkInvariants(f);
    // t6 de-risks a little (still below the last entry): allowed.
    await (await f.clearinghouse.connect(t[6]).removeMargin(id, 100n * WAD)).wait();
    // A new 1x short from 2,000 ranks below the last entry: allowed.
    await fillAt(f, t[8], t[7], units(1), ETH_PRICE, { long: lev(2), short: lev(1) });
    // Listed t3 reduces (buys 1 back), listed t2 closes: reductions are never blocked.
    await fillAt(f, t[3], t[9], units(1), GAP);
    await fillAt(f, t[2], t[9], units(3), GAP);
    // The long side is not guarded by this session.
    await (await f.clearinghouse.connect(t[8]).addMargin(id, 10n * WAD)).wait();
    dust = await checkInvariants(f, dust);
    expect((await pos(f, id, t[2].address)).size).to.equal(0n);
    await continueAll(f, id, SHORTS);
    const { d, receipt } = await finishExactly(f, id, SHORTS);
    // t3's 3, t2 skipped, then both of the tie (t5: 1, t1: 5): 9 of B's 10 units.
    const [a, b] = tie(f);
    expect(d).to.equal(units(9));
    const names = receipt.logs
      .map((l) => f.deleverager.interface.parseLog(l))
      .filter((e) => e?.name === "CounterpartyDeleveraged")
      .map((e) => e!.args.counterparty);
    expect(names).to.deep.equal([t[3].address, a.address, b.address]);
    expect(s.entries).to.include(t[2].address);
    await checkInvariants(f, dust);
  });

  it("one session per side; single-transaction deleverage on that side is rejected while it is open", async function () {
    const { f, t, id, B, v } = await opened();
    const del = f.deleverager;
    await expect(del.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties))
      .to.be.revertedWithCustomError(del, "AdlSessionActive")
      .withArgs(id, SHORTS);
    await expect(del.connect(f.keeper).deleverage(id, B, v.plan.counterparties, v.plan.proof))
      .to.be.revertedWithCustomError(del, "AdlSessionActive")
      .withArgs(id, SHORTS);
    // No session on the long side: calls about it say so.
    await expect(del.finishAdlSession(id, true)).to.be.revertedWithCustomError(del, "AdlNoSession").withArgs(id, true);
    // The session library refuses direct calls (library call protection): called at its own
    // address it would act on its own, empty storage.
    const sessionLib = f.deleveragerLibraries["contracts/adl/AdlSessionLib.sol:AdlSessionLib"];
    expect(await ethers.provider.getCode(sessionLib)).to.not.equal("0x");
    const finish = ethers.id("finishSession(AdlStorage.Layout storage,Clearinghouse,bytes32,bool)").slice(0, 10);
    const args = ethers.AbiCoder.defaultAbiCoder().encode(
      ["uint256", "address", "bytes32", "bool"],
      [0n, await f.clearinghouse.getAddress(), id, SHORTS],
    );
    await expect(
      f.keeper.sendTransaction({ to: sessionLib, data: finish + args.slice(2) }),
    ).to.be.revertedWithoutReason();
    expect(t.length).to.equal(10);
  });

  it("finish after T is rejected; expiry ends the session and releases the reserve; a new session opens", async function () {
    const { f, id, B, v, s } = await opened();
    const del = f.deleverager;
    const availableOpen = await f.insuranceFund.available();
    await continueAll(f, id, SHORTS);
    await expect(del.expireAdlSession(id, SHORTS))
      .to.be.revertedWithCustomError(del, "AdlSessionNotExpired")
      .withArgs(s.deadline, (await time.latest()) + 1);
    await time.setNextBlockTimestamp(s.deadline + 1n);
    await f.setPrice(ETH, GAP); // a fresh round for the strict window
    await time.setNextBlockTimestamp(s.deadline + 2n);
    await expect(del.finishAdlSession(id, SHORTS))
      .to.be.revertedWithCustomError(del, "AdlSessionTooOld")
      .withArgs(s.deadline, s.deadline + 2n);
    const dust = await checkInvariants(f);
    const keeperFree = await f.clearinghouse.freeCollateral(f.keeper.address);
    const expire = del.expireAdlSession(id, SHORTS);
    await expect(expire).to.emit(del, "AdlSessionExpired").withArgs(id, SHORTS, s.id);
    // Never challenged: the bond goes back to the opener, as free collateral.
    await expect(expire).to.emit(del, "AdlSessionBondPaid").withArgs(id, SHORTS, s.id, f.keeper.address, s.bondTokens);
    expect(await f.clearinghouse.freeCollateral(f.keeper.address)).to.equal(keeperFree + s.bondTokens * SCALE);
    expect(await f.token.balanceOf(await del.getAddress())).to.equal(0n);
    expect((await readSession(del, id, SHORTS)).id).to.equal(0n);
    expect(await f.insuranceFund.reserveOf(reserveKey(id, SHORTS, s.id))).to.equal(0n);
    expect(await f.insuranceFund.available()).to.equal(availableOpen + s.reserveTokens);
    await checkInvariants(f, dust);
    await (await del.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
    expect((await readSession(del, id, SHORTS)).id).to.equal(s.id + 1n);
  });

  it("session terms: the ADL admin sets the bond and the pay per member within bounds; opening posts the bond or reverts", async function () {
    const f = await loadFixture(sessionBook);
    const t = f.traders;
    const id = f.ethId;
    const del = f.deleverager;
    const B = t[0].address;
    // The local deployment's terms: 100 quote units of bond, 0.05 per member.
    expect(await del.sessionTerms(id)).to.deep.equal([100n * WAD, 5n * 10n ** 16n]);
    const [maxBond, maxPay] = [1_000_000n * WAD, 10n * WAD];
    for (const [bond, pay] of [
      [maxBond + 1n, 0n],
      [0n, maxPay + 1n],
    ]) {
      await expect(del.setSessionTerms(id, bond, pay))
        .to.be.revertedWithCustomError(del, "AdlSessionTermsOutOfRange")
        .withArgs(bond, pay);
    }
    await expect(del.connect(f.keeper).setSessionTerms(id, WAD, 0))
      .to.be.revertedWithCustomError(del, "AccessControlUnauthorizedAccount")
      .withArgs(f.keeper.address, await del.ADL_ADMIN_ROLE());
    await expect(del.setSessionTerms(id, maxBond, maxPay))
      .to.emit(del, "SessionTermsSet")
      .withArgs(id, maxBond, maxPay);
    // 2.5 quote units and one wei: 2,500,001 token units of 6 decimals, rounded up.
    await expect(del.setSessionTerms(id, (5n * WAD) / 2n + 1n, 0))
      .to.emit(del, "SessionTermsSet")
      .withArgs(id, (5n * WAD) / 2n + 1n, 0);
    const v = await keeperPlan(f, id, B);
    // Without the allowance (or the tokens) the open reverts and nothing changes.
    const opener = t[7];
    await (await f.token.connect(opener).approve(await del.getAddress(), 2_500_000n)).wait();
    await expect(del.connect(opener).openAdlSession(id, B, v.plan.counterparties))
      .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
      .withArgs(await del.getAddress(), 2_500_000n, 2_500_001n);
    expect((await readSession(del, id, SHORTS)).id).to.equal(0n);
    // With it, the bond is the tokens rounded up: 2.5 quote units and one wei are 2,500,001 units.
    await (await f.token.connect(opener).approve(await del.getAddress(), 2_500_001n)).wait();
    const wallet = await f.token.balanceOf(opener.address);
    await (await del.connect(opener).openAdlSession(id, B, v.plan.counterparties)).wait();
    const s = await readSession(del, id, SHORTS);
    expect([s.opener, s.bondTokens]).to.deep.equal([opener.address, 2_500_001n]);
    expect(await f.token.balanceOf(opener.address)).to.equal(wallet - 2_500_001n);
    // Terms set later apply to later sessions only: this one keeps its bond.
    await (await del.setSessionTerms(id, 0, 0)).wait();
    expect((await readSession(del, id, SHORTS)).bondTokens).to.equal(2_500_001n);
  });

  it("finish after B recovered: no trade, the reserve released", async function () {
    const { f, t, id, B, s } = await opened();
    await continueAll(f, id, SHORTS);
    const deficit = -(await f.lens.equity(id, B));
    expect(deficit).to.be.greaterThan(0n);
    // B's owner adds more than the deficit: not bankrupt any more at the current price.
    await (await f.clearinghouse.connect(t[0]).addMargin(id, deficit + WAD)).wait();
    const before = await Promise.all(s.entries.map((a) => pos(f, id, a)));
    const dust = await checkInvariants(f);
    const fundBefore = await f.insuranceFund.available();
    await expect(f.deleverager.finishAdlSession(id, SHORTS))
      .to.emit(f.deleverager, "AdlSessionFinished")
      .withArgs(id, SHORTS, s.id, 0);
    expect(await Promise.all(s.entries.map((a) => pos(f, id, a)))).to.deep.equal(before);
    expect((await pos(f, id, B)).size).to.equal(units(10));
    expect(await f.insuranceFund.available()).to.equal(fundBefore + s.reserveTokens);
    expect(await f.insuranceFund.reserveOf(reserveKey(id, SHORTS, s.id))).to.equal(0n);
    await checkInvariants(f, dust);
  });

  it("challenge: rejected for listed, lower-ranked, ineligible and other-side positions; accepted for a skipped head", async function () {
    const f = await loadFixture(sessionBook);
    const t = f.traders;
    const id = f.ethId;
    const B = t[0].address;
    const del = f.deleverager;
    const [a] = tie(f);
    // A list that skips the head t3 (the walk checks order and eligibility, not completeness).
    await (await del.connect(f.keeper).openAdlSession(id, B, [t[2].address, a.address])).wait();
    const s = await readSession(del, id, SHORTS);
    for (const who of [t[2], t[6], t[4], t[9], t[7]]) {
      // listed; ranks below the last entry; ineligible (late 10x); long side; no position
      await expect(del.challengeAdlSession(id, SHORTS, who.address))
        .to.be.revertedWithCustomError(del, "AdlChallengeRejected")
        .withArgs(who.address);
    }
    // The proof cannot get past t3's leaf either.
    const { txs } = await sessionProofTxs(f, id, SHORTS);
    await expect(del.continueAdlSession(id, SHORTS, txs[0]))
      .to.be.revertedWithCustomError(del, "AdlMemberOutranks")
      .withArgs(t[3].address);
    const dust = await checkInvariants(f);
    await expect(del.connect(f.keeper).challengeAdlSession(id, SHORTS, t[3].address))
      .to.emit(del, "AdlSessionChallenged")
      .withArgs(id, SHORTS, s.id, t[3].address, f.keeper.address);
    expect((await readSession(del, id, SHORTS)).id).to.equal(0n);
    expect(await f.insuranceFund.reserveOf(reserveKey(id, SHORTS, s.id))).to.equal(0n);
    await checkInvariants(f, dust);
  });

  it("a leaf verified in chunks while members join and leave below the last address", async function () {
    const { f, t, id, s } = await opened();
    const del = f.deleverager;
    const [a, b] = tie(f);
    const leaf = Number((await pos(f, id, a.address)).leaf);
    // One opened member per transaction: the tie's leaf (2 members) takes two.
    await (await del.setBounds(64, 512, 1)).wait();
    const limits = { ...WIDE, maxOpenedMembers: 1 };
    let state: SessionState = s;
    while (!(state.held && state.cursor === leaf)) {
      const { txs } = await sessionProofTxs(f, id, SHORTS, limits);
      await (await del.connect(f.keeper).continueAdlSession(id, SHORTS, txs[0])).wait();
      state = await readSession(del, id, SHORTS);
      expect(state.cursor).to.be.lessThanOrEqual(leaf);
    }
    expect([state.heldLast, state.heldTally]).to.deep.equal([a.address, 1n]);
    let dust = await checkInvariants(f);
    // A joiner below the last address: a short from 2,000 with a little more margin than 2x (same
    // leaf, lower score than the last entry, so the guard lets it in) counts as verified.
    const lower = await traderBelow(f, a.address);
    await fillAt(f, t[8], lower, units(1), ETH_PRICE, { long: lev(2), short: lev(1.98) });
    expect(Number((await pos(f, id, lower.address)).leaf)).to.equal(leaf);
    expect((await readSession(del, id, SHORTS)).heldTally).to.equal(2n);
    // The same joiner with 2x and its lower address would outrank the last entry: blocked.
    const other = await traderBelow(f, a.address, lower.address);
    await expect(fillTx(f, t[8], other, units(1), ETH_PRICE, { long: lev(2), short: lev(2) }))
      .to.be.revertedWithCustomError(del, "AdlPending")
      .withArgs(id, other.address);
    // The listed member below the last address (a itself) closes: one fewer verified.
    await fillAt(f, a, t[9], (await pos(f, id, a.address)).size, GAP);
    await f.setPrice(ETH, GAP);
    state = await readSession(del, id, SHORTS);
    expect(state.heldTally).to.equal(1n);
    dust = await checkInvariants(f, dust);
    // A call that does not resume the held leaf is rejected.
    await expect(
      del
        .connect(f.keeper)
        .continueAdlSession(id, SHORTS, [{ level: 0, position: leaf + 1, open: false, members: [] }]),
    )
      .to.be.revertedWithCustomError(del, "AdlHeldLeaf")
      .withArgs(leaf);
    // Resume with the members above the last address: the tally reaches the count.
    const book = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
    const rest = buildProofFrom(book, id, SHORTS, state, state.cursor, state.heldLast);
    expect(rest[0]).to.deep.include({ level: 0, position: leaf, open: true, members: [b.address] });
    await (await del.connect(f.keeper).continueAdlSession(id, SHORTS, [rest[0]])).wait();
    state = await readSession(del, id, SHORTS);
    expect([state.cursor, state.held]).to.deep.equal([leaf + 1, false]);
    await continueAll(f, id, SHORTS, limits);
    await finishExactly(f, id, SHORTS);
    await checkInvariants(f, dust);
  });

  it("the keeper driver opens, continues in chunks, finishes, and restarts after an expiry", async function () {
    const f = await loadFixture(sessionBook);
    const id = f.ethId;
    const B = f.traders[0].address;
    const del = f.deleverager.connect(f.keeper);
    await (await f.deleverager.setBounds(64, 512, 1)).wait();
    const book = () => ethers.provider.getBlockNumber().then((n) => fromEvents(f.clearinghouse, del, 0, n));
    const market = async () => {
      const v = await keeperView(f, id, B);
      return { price: v.price, funding: v.funding, delta: v.delta.delta };
    };
    let expireOnce = true;
    const events: string[] = [];
    const report = await driveSession(
      {
        deleverager: del,
        book,
        market,
        now: async () => {
          // Let the first session run out of time after its first continue.
          const s = await readSession(del, id, SHORTS);
          if (expireOnce && s.id !== 0n && s.cursor > 0) {
            expireOnce = false;
            await time.setNextBlockTimestamp(s.deadline + 1n);
            await f.setPrice(ETH, GAP);
          }
          const latest = await ethers.provider.getBlock("latest");
          return BigInt(latest!.timestamp) + 1n;
        },
        send: contractSender(del),
        log: (event) => events.push(event),
      },
      id,
      B,
      { limits: { ...WIDE, maxOpenedMembers: 1 } },
    );
    expect(report.settled).to.equal(true);
    expect(report.sessions).to.equal(2);
    expect(report.restarts.map((r) => r.reason)).to.deep.equal([`session 1 expired`]);
    expect(report.transactions.filter((x) => x.method === "finish").length).to.equal(1);
    expect(events).to.include("adl_session_expire");
    expect((await pos(f, id, B)).size).to.equal(0n);
    await checkInvariants(f);
  });

  it("the keeper driver restarts after a challenge: a stale book missed the head, a watcher proves it", async function () {
    const f = await loadFixture(sessionBook);
    const t = f.traders;
    const id = f.ethId;
    const B = t[0].address;
    const del = f.deleverager.connect(f.keeper);
    // The driver's position source lags: it has not seen t3 (the head) until the challenge.
    let stale = true;
    const book = async () => {
      const b = await fromEvents(f.clearinghouse, del, 0, await ethers.provider.getBlockNumber());
      if (stale) {
        b.applyPositionChanged({
          marketId: id,
          account: t[3].address,
          isLong: false,
          size: 0n,
          entry: 0n,
          margin: 0n,
          leverage: 0n,
          leaf: 0,
        });
      }
      return b;
    };
    const market = async () => {
      const v = await keeperView(f, id, B);
      return { price: v.price, funding: v.funding, delta: v.delta.delta };
    };
    const sender = contractSender(del);
    let challenges = 0;
    const report = await driveSession(
      {
        deleverager: del,
        book,
        market,
        now: async () => BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 1n,
        send: async (method, args) => {
          try {
            return await sender(method, args);
          } catch (err) {
            // A watcher with a complete book sees the skipped head and challenges the session.
            if (method === "continue" && challenges === 0) {
              challenges += 1;
              await (await f.deleverager.connect(t[7]).challengeAdlSession(id, SHORTS, t[3].address)).wait();
              stale = false;
            }
            throw err;
          }
        },
      },
      id,
      B,
      { limits: WIDE },
    );
    expect(challenges).to.equal(1);
    expect(report.settled).to.equal(true);
    expect(report.sessions).to.equal(2);
    expect(report.restarts.map((r) => r.reason)).to.deep.equal(["session 1 ended early"]);
    expect((await pos(f, id, t[3].address)).size).to.equal(0n);
    expect((await pos(f, id, B)).size).to.equal(0n);
    await checkInvariants(f);
  });

  it("T: set per market by the ADL admin within its bounds; a session keeps the T it opened with", async function () {
    const f = await loadFixture(sessionBook);
    const id = f.ethId;
    const del = f.deleverager;
    const B = f.traders[0].address;
    expect(await del.sessionTtl(id)).to.equal(await del.DEFAULT_SESSION_TTL());
    const [min, max] = [await del.MIN_SESSION_TTL(), await del.MAX_SESSION_TTL()];
    for (const bad of [min - 1n, max + 1n, 0n]) {
      await expect(del.setSessionTtl(id, bad))
        .to.be.revertedWithCustomError(del, "AdlSessionTtlOutOfRange")
        .withArgs(bad);
    }
    await expect(del.connect(f.keeper).setSessionTtl(id, 600))
      .to.be.revertedWithCustomError(del, "AccessControlUnauthorizedAccount")
      .withArgs(f.keeper.address, await del.ADL_ADMIN_ROLE());
    await expect(del.setSessionTtl(id, 600)).to.emit(del, "SessionTtlSet").withArgs(id, 600);
    expect(await del.sessionTtl(id)).to.equal(600n);
    expect(await del.sessionTtl(f.btcId)).to.equal(await del.DEFAULT_SESSION_TTL());
    // kRef shares the slot and is untouched.
    expect(await del.kRef(id)).to.equal(BigInt(bandReference(ETH_PRICE)));
    const v = await keeperPlan(f, id, B);
    await (await del.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
    const s = await readSession(del, id, SHORTS);
    expect(s.deadline - s.openedAt).to.equal(600n);
    await (await del.setSessionTtl(id, 7200)).wait();
    expect((await readSession(del, id, SHORTS)).deadline).to.equal(s.deadline);
    expect(max).to.equal(86_400n);
  });

  it("T never exceeds the oracle heartbeat: rejected above it, and a session's T is capped at it", async function () {
    const f = await loadFixture(sessionBook);
    const id = f.ethId;
    const del = f.deleverager;
    const B = f.traders[0].address;
    const feed = async (heartbeat: number) =>
      (
        await f.oracle.setFeed(id, {
          aggregator: await f.markets.get(ETH)!.aggregator.getAddress(),
          heartbeat,
          strictMaxAge: heartbeat,
          minPrice: 1n,
          maxPrice: 10n ** 30n,
        })
      ).wait();
    await feed(3600);
    await expect(del.setSessionTtl(id, 3601))
      .to.be.revertedWithCustomError(del, "AdlSessionTtlOutOfRange")
      .withArgs(3601);
    await (await del.setSessionTtl(id, 3600)).wait();
    // The feed's heartbeat drops below T: a session opened now gets the heartbeat as its T.
    await feed(600);
    await f.setPrice(ETH, GAP);
    const v = await keeperPlan(f, id, B);
    await (await del.connect(f.keeper).openAdlSession(id, B, v.plan.counterparties)).wait();
    const s = await readSession(del, id, SHORTS);
    expect(s.deadline - s.openedAt).to.equal(600n);
  });

  it("splitProof keeps every transaction within the budget and bounds, and chunks big leaves", async function () {
    const members = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => ethers.zeroPadValue(ethers.toBeHex(from + i), 20));
    const proof = [
      { level: 3, position: 0, open: false, members: [] },
      { level: 0, position: 8, open: true, members: members(7, 1) },
      { level: 0, position: 9, open: false, members: [] },
      { level: 0, position: 10, open: true, members: members(2, 100) },
    ];
    const model = { base: 100, perNode: 10, perMember: 20 };
    const txs = splitProof(proof, { gasBudget: 200, maxProofNodes: 3, maxOpenedMembers: 3, model });
    for (const tx of txs) {
      const m = tx.reduce((s, n) => s + n.members.length, 0);
      expect(tx.length).to.be.lessThanOrEqual(3);
      expect(m).to.be.lessThanOrEqual(3);
      expect(100 + 10 * tx.length + 20 * m).to.be.lessThanOrEqual(200);
      // A partial leaf only ever ends a transaction.
      tx.slice(0, -1).forEach((n) => expect(n.open && n.members.length === 0).to.equal(false));
    }
    // Concatenated, the chunks list each leaf's members once, in order.
    const leaf8 = txs.flat().filter((n) => n.position === 8 && n.level === 0);
    expect(leaf8.flatMap((n) => n.members)).to.deep.equal(members(7, 1));
    expect(leaf8.length).to.be.greaterThan(1);
    expect(() => splitProof(proof, { gasBudget: 120, maxProofNodes: 3, maxOpenedMembers: 3, model })).to.throw(
      RangeError,
    );
    // A first chunk below a quarter of maxOpenedMembers (it would hold its leaf against nobody) moves
    // to a transaction of its own when that one can list a quarter. Room for 8 members a transaction
    // (gas 280): 7 members, then 1 of the next leaf's 10, become 7, then 8 and 2 at maxOpenedMembers 8
    // (a quarter is 2); at 64 no transaction reaches a quarter (16), so the 1 stays.
    const big = [
      { level: 0, position: 1, open: true, members: members(7, 1) },
      { level: 0, position: 2, open: true, members: members(10, 100) },
    ];
    const shape = (max: number) =>
      splitProof(big, { gasBudget: 280, maxProofNodes: 8, maxOpenedMembers: max, model }).map((tx) =>
        tx.map((n) => [n.position, n.members.length]),
      );
    expect(shape(8)).to.deep.equal([[[1, 7]], [[2, 8]], [[2, 2]]]);
    expect(shape(64)).to.deep.equal([
      [
        [1, 7],
        [2, 1],
      ],
      [[2, 8]],
      [[2, 1]],
    ]);
    // nextSessionStep: a pure decision from the session and the clock.
    const none = { id: 0n } as SessionState;
    expect(nextSessionStep(none, ethers.ZeroAddress, 0n).kind).to.equal("open");
    const live = { id: 1n, bankrupt: ethers.ZeroAddress, deadline: 10n, cursor: LEAVES, held: false } as SessionState;
    expect(nextSessionStep(live, ethers.ZeroAddress, 10n).kind).to.equal("finish");
    expect(nextSessionStep(live, ethers.ZeroAddress, 11n).kind).to.equal("expire");
    expect(nextSessionStep({ ...live, held: true }, ethers.ZeroAddress, 5n).kind).to.equal("continue");
    expect(nextSessionStep(live, f1, 5n).kind).to.equal("wait");
  });
});

const f1 = "0x0000000000000000000000000000000000000001";
