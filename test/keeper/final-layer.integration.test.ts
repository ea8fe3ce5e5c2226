/**
 * The keeper's final layer in-process on the Hardhat network, on the book of
 * test/adl/socialized-loss.test.ts: B (t0) short 1 at 2,000 at 10x, its counterparty sold out at
 * 2,900 to late 10x longs, index 3,100: B owes 900 per unit, each long holds 490, none is eligible.
 * The keeper socializes B with the empty-list proof and takes it over at the initial margin, tops it
 * up to its liquidation leverage, and holds the position; with the proof over the contract's bounds
 * it reports B and socializes it by the deadline; without the free collateral it reports B and warns;
 * a takeover that closes a holding of the keeper's costs exactly what the pure mirror says; and a
 * charge that bankrupts a position (through the loss index alone) sends it through ADL next.
 * Every socialization is checked by lib/social-check.ts against the chain to the wei.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import pino from "pino";
import { Writable } from "node:stream";
import { WAD, divFloor, minBig, mulDivUp } from "../../lib/math";
import { PositionBook, buildNoEligibleProof, fromEvents } from "../../lib/adl";
import { checkSocializedLoss, discoverAccounts } from "../../lib/invariants";
import {
  Keeper,
  MemoryCheckpointStore,
  chargeStep,
  takeoverCost,
  type KeeperOptions,
  type TickReport,
} from "../../keeper/src";
import { BTC, BTC_PRICE, ETH, USDC, systemFixture, type Fixture } from "../helpers/fixture";
import { PENDING, fundAvailable, lev, noEligibleBook, pos, tradeAt, units } from "../helpers/adl";
import { conservation } from "../helpers/liquidation";

const LONGS = true;
const SHORTS = false;
const P = 3100n * WAD;

/** A pino logger whose JSON lines are collected for assertions on event names and levels. */
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

type BotFixture = Fixture & { bot: HardhatEthersSigner };

async function withDeposit(tokens: bigint): Promise<BotFixture> {
  const f = await systemFixture();
  const bot = (await ethers.getSigners())[14];
  await (await f.token.mint(bot.address, 1_000_000n * USDC)).wait();
  await (await f.token.connect(bot).approve(await f.clearinghouse.getAddress(), ethers.MaxUint256)).wait();
  await (await f.clearinghouse.connect(bot).deposit(bot.address, tokens)).wait();
  return { ...f, bot };
}

/** The keeper's account holds 500,000 of free collateral. */
const richBot = () => withDeposit(500_000n * USDC);
/** 100: less than the 310 of initial margin a takeover of 1 ETH at 3,100 posts. */
const poorBot = () => withDeposit(100n * USDC);

async function startKeeper(f: BotFixture, logger: pino.Logger, options: Partial<KeeperOptions> = {}): Promise<Keeper> {
  return Keeper.create({
    runner: f.bot,
    addresses: {
      clearinghouse: await f.clearinghouse.getAddress(),
      deleverager: await f.deleverager.getAddress(),
      insuranceFund: await f.insuranceFund.getAddress(),
      lens: await f.lens.getAddress(),
    },
    markets: [f.ethId, f.btcId],
    logger,
    checkpoint: new MemoryCheckpointStore(),
    options: { receiptPollMs: 20, retry: { retries: 1, baseDelayMs: 10, maxDelayMs: 10 }, ...options },
  });
}

/** Everyone whose money the conservation identity counts. */
const accounts = (f: BotFixture) => [...f.traders.map((t) => t.address), f.keeper.address, f.bot.address];

/** lib/social-check.ts on the receipt of a socialization the keeper reported: every check passes. */
async function checked(f: BotFixture, txHash: string) {
  const receipt = (await ethers.provider.getTransactionReceipt(txHash))!;
  const sys = { clearinghouse: f.clearinghouse, insuranceFund: f.insuranceFund, deleverager: f.deleverager };
  const check = await checkSocializedLoss(sys, receipt, await discoverAccounts(sys, receipt.blockNumber));
  for (const r of check.results) expect(r.pass, `${r.name}: ${r.detail}`).to.equal(true);
  return check;
}

/** Ticks until a tick sends nothing (at most `max`), returning every report. */
async function tickUntilQuiet(keeper: Keeper, max = 6): Promise<TickReport[]> {
  const out: TickReport[] = [];
  for (let i = 0; i < max; i++) {
    const r = await keeper.tick();
    out.push(r);
    expect(r.errors, `errors of tick ${i + 1}`).to.deep.equal([]);
    if (r.liquidations.length + r.adl.length + r.socialized.length + r.sessions.length + r.unsettled.length === 0)
      break;
  }
  return out;
}

describe("keeper: the final layer (in-process, Hardhat network)", function () {
  it("socializes a bankrupt short no long can absorb, takes it over at the initial margin, tops it up to 5x and holds it", async function () {
    const f = await loadFixture(richBot);
    await noEligibleBook(f, 3);
    const id = f.ethId;
    const B = f.traders[0].address;
    const st = await f.clearinghouse.marketState(id);
    const deficit = -(await f.lens.equity(id, B, PENDING));
    const fundPays = minBig(await fundAvailable(f), deficit);
    const step = mulDivUp(deficit - fundPays, WAD, st.longOpenInterest);
    const reserve = await f.clearinghouse.keeperReserve(id);
    const { keeperPay } = await f.clearinghouse.marketParams(id);
    const freeBefore = await f.clearinghouse.freeCollateral(f.bot.address);
    const log = capture();
    const keeper = await startKeeper(f, log.logger, { liquidationLeverage: 5n * WAD });

    const r = await keeper.tick();
    expect([r.errors, r.adl, r.liquidations, r.deferred]).to.deep.equal([[], [], [], []]);
    expect(r.socialized.length).to.equal(1);
    const s = r.socialized[0];
    const reward = minBig(keeperPay, reserve);
    expect(s).to.deep.include({
      marketId: id,
      bankrupt: B,
      byDeadline: false,
      chargedLong: LONGS,
      size: units(1),
      price: P,
      deficit,
      fundPaid: fundPays,
      lossSocialized: deficit - fundPays,
      openInterest: st.longOpenInterest,
      lossIndex: st.lossIndexLong + step,
      keeperReward: reward,
    });
    expect(s.proofNodes).to.be.greaterThan(0);
    const check = await checked(f, s.txHash);
    expect([check.caller, check.taker, check.oppositeEligible]).to.deep.equal([f.bot.address, f.bot.address, 0]);

    // The keeper holds B's short at K = P - F of the shorts, with 310 of initial margin plus 310 to reach 5x.
    const imr = mulDivUp(P, WAD / 10n, WAD);
    const at5x = mulDivUp(units(1), P, 5n * WAD);
    expect(s.topUp).to.equal(at5x - imr);
    const held = await pos(f, id, f.bot.address);
    expect(held).to.deep.include({ isLong: SHORTS, size: units(1), margin: at5x });
    expect(held.entry).to.equal(P - (await f.lens.currentSideFunding(id, SHORTS)));
    expect(await f.clearinghouse.freeCollateral(f.bot.address)).to.equal(freeBefore - at5x + reward);
    expect(await pos(f, id, B)).to.include({ size: 0n });
    const names = log.events().map((e) => e.event);
    for (const n of ["socialize.sent", "keeper.margin_added", "tick.done"]) expect(names).to.include(n);

    // Nothing is left to settle; the keeper reports the short it holds, at zero profit: equity = margin.
    const after = await keeper.tick();
    expect([after.socialized, after.adl, after.liquidations, after.unsettled, after.errors]).to.deep.equal([
      [],
      [],
      [],
      [],
      [],
    ]);
    expect(after.holdings).to.deep.equal([
      {
        marketId: id,
        isLong: SHORTS,
        size: units(1),
        entry: held.entry,
        margin: at5x,
        equity: at5x,
        liquidatable: false,
      },
    ]);
    const holding = log.events().filter((e) => e.event === "keeper.holding");
    expect((holding.at(-1)!.holdings as unknown[]).length).to.equal(1);
    expect((await keeper.stop()).socializations).to.equal(1);
    expect(await conservation(f, [f.ethId, f.btcId], accounts(f))).to.be.greaterThanOrEqual(0n);
  });

  it("a takeover that closes a long the keeper holds costs exactly what the pure mirror predicts: the payout at the charged F", async function () {
    const f = await loadFixture(richBot);
    await noEligibleBook(f, 3);
    const id = f.ethId;
    // The keeper's own late 10x long at 2,900 (against a 2x short): on the charged side, ineligible too.
    await tradeAt(f, f.bot, f.traders[6], units(1), 2900n * WAD, { long: lev(10), short: lev(2) });
    await f.setPrice(ETH, P);
    const book = await fromEvents(f.clearinghouse, f.deleverager, 0, await ethers.provider.getBlockNumber());
    const market = {
      marketId: id,
      price: P,
      funding: await f.lens.currentFunding(id, PENDING),
      fundingLong: await f.lens.currentSideFunding(id, LONGS, PENDING),
      fundingShort: await f.lens.currentSideFunding(id, SHORTS, PENDING),
      risk: { imr: WAD / 10n, mmr: WAD / 20n, liquidationFee: WAD / 100n, minNotional: 10n * WAD },
      paused: false,
      unsettled: new Map<string, bigint>(),
      unsettledSince: new Map<string, bigint>(),
      socialDelay: 0n,
    };
    const B = f.traders[0].address;
    const deficit = -(await f.lens.equity(id, B, PENDING));
    const covered = minBig(await fundAvailable(f), deficit);
    const delta = { deficit, covered, sigma: 0n, delta: 0n };
    const cost = takeoverCost(
      book.position(id, f.bot.address),
      SHORTS,
      units(1),
      P,
      market,
      chargeStep({ book, market, bankrupt: B }, delta),
    );
    expect([cost.posted, cost.increased, cost.after.size]).to.deep.equal([0n, 0n, 0n]);
    const freeBefore = await f.clearinghouse.freeCollateral(f.bot.address);
    const keeper = await startKeeper(f, capture().logger, { liquidationLeverage: 5n * WAD });
    const r = await keeper.tick();
    expect(r.errors).to.deep.equal([]);
    expect(r.socialized.map((s) => [s.bankrupt, s.topUp])).to.deep.equal([[B, 0n]]);
    await checked(f, r.socialized[0].txHash);
    expect(await pos(f, id, f.bot.address), "the keeper's long and B's short net out").to.include({ size: 0n });
    expect(await f.clearinghouse.freeCollateral(f.bot.address)).to.equal(
      freeBefore + cost.payout - cost.posted + r.socialized[0].keeperReward,
    );
    await keeper.stop();
  });

  it("with the empty-list proof over the contract's bounds it reports B, waits, and socializes it with no proof once socialDelay has passed", async function () {
    const f = await loadFixture(richBot);
    await noEligibleBook(f, 3);
    const id = f.ethId;
    const B = f.traders[0].address;
    const book: PositionBook = await fromEvents(
      f.clearinghouse,
      f.deleverager,
      0,
      await ethers.provider.getBlockNumber(),
    );
    const [deltaNow] = await f.deleverager.adlDelta(id, B);
    const proof = buildNoEligibleProof(
      book,
      id,
      LONGS,
      P,
      await f.lens.currentSideFunding(id, LONGS, PENDING),
      deltaNow,
    );
    expect(proof.length, "closed positions leave stale aggregates: the proof opens leaves").to.be.greaterThan(2);
    await (await f.deleverager.setBounds(64, 2, 2000)).wait();
    const log = capture();
    const keeper = await startKeeper(f, log.logger);

    const first = await keeper.tick();
    expect(first.socialized).to.deep.equal([]);
    expect(first.unsettled.map((u) => [u.kind, u.account])).to.deep.equal([["report-unsettled", B]]);
    expect(first.deferred.map((d) => [d.kind, d.account, d.reason])).to.deep.equal([
      ["final-layer-wait", B, "awaiting-deadline"],
    ]);
    const since = await f.deleverager.unsettledSince(id, B);
    const delay = await f.deleverager.socialDelay(id);
    expect(since).to.be.greaterThan(0n);

    // Still early: listed, waiting for since + delay, nothing sent.
    const early = await keeper.tick();
    expect([early.socialized, early.unsettled]).to.deep.equal([[], []]);
    expect(early.deferred.map((d) => d.reason)).to.deep.equal(["awaiting-deadline"]);
    const waiting = log.events().filter((e) => e.event === "final_layer.waiting");
    expect(waiting.at(-1)).to.include({ reason: "awaiting-deadline", due: (since + delay).toString() });

    await time.increaseTo(since + delay);
    // Both feeds again: the keeper reads every market within the strict price window.
    await f.setPrice(ETH, P);
    await f.setPrice(BTC, BTC_PRICE);
    const due = await keeper.tick();
    expect(due.errors).to.deep.equal([]);
    expect(due.socialized.map((s) => [s.bankrupt, s.byDeadline, s.proofNodes])).to.deep.equal([[B, true, 0]]);
    const check = await checked(f, due.socialized[0].txHash);
    expect(check.byDeadline).to.equal(true);
    expect(await f.lens.equity(id, f.bot.address)).to.be.greaterThan(0n);
    await keeper.stop();
  });

  it("without the free collateral for the takeover's initial margin it reports B and warns, sending nothing else", async function () {
    const f = await loadFixture(poorBot);
    await noEligibleBook(f, 3);
    const id = f.ethId;
    const B = f.traders[0].address;
    const log = capture();
    const keeper = await startKeeper(f, log.logger);
    const r = await keeper.tick();
    expect([r.errors, r.socialized, r.adl]).to.deep.equal([[], [], []]);
    expect(r.unsettled.map((u) => [u.kind, u.account])).to.deep.equal([["report-unsettled", B]]);
    expect(r.deferred.map((d) => [d.account, d.reason])).to.deep.equal([[B, "free-collateral"]]);
    const warn = log.events().find((e) => e.event === "socialize.collateral_short")!;
    expect(warn.level).to.equal(40);
    expect(warn).to.include({ needed: mulDivUp(P, WAD / 10n, WAD).toString(), free: (100n * 10n ** 18n).toString() });
    expect(await pos(f, id, B)).to.include({ size: units(1) });
    await keeper.stop();
  });

  it("a charge that bankrupts a late long through the loss index alone sends it through ADL next, against the short the keeper took over", async function () {
    const f = await loadFixture(richBot);
    await noEligibleBook(f, 0); // one late long unit (t2) carries the whole charge
    const id = f.ethId;
    const [B, t2] = [f.traders[0].address, f.traders[2].address];
    const keeper = await startKeeper(f, capture().logger, { liquidationLeverage: 5n * WAD });
    const first = await keeper.tick();
    expect(first.socialized.map((s) => s.bankrupt)).to.deep.equal([B]);
    await checked(f, first.socialized[0].txHash);

    // t2 is bankrupt only at F + L_long: at the raw F it would still hold 490.
    const p = await pos(f, id, t2);
    const rawF = await f.lens.currentFunding(id, PENDING);
    expect(p.margin + divFloor(p.size * (P - rawF - p.entry), WAD)).to.be.greaterThan(0n);
    expect(await f.lens.equity(id, t2, PENDING)).to.be.lessThan(0n);

    const rest = await tickUntilQuiet(keeper);
    const adl = rest.flatMap((r) => r.adl);
    expect(rest.flatMap((r) => r.socialized)).to.deep.equal([]);
    expect(adl.map((a) => [a.bankrupt, a.counterparties])).to.deep.equal([[t2, [f.bot.address]]]);
    for (const a of [...accounts(f)]) {
      expect(await f.lens.equity(id, a, PENDING), `equity of ${a}`).to.be.greaterThanOrEqual(0n);
    }
    expect(await pos(f, id, f.bot.address), "the keeper's short absorbed t2's deficit and closed").to.include({
      size: 0n,
    });
    expect(rest.at(-1)!.holdings).to.deep.equal([]);
    expect(await conservation(f, [f.ethId, f.btcId], accounts(f))).to.be.greaterThanOrEqual(0n);
    await keeper.stop();
  });
});
