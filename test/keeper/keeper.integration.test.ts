/**
 * The keeper in-process on the Hardhat network: it liquidates a position that fell under maintenance
 * (by the lens's cap), deleverages a bankrupt one the fund cannot cover with the list lib/adl.ts
 * builds, socializes a bankrupt position no eligible counterparty can absorb, and a keeper restarted
 * on the same checkpoint does not repeat an action: neither one already mined nor one still pending.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import pino from "pino";
import { Writable } from "node:stream";
import { WAD } from "../../lib/math";
import { Keeper, MemoryCheckpointStore, type CheckpointStore, type PositionSource } from "../../keeper/src";
import { EventPositionSource } from "../../keeper/src/chain/position-source";
import { STALE_ADL } from "../../keeper/src/errors";
import { PositionBook } from "../../lib/adl";
import { BTC, ETH, ETH_PRICE, BTC_PRICE, USDC, systemFixture, type Fixture } from "../helpers/fixture";
import { keeperPlan, lev, pos, tradeAt, units } from "../helpers/adl";

/** A pino logger whose JSON lines are collected for assertions on event names. */
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

async function withBot(): Promise<Fixture & { bot: HardhatEthersSigner }> {
  const f = await systemFixture();
  const bot = (await ethers.getSigners())[14];
  await (await f.token.mint(bot.address, 1_000_000n * USDC)).wait();
  await (await f.token.connect(bot).approve(await f.clearinghouse.getAddress(), ethers.MaxUint256)).wait();
  await (await f.clearinghouse.connect(bot).deposit(bot.address, 500_000n * USDC)).wait();
  return { ...f, bot };
}

async function startKeeper(
  f: Fixture & { bot: HardhatEthersSigner },
  checkpoint: CheckpointStore,
  logger: pino.Logger,
  receiptTimeoutMs = 30_000,
  positionSource?: PositionSource,
  refreshLooseNodes = false,
): Promise<Keeper> {
  return Keeper.create({
    positionSource,
    runner: f.bot,
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
      pageSize: 7,
      receiptTimeoutMs,
      refreshLooseNodes,
      receiptPollMs: 20,
      retry: { retries: 1, baseDelayMs: 10, maxDelayMs: 10 },
    },
  });
}

describe("keeper (in-process, Hardhat network)", function () {
  it("liquidates a position under maintenance and deleverages a bankrupt one the fund cannot cover", async function () {
    const f = await loadFixture(withBot);
    const [b, s1, l2, s3] = f.traders;
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, l2, s3, units(1), BTC_PRICE, { long: lev(10), short: lev(2) }, BTC);
    const log = capture();
    const store = new MemoryCheckpointStore();
    const keeper = await startKeeper(f, store, log.logger);

    const quiet = await keeper.tick();
    expect(quiet.eventsApplied).to.equal(4);
    expect([quiet.liquidations, quiet.adl, quiet.unsettled, quiet.errors]).to.deep.equal([[], [], [], []]);
    for (const t of [b, s1, l2, s3]) {
      const chain = await pos(f, t === l2 || t === s3 ? f.btcId : f.ethId, t.address);
      const mine = keeper.book.position(t === l2 || t === s3 ? f.btcId : f.ethId, t.address);
      expect([mine.size, mine.entry, mine.margin, mine.leverage]).to.deep.equal([
        chain.size,
        chain.entry,
        chain.margin,
        chain.leverage,
      ]);
    }

    // BTC -6%: the 10x long is under 5% maintenance but solvent. ETH to 1,700: the 10x long is bankrupt.
    await f.setPrice(BTC, 56_400n * WAD);
    await f.setPrice(ETH, 1700n * WAD);
    expect(await f.lens.isLiquidatable(f.btcId, l2.address)).to.equal(true);
    expect(await f.lens.isBankrupt(f.btcId, l2.address)).to.equal(false);
    expect(await f.lens.isBankrupt(f.ethId, b.address)).to.equal(true);
    const cap = await f.lens.maxLiquidationSize(f.btcId, l2.address);
    expect(cap).to.be.greaterThan(0n);
    const btcBefore = await pos(f, f.btcId, l2.address);
    const [delta] = await f.deleverager.adlDelta(f.ethId, b.address);
    expect(delta).to.be.greaterThan(0n);

    const r = await keeper.tick();
    expect(r.errors).to.deep.equal([]);
    expect(r.liquidations.length).to.equal(1);
    const liq = r.liquidations[0];
    expect([liq.marketId, liq.account, liq.size, liq.cover]).to.deep.equal([f.btcId, l2.address, cap, false]);
    expect(liq.price).to.equal(56_400n * WAD);
    expect(liq.gasUsed).to.be.greaterThan(0n);
    expect((await pos(f, f.btcId, l2.address)).size).to.equal(btcBefore.size - cap);
    expect((await pos(f, f.btcId, f.bot.address)).size).to.equal(cap);

    expect(r.adl.length).to.equal(1);
    const adl = r.adl[0];
    expect([adl.marketId, adl.bankrupt, adl.counterparties, adl.takes, adl.queuePositions]).to.deep.equal([
      f.ethId,
      b.address,
      [s1.address],
      [units(5)],
      [0n],
    ]);
    expect([adl.closedSize, adl.remainingSize]).to.deep.equal([units(5), 0n]);
    expect(adl.fundContribution).to.be.greaterThan(0n);
    expect(adl.price).to.equal(1700n * WAD);
    const receipt = await ethers.provider.getTransactionReceipt(adl.txHash);
    expect(receipt!.from).to.equal(f.bot.address);
    expect(receipt!.gasUsed).to.equal(adl.gasUsed);
    expect((await pos(f, f.ethId, b.address)).size).to.equal(0n);
    expect((await pos(f, f.ethId, s1.address)).size).to.equal(0n);

    const names = log.events().map((e) => e.event);
    for (const n of ["keeper.started", "liquidation.sent", "adl.sent", "tick.done"]) expect(names).to.include(n);

    // Nothing left to do; the next tick only replays the keeper's own events.
    const after = await keeper.tick();
    expect([after.liquidations, after.adl, after.unsettled, after.errors]).to.deep.equal([[], [], [], []]);
    expect(after.eventsApplied).to.be.greaterThan(0);
    const summary = await keeper.stop();
    expect([summary.ticks, summary.liquidations, summary.adlCalls]).to.deep.equal([3, 1, 1]);
    expect(log.events().map((e) => e.event)).to.include.members(["keeper.summary", "keeper.stopped"]);
  });

  it("settles a bankrupt position no eligible counterparty can absorb through the final layer, without listing it first", async function () {
    const f = await loadFixture(withBot);
    const [b, s1] = f.traders;
    // s1 buys its short back from a late 10x short at 1,450; at 1,400 that short cannot absorb B's loss per unit.
    const s2 = f.traders[2];
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    await tradeAt(f, s1, s2, units(5), 1450n * WAD, { long: lev(2), short: lev(10) });
    await f.setPrice(ETH, 1400n * WAD);
    const [delta] = await f.deleverager.adlDelta(f.ethId, b.address);
    expect((await pos(f, f.ethId, s1.address)).size).to.equal(0n);
    const p = await pos(f, f.ethId, s2.address);
    // Equity per unit of the only short, floor(W^2 / a) + x, is below delta: ineligible.
    expect((WAD * WAD) / p.leverage + (p.entry - 1400n * WAD)).to.be.lessThan(delta);
    const keeper = await startKeeper(f, new MemoryCheckpointStore(), capture().logger);
    const r = await keeper.tick();
    expect([r.adl, r.unsettled, r.errors]).to.deep.equal([[], [], []]);
    expect(r.socialized.map((x) => [x.marketId, x.bankrupt, x.byDeadline, x.chargedLong])).to.deep.equal([
      [f.ethId, b.address, false, false],
    ]);
    expect(await pos(f, f.ethId, b.address)).to.include({ size: 0n });
    expect(await pos(f, f.ethId, f.bot.address)).to.include({ isLong: true, size: units(5) });
    const [listed] = await f.deleverager.unsettled(f.ethId);
    expect(listed).to.deep.equal([]);
    const again = await keeper.tick();
    expect([again.socialized, again.unsettled]).to.deep.equal([[], []]);
    await keeper.stop();
  });

  it("a keeper restarted on the same checkpoint repeats neither a mined nor a pending action", async function () {
    const f = await loadFixture(withBot);
    const [l0, s1, l2, s3] = f.traders;
    await tradeAt(f, l0, s1, units(1), BTC_PRICE, { long: lev(10), short: lev(2) }, BTC);
    await tradeAt(f, l2, s3, units(1), ETH_PRICE, { long: lev(10), short: lev(2) });
    const store = new MemoryCheckpointStore();
    const first = await startKeeper(f, store, capture().logger, 300);
    await first.tick();

    // 1. Mined before the restart: the restarted keeper resumes from the checkpoint and does nothing.
    await f.setPrice(BTC, 56_400n * WAD);
    const mined = await first.tick();
    expect(mined.liquidations.map((l) => l.account)).to.deep.equal([l0.address]);
    const nonceAfterFirst = await ethers.provider.getTransactionCount(f.bot.address);
    const resumedAt = (await store.load())!.lastBlock;
    await first.stop();
    const second = await startKeeper(f, store, capture().logger, 300);
    const idle = await second.tick();
    expect(idle.fromBlock).to.equal(resumedAt + 1);
    expect([idle.liquidations, idle.adl, idle.errors]).to.deep.equal([[], [], []]);
    expect(await ethers.provider.getTransactionCount(f.bot.address)).to.equal(nonceAfterFirst);
    await second.stop();

    // 2. Sent but not mined when the keeper stops: the restarted keeper waits for it instead of resending.
    await f.setPrice(ETH, 1880n * WAD);
    await network.provider.send("evm_setAutomine", [false]);
    try {
      const third = await startKeeper(f, store, capture().logger, 300);
      const sent = await third.tick();
      expect(sent.liquidations).to.deep.equal([]);
      expect(sent.deferred.map((d) => [d.reason, d.account])).to.deep.equal([["receipt-timeout", l2.address]]);
      const txHash = sent.deferred[0].txHash!;
      await third.stop();
      expect(await ethers.provider.getTransactionCount(f.bot.address, "pending")).to.equal(nonceAfterFirst + 1);

      const fourth = await startKeeper(f, store, capture().logger, 300);
      const waiting = await fourth.tick();
      expect(waiting.deferred.map((d) => [d.reason, d.txHash])).to.deep.equal([["pending-transaction", txHash]]);
      expect(waiting.liquidations).to.deep.equal([]);
      expect(await ethers.provider.getTransactionCount(f.bot.address, "pending")).to.equal(nonceAfterFirst + 1);

      await network.provider.send("evm_mine", []);
      await network.provider.send("evm_setAutomine", [true]);
      const done = await fourth.tick();
      expect(done.resolved.map((e) => [e.txHash, e.status, e.kind])).to.deep.equal([
        [txHash, "confirmed", "liquidate"],
      ]);
      expect([done.liquidations, done.errors]).to.deep.equal([[], []]);
      expect(await ethers.provider.getTransactionCount(f.bot.address)).to.equal(nonceAfterFirst + 1);
      expect(await f.lens.isLiquidatable(f.ethId, l2.address)).to.equal(false);
      await fourth.stop();
    } finally {
      await network.provider.send("evm_setAutomine", [true]);
    }
  });

  it("rebuilds a list and proof that went stale between decision and execution, then settles", async function () {
    const f = await loadFixture(withBot);
    const [b, s1, s2, l9] = [f.traders[0], f.traders[1], f.traders[2], f.traders[9]];
    await tradeAt(f, b, s1, units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    // A second short in the same band as s1 (same leverage and entry): the same leaf.
    await tradeAt(f, l9, s2, units(2), ETH_PRICE, { long: lev(2), short: lev(2) });
    await f.setPrice(ETH, 1700n * WAD);
    expect((await pos(f, f.ethId, s2.address)).leaf).to.equal((await pos(f, f.ethId, s1.address)).leaf);
    // A source whose first sync stops two blocks short (a lagging node): the decision misses s2's
    // trade, so the leaf it opens lists one member where the chain counts two.
    const inner = new EventPositionSource(ethers.provider, new PositionBook(), -1, {
      clearinghouse: await f.clearinghouse.getAddress(),
      deleverager: await f.deleverager.getAddress(),
      pageSize: 1000,
      retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
    });
    let first = true;
    const lagging: PositionSource = {
      get book() {
        return inner.book;
      },
      get lastBlock() {
        return inner.lastBlock;
      },
      sync: (to: number) => {
        const target = first ? to - 2 : to;
        first = false;
        return inner.sync(target);
      },
    };
    const log = capture();
    const keeper = await startKeeper(f, new MemoryCheckpointStore(), log.logger, 30_000, lagging);
    const r = await keeper.tick();
    expect(r.errors).to.deep.equal([]);
    expect(r.adl.length).to.equal(1);
    expect(r.adl[0].rebuilds).to.equal(1);
    const rebuilt = log.events().filter((e) => e.event === "adl.rebuilt");
    expect(rebuilt.length).to.equal(1);
    expect(STALE_ADL.has(rebuilt[0].cause as string)).to.equal(true);
    expect(rebuilt[0].cause).to.equal("AdlLeafCountMismatch");
    // Equal scores: the lower address first; together they cover B's 5 units.
    const ordered = [s1.address, s2.address].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
    expect(r.adl[0].counterparties).to.deep.equal(ordered);
    expect((await pos(f, f.ethId, b.address)).size).to.equal(0n);
    await keeper.stop();
  });

  it("refreshes a loose leaf and its ancestors before deleveraging, and the proof gets shorter", async function () {
    const f = await loadFixture(withBot);
    const t = f.traders;
    await tradeAt(f, t[0], t[1], units(5), ETH_PRICE, { long: lev(10), short: lev(2) });
    // t5 opens a 10x short and closes it: its leaf keeps the stale aggregates with a count of 0.
    await tradeAt(f, t[8], t[5], units(2), ETH_PRICE, { long: lev(2), short: lev(10) });
    await tradeAt(f, t[5], t[8], units(2), ETH_PRICE);
    await f.setPrice(ETH, 1700n * WAD);
    const stale = await keeperPlan(f, f.ethId, t[0].address);
    const loose = stale.plan.proof.filter((n) => n.open && n.members.length === 0);
    expect(loose.length).to.equal(1);
    const keeper = await startKeeper(f, new MemoryCheckpointStore(), capture().logger, 30_000, undefined, true);
    const r = await keeper.tick();
    expect(r.errors).to.deep.equal([]);
    const refreshes = r.unsettled.filter((u) => u.kind === "refresh");
    expect(refreshes.map((u) => [u.node!.level, u.node!.position])).to.deep.equal(
      Array.from({ length: 15 }, (_, level) => [level, loose[0].position >> level]),
    );
    expect((await f.deleverager.nodeAt(f.ethId, false, 0, loose[0].position)).maxA).to.equal(0n);
    expect(r.adl.length).to.equal(1);
    expect(r.adl[0].counterparties).to.deep.equal(stale.plan.counterparties);
    expect(r.adl[0].proofNodes).to.be.lessThan(stale.plan.proof.length);
    await keeper.stop();
  });
});
