/**
 * The keeper drives multi-transaction ADL sessions in-process on the Hardhat network: with the
 * deleverager's per-call bounds lowered so that no single `deleverage` call fits, it opens a session
 * for the bankrupt position, continues it one transaction-sized slice per tick, finishes it, and
 * settles the position; a keeper restarted on the same checkpoint continues the open session instead
 * of opening another; a session that runs past its deadline is expired and re-opened. The docs/mechanism.md
 * section 5 invariants (conservation with non-shrinking dust, balanced open interest, c > 0, fund
 * above its reserves) are checked after every tick.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import pino from "pino";
import { Writable } from "node:stream";
import { Keeper, MemoryCheckpointStore, type CheckpointStore } from "../../keeper/src";
import type { TickReport } from "../../keeper/src/types";
import { readSession } from "../../lib/adl-session";
import { ETH } from "../helpers/fixture";
import { keeperPlan, pos, units } from "../helpers/adl";
import { GAP, checkInvariants, sessionBook, tie } from "../helpers/adl-session";

type Fixture = Awaited<ReturnType<typeof sessionBook>>;

const SHORTS = false;
const LEAVES = 1 << 14;

function capture(): { logger: pino.Logger; events: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  const logger = pino({ level: "debug" }, stream);
  return { logger, events: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function startKeeper(f: Fixture, checkpoint: CheckpointStore, logger: pino.Logger): Promise<Keeper> {
  return Keeper.create({
    // The fixture's keeper account: the invariant checks count its collateral (it earns the ADL reward).
    runner: f.keeper,
    addresses: {
      clearinghouse: await f.clearinghouse.getAddress(),
      deleverager: await f.deleverager.getAddress(),
      insuranceFund: await f.insuranceFund.getAddress(),
      lens: await f.lens.getAddress(),
    },
    markets: [f.ethId, f.btcId],
    logger,
    checkpoint,
    options: {
      pageSize: 50,
      receiptTimeoutMs: 30_000,
      receiptPollMs: 20,
      retry: { retries: 1, baseDelayMs: 10, maxDelayMs: 10 },
    },
  });
}

/** The session book with the deleverager's bounds at one opened member per call: no single call fits. */
async function tightBook(): Promise<Fixture> {
  const f = await sessionBook();
  await (await f.deleverager.setBounds(64, 512, 1)).wait();
  return f;
}

describe("keeper: multi-transaction ADL sessions (in-process, Hardhat network)", function () {
  it("opens a session when no single call fits, continues it over ticks, finishes, and a restart does not re-open", async function () {
    const f = await loadFixture(tightBook);
    const t = f.traders;
    const id = f.ethId;
    const B = t[0].address;
    const [a, b] = tie(f);
    const plan = (await keeperPlan(f, id, B)).plan;
    const opened = plan.proof.reduce((n, node) => n + (node.open ? node.members.length : 0), 0);
    expect(opened).to.be.greaterThan(1);
    // The single call is out of bounds.
    await expect(f.deleverager.connect(f.keeper).deleverage(id, B, plan.counterparties, plan.proof))
      .to.be.revertedWithCustomError(f.deleverager, "AdlOpenedMembersTooMany")
      .withArgs(2, 1);
    const before = new Map<string, bigint>();
    for (const who of [t[3], t[2], a, b]) before.set(who.address, (await pos(f, id, who.address)).size);
    let dust = await checkInvariants(f);
    // The keeper has not approved the deleverager: it approves the session's bond before opening.
    const del = await f.deleverager.getAddress();
    await (await f.token.connect(f.keeper).approve(del, 0)).wait();
    const [bond] = await f.deleverager.sessionTerms(id);
    const bondTokens = bond / 10n ** 12n;
    const wallet = await f.token.balanceOf(f.keeper.address);

    const store = new MemoryCheckpointStore();
    const log1 = capture();
    const first = await startKeeper(f, store, log1.logger);
    const r1 = await first.tick();
    expect(r1.errors).to.deep.equal([]);
    expect(r1.adl).to.deep.equal([]);
    expect(r1.sessions.map((s) => [s.step, s.marketId, s.side, s.bankrupt, s.restart])).to.deep.equal([
      ["open", id, SHORTS, B, false],
    ]);
    const s0 = await readSession(f.deleverager, id, SHORTS);
    expect([s0.id, s0.bankrupt, s0.cursor, s0.held]).to.deep.equal([r1.sessions[0].sessionId, B, 0, false]);
    expect(s0.id).to.be.greaterThan(0n);
    expect(s0.entries).to.deep.equal(plan.counterparties);
    const openTx = await ethers.provider.getTransactionReceipt(r1.sessions[0].txHash);
    expect(openTx!.from).to.equal(f.keeper.address);
    expect(openTx!.gasUsed).to.equal(r1.sessions[0].gasUsed);
    expect(log1.events().map((e) => e.event)).to.include.members(["adl.proof_too_large", "adl.session_opened"]);
    expect((await store.load())!.journal.map((e) => [e.kind, e.account, e.status])).to.deep.equal([
      ["session-bond-approve", B, "confirmed"],
      ["session-open", B, "confirmed"],
    ]);
    expect([s0.opener, s0.bondTokens]).to.deep.equal([f.keeper.address, bondTokens]);
    expect(await f.token.balanceOf(f.keeper.address)).to.equal(wallet - bondTokens);
    expect(await f.token.allowance(f.keeper.address, del)).to.equal(0n);
    dust = await checkInvariants(f, dust);

    const r2 = await first.tick();
    expect(r2.errors).to.deep.equal([]);
    expect(r2.sessions.map((s) => [s.step, s.sessionId])).to.deep.equal([["continue", s0.id]]);
    expect(r2.sessions[0].openedMembers).to.be.at.most(1);
    expect(r2.sessions[0].cursor).to.be.greaterThan(0);
    dust = await checkInvariants(f, dust);
    await first.stop();

    // A keeper restarted on the same checkpoint sees the open session and continues it.
    const log2 = capture();
    const second = await startKeeper(f, store, log2.logger);
    const reports: TickReport[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await second.tick();
      expect(r.errors).to.deep.equal([]);
      reports.push(r);
      dust = await checkInvariants(f, dust);
      if (r.sessions.some((s) => s.step === "finish")) break;
    }
    const steps = reports.flatMap((r) => r.sessions);
    expect(steps.filter((s) => s.step === "open")).to.deep.equal([]);
    expect(log2.events().map((e) => e.event)).to.not.include("adl.session_opened");
    const continues = steps.filter((s) => s.step === "continue");
    // One step per tick; every slice within the per-call bounds; the cursor never goes back.
    expect(reports.every((r) => r.sessions.length === 1)).to.equal(true);
    expect(continues.length).to.be.greaterThanOrEqual(2);
    for (const c of continues) {
      expect(c.sessionId).to.equal(s0.id);
      expect(c.openedMembers).to.be.at.most(1);
    }
    const cursors = [r2.sessions[0].cursor, ...continues.map((c) => c.cursor)];
    for (let i = 1; i < cursors.length; i++) expect(cursors[i]).to.be.greaterThanOrEqual(cursors[i - 1]);
    // A leaf with two members (the tie) was split across two transactions.
    expect([r2.sessions[0], ...continues].some((c) => c.held)).to.equal(true);
    expect(continues[continues.length - 1]).to.deep.include({ cursor: LEAVES, held: false, slicesLeft: 0 });
    const finish = steps[steps.length - 1];
    expect([finish.step, finish.sessionId, finish.remainingSize]).to.deep.equal(["finish", s0.id, 0n]);
    expect(log2.events().map((e) => e.event)).to.include.members(["adl.session_continued", "adl.session_finished"]);

    // Settled: B closed; the head took it in queue order (t3 4, t2 3, then the tie by address).
    expect((await pos(f, id, B)).size).to.equal(0n);
    expect((await readSession(f.deleverager, id, SHORTS)).id).to.equal(0n);
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([]);
    const fromA = before.get(a.address)! < units(3) ? before.get(a.address)! : units(3);
    const takes = new Map([
      [t[3].address, units(4)],
      [t[2].address, units(3)],
      [a.address, fromA],
      [b.address, units(3) - fromA],
    ]);
    for (const [who, take] of takes) {
      expect((await pos(f, id, who)).size, who).to.equal(before.get(who)! - take);
    }
    const quiet = await second.tick();
    expect([quiet.sessions, quiet.adl, quiet.errors]).to.deep.equal([[], [], []]);
    const summary = await second.stop();
    expect(summary.sessionTransactions).to.equal(steps.length);
    expect(summary.adlCalls).to.equal(0);
  });

  it("expires a session that ran past its deadline and re-opens it (a restart), then settles", async function () {
    const f = await loadFixture(tightBook);
    const id = f.ethId;
    const B = f.traders[0].address;
    let dust = await checkInvariants(f);
    const log = capture();
    const keeper = await startKeeper(f, new MemoryCheckpointStore(), log.logger);
    const opened = await keeper.tick();
    expect(opened.sessions.map((s) => s.step)).to.deep.equal(["open"]);
    const s1 = await readSession(f.deleverager, id, SHORTS);
    expect((await keeper.tick()).sessions.map((s) => s.step)).to.deep.equal(["continue"]);
    // Past the deadline: a fresh oracle round at deadline + 1.
    await time.setNextBlockTimestamp(s1.deadline + 1n);
    await f.setPrice(ETH, GAP);
    dust = await checkInvariants(f, dust);
    const r = await keeper.tick();
    expect(r.errors).to.deep.equal([]);
    expect(r.sessions.map((s) => [s.step, s.restart])).to.deep.equal([
      ["expire", false],
      ["open", true],
    ]);
    expect(r.sessions[0].sessionId).to.equal(s1.id);
    const s2 = await readSession(f.deleverager, id, SHORTS);
    expect(s2.id).to.equal(r.sessions[1].sessionId);
    expect(s2.id).to.be.greaterThan(s1.id);
    const restarted = log.events().filter((e) => e.event === "adl.session_restarted");
    expect(restarted.map((e) => e.reason)).to.deep.equal([`session ${s1.id} expired`]);
    dust = await checkInvariants(f, dust);
    let finished = false;
    for (let i = 0; i < 40 && !finished; i++) {
      const next = await keeper.tick();
      expect(next.errors).to.deep.equal([]);
      finished = next.sessions.some((s) => s.step === "finish");
      dust = await checkInvariants(f, dust);
    }
    expect(finished).to.equal(true);
    expect((await pos(f, id, B)).size).to.equal(0n);
    expect((await f.deleverager.unsettled(id))[0]).to.deep.equal([]);
    await keeper.stop();
  });

  it("continues a session someone else opened; after a watcher challenges it (its list skipped the head), re-opens it and settles", async function () {
    const f = await loadFixture(tightBook);
    const t = f.traders;
    const id = f.ethId;
    const B = t[0].address;
    const [a] = tie(f);
    // Another account opens a session whose list skips the head t3: no proof can get past t3's leaf.
    await (await f.deleverager.connect(t[7]).openAdlSession(id, B, [t[2].address, a.address])).wait();
    const bad = await readSession(f.deleverager, id, SHORTS);
    let dust = await checkInvariants(f);
    const log = capture();
    const keeper = await startKeeper(f, new MemoryCheckpointStore(), log.logger);
    // The keeper continues it (never opens a second session on the side) until the slice with t3's
    // leaf is rejected, also after rebuilds.
    let stuck: TickReport | undefined;
    const continued: TickReport["sessions"] = [];
    for (let i = 0; i < 10 && !stuck; i++) {
      const r = await keeper.tick();
      continued.push(...r.sessions);
      if (r.errors.length > 0) stuck = r;
      dust = await checkInvariants(f, dust);
    }
    expect(continued.length).to.be.greaterThan(0);
    expect(continued.every((c) => c.step === "continue" && c.sessionId === bad.id)).to.equal(true);
    expect(stuck!.errors.map((e) => [e.kind, e.account, e.error.name])).to.deep.equal([
      ["adl-session", B, "AdlMemberOutranks"],
    ]);
    expect((await readSession(f.deleverager, id, SHORTS)).id).to.equal(bad.id);
    await (await f.deleverager.connect(t[7]).challengeAdlSession(id, SHORTS, t[3].address)).wait();
    dust = await checkInvariants(f, dust);
    const reopened = await keeper.tick();
    expect(reopened.errors).to.deep.equal([]);
    expect(reopened.sessions.map((s) => [s.step, s.restart])).to.deep.equal([["open", true]]);
    const restarted = log.events().filter((e) => e.event === "adl.session_restarted");
    expect(restarted.map((e) => e.reason)).to.deep.equal([`session ${bad.id} ended without a finish`]);
    const good = await readSession(f.deleverager, id, SHORTS);
    expect(good.entries[0]).to.equal(t[3].address);
    let finished = false;
    for (let i = 0; i < 40 && !finished; i++) {
      const next = await keeper.tick();
      expect(next.errors).to.deep.equal([]);
      finished = next.sessions.some((s) => s.step === "finish");
      dust = await checkInvariants(f, dust);
    }
    expect(finished).to.equal(true);
    expect((await pos(f, id, B)).size).to.equal(0n);
    expect((await pos(f, id, t[3].address)).size).to.equal(0n);
    await keeper.stop();
  });
});
