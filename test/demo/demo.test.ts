/**
 * The main job on a small scenario (30 traders, seed 3, a 1,500 stake on top of the trading
 * fees), run through the same code as `npm run demo` with the project's keeper: the crash must
 * produce liquidations, ADL calls and, in the thin market, a socialized loss (no opposite position
 * eligible), reported in chain order with the fund and ADL settlements; every invariant of
 * docs/mechanism.md sections 5 and 7.6 must pass, and a second
 * run of the same seed from the same chain state must give a byte-identical JSON report. The
 * invariant checks themselves are shown able to fail: a ledger with one wei moved, open interest
 * unbalanced or a margin at zero, and an ADL list with two entries swapped, are each rejected.
 * Every ADL list is also re-derived from the JSON report alone (the recorded opposite side, P, F
 * and delta), as an outsider would.
 */
import { expect } from "chai";
import hre from "hardhat";
import {
  checkLedger,
  discoverAccounts,
  readLedger,
  type AdlCallCheck,
  type InvariantSystem,
  type Ledger,
} from "../../lib/invariants";
import { compareWithHead, headOfQueue, rankOpposite } from "../../lib/reference-ranking";
import { WAD, mulDivUp } from "../../lib/math";
import { toJson } from "../../scripts/demo/json";
import { REQUIRED_INVARIANTS, formatReport, type DemoReport } from "../../scripts/demo/report";
import { runDemo } from "../../scripts/demo/run";
import { parseOptions } from "../../scripts/demo/scenario";
import { AutoDeleverager__factory, Clearinghouse__factory, InsuranceFund__factory } from "../../typechain-types";

const OPTIONS = parseOptions({ seed: 3, traders: 30, fundStake: 1_500, crashDepth: 45 });

/** A deep copy of a ledger (Maps included). */
const copy = (l: Ledger): Ledger => structuredClone(l);

describe("demo: a market crash settled end to end", function () {
  this.timeout(900_000);
  let first: DemoReport;
  let second: DemoReport;

  before(async function () {
    const snapshot: string = await hre.network.provider.send("evm_snapshot");
    first = (await runDemo(hre, OPTIONS)).report;
    await hre.network.provider.send("evm_revert", [snapshot]);
    second = (await runDemo(hre, OPTIONS)).report;
  });

  it("liquidates, drains the fund and deleverages bankrupt positions", function () {
    const s = first.summary;
    expect(s.liquidations, "liquidations").to.be.greaterThan(0);
    expect(s.bankruptLiquidations, "bankrupt parts the fund covered").to.be.greaterThan(0);
    expect(s.adlCalls, "ADL calls").to.be.greaterThan(0);
    expect(s.adlLegs).to.be.greaterThanOrEqual(s.adlCalls);
    expect(s.absorbedByCounterparties, "counterparties absorbed part of the deficits").to.be.greaterThan(0n);
    // The late entrants after the gap are too thin to absorb the loss per unit: some call skipped them.
    expect(
      first.adlCalls.some((a) => a.opposite.some((o) => !o.eligible)),
      "an ineligible position skipped",
    ).to.equal(true);
    // Every ADL call's record carries the whole opposite side before it, in which each leg is ranked.
    for (const a of first.adlCalls) {
      expect(a.opposite.length).to.be.greaterThanOrEqual(a.legs.length);
      a.legs.forEach((leg, i) => {
        const o = a.opposite.find((p) => p.account === leg.account)!;
        expect(o.queuePosition, `queue position of ${leg.account}`).to.equal(i);
        expect(o.score).to.equal(leg.score);
      });
    }
  });

  it("reaches the final layer: a gap leaves a bankrupt position no opposite position can absorb, and the keeper socializes it", function () {
    const s = first.summary;
    expect(s.socializations, "socialized losses").to.be.greaterThan(0);
    const x = first.socializedLosses[0];
    expect([x.market, x.byDeadline, x.oppositeEligible]).to.deep.equal(["SOL-USD", false, 0]);
    expect(x.oppositePositions, "late shorts, all ineligible").to.be.greaterThan(0);
    expect(x.lossSocialized, "D_rem charged to the opposite side").to.be.greaterThan(0n);
    expect(x.fundPaid + x.lossSocialized).to.equal(x.deficit);
    expect(x.lossIndex).to.equal(x.lossIndexBefore + mulDivUp(x.lossSocialized, WAD, x.openInterest));
    expect(x.taker, "the keeper took the position over").to.equal(
      Object.keys(first.roles).find((a) => first.roles[a] === "keeper"),
    );
    expect(x.results.every((r) => r.pass)).to.equal(true);
    // The report lists every settlement in chain order, by layer, the socialized one with its amounts.
    const layers = first.settlements.map((t) => t.layer);
    expect(new Set(layers)).to.deep.equal(new Set(["fund", "ADL", "socialized"]));
    const blocks = first.settlements.map((t) => t.block);
    expect(blocks).to.deep.equal([...blocks].sort((u, v) => u - v));
    const row = first.settlements.find((t) => t.layer === "socialized")!;
    expect(row).to.deep.include({
      market: x.market,
      bankrupt: x.bankrupt,
      fundPaid: x.fundPaid,
      lossSocialized: x.lossSocialized,
      openInterest: x.openInterest,
      lossIndex: x.lossIndex,
      taker: x.taker,
    });
    const text = formatReport(first);
    expect(text).to.include("Socialized #1 (step 2, SOL-USD");
    expect(text).to.include("trigger empty-list proof (no eligible counterparty)");
    expect(text).to.match(/\n {2}2 +\d+ +SOL-USD +socialized +T\d{3} /);
    expect(text).to.include("Keeper's positions at the end");
  });

  it("passes every invariant of docs/mechanism.md sections 5 and 7.6, each checked at least once", function () {
    for (const name of REQUIRED_INVARIANTS) {
      const inv = first.invariants.find((i) => i.name === name)!;
      expect(inv.status, `${name}: ${inv.detail}`).to.equal("pass");
      expect(inv.checks, name).to.be.greaterThan(0);
    }
    expect(first.pass).to.equal(true);
    expect(first.steps.every((s) => s.keeperProblems.length === 0)).to.equal(true);
  });

  it("gives the same JSON report for the same seed", function () {
    expect(first.adlCalls.length).to.be.greaterThan(0);
    expect(toJson(second)).to.equal(toJson(first));
  });

  it("lets anyone re-derive every ADL list from the JSON alone", function () {
    type Json = Record<string, string | number | boolean | null>;
    const calls = (
      JSON.parse(toJson(first)) as { adlCalls: (Json & { opposite: Json[]; legs: Json[]; bankruptBefore: Json })[] }
    ).adlCalls;
    expect(calls.length).to.equal(first.adlCalls.length);
    for (const c of calls) {
      const big = (v: unknown): bigint => BigInt(v as string);
      const b = c.bankruptBefore;
      const bankrupt = {
        account: b.account as string,
        isLong: b.isLong as boolean,
        size: big(b.size),
        entry: big(b.entry),
        margin: big(b.margin),
        leverage: big(b.leverage),
      };
      const opposite = c.opposite.map((o) => ({
        account: o.account as string,
        isLong: !bankrupt.isLong,
        size: big(o.size),
        entry: big(o.entry),
        margin: big(o.margin),
        leverage: big(o.leverage),
      }));
      const { queue } = rankOpposite(opposite, bankrupt, big(c.price), big(c.funding), big(c.delta));
      const head = headOfQueue(queue, bankrupt.size, c.legs.length);
      const legs = c.legs.map((l) => ({
        account: l.account as string,
        take: big(l.take),
        score: big(l.score),
        queuePosition: big(l.queuePosition),
      }));
      expect(compareWithHead(legs, head), `call ${c.txHash}`).to.deep.equal([]);
    }
  });

  it("the checks fail on a tampered ledger or list", async function () {
    // The chain is at the end of the second run: read its final ledger.
    const runner = hre.ethers.provider;
    const sys: InvariantSystem = {
      clearinghouse: Clearinghouse__factory.connect(second.contracts.clearinghouse, runner),
      insuranceFund: InsuranceFund__factory.connect(second.contracts.insuranceFund, runner),
      deleverager: AutoDeleverager__factory.connect(second.contracts.deleverager, runner),
    };
    const block = await hre.ethers.provider.getBlockNumber();
    const ids = second.markets.map((m) => m.id);
    const ledger = await readLedger(sys, ids, await discoverAccounts(sys, block), block);
    const verdict = (l: Ledger, name: string, previous?: Ledger) =>
      checkLedger(l, { previous }).results.find((r) => r.name === name)!.pass;
    expect(verdict(ledger, "conservation")).to.equal(true);
    expect(verdict(ledger, "conservation", ledger)).to.equal(true);

    // One wei more owed than before: the dust shrinks, which only rounding in the system's favour
    // may not do. More than the dust: it turns negative, even without a previous ledger.
    const { dust } = checkLedger(ledger);
    const [someone, free] = [...ledger.free.entries()].find(([, v]) => v > 0n)!;
    const oneWei = copy(ledger);
    oneWei.free.set(someone, free + 1n);
    expect(verdict(oneWei, "conservation", ledger)).to.equal(false);
    const leak = copy(ledger);
    leak.free.set(someone, free + dust / 10n ** 18n + 1n);
    expect(verdict(leak, "conservation")).to.equal(false);

    const unbalanced = copy(ledger);
    const eth = unbalanced.positions.get(ids[0])!;
    const [acct, p] = [...eth.entries()][0];
    eth.set(acct, { ...p, size: p.size + 1n });
    expect(verdict(unbalanced, "open interest balanced")).to.equal(false);

    const zero = copy(ledger);
    const z = zero.positions.get(ids[0])!;
    z.set(acct, { ...p, margin: 0n });
    expect(verdict(zero, "every open position c > 0")).to.equal(false);

    const call: AdlCallCheck | undefined = first.adlCalls.find((a) => a.legs.length >= 2);
    expect(call, "an ADL call with two or more counterparties").to.not.equal(undefined);
    expect(compareWithHead(call!.legs, call!.referenceHead)).to.deep.equal([]);
    const swapped = [call!.legs[1], call!.legs[0], ...call!.legs.slice(2)];
    const shorter = call!.legs.slice(0, -1);
    expect(compareWithHead(swapped, call!.referenceHead)).to.not.deep.equal([]);
    expect(compareWithHead(shorter, call!.referenceHead)).to.not.deep.equal([]);
  });
});
