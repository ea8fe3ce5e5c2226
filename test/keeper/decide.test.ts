/**
 * The keeper's pure decisions (keeper/src/decide.ts) on hand-built books: what is liquidated and by
 * how much (checked against the independent spec mirror of the liquidation cap in
 * test/helpers/liquidation.ts), what the fund covers, what goes to ADL with which list (checked
 * against the brute-force ranking buildQueue), what is reported unsettled or cleared, what is left
 * alone (own account, pending transactions, paused markets), and the order of it all.
 */
import { expect } from "chai";
import fc from "fast-check";
import { PositionBook, buildQueue, headOfQueue } from "../../lib/adl";
import { bandReference, marketId } from "../../lib/local";
import { WAD, mulDivUp } from "../../lib/math";
import { equityOf, pnlPerUnit } from "../../lib/position";
import { busyKey, decide, maxTake, type DecisionState, type MarketReading } from "../../keeper/src";
import { maxTake as specMaxTake } from "../helpers/liquidation";
import { acct, decisionState, marketReading } from "../helpers/keeper-decisions";

const ID = marketId("ETH-USD");
const PRICE = 2000n * WAD;
const KREF = bandReference(PRICE);
const RISK = { imr: WAD / 10n, mmr: WAD / 20n, liquidationFee: WAD / 100n, minNotional: 10n * WAD };
const units = (n: number): bigint => BigInt(Math.round(n * 1000)) * 10n ** 15n;
const usd = (n: number): bigint => BigInt(n) * WAD;

function put(book: PositionBook, account: string, isLong: boolean, size: bigint, entry: bigint, margin: bigint): void {
  book.putPosition(ID, account, isLong, size, entry, margin, KREF);
}

const reading = (over: Partial<MarketReading> = {}): MarketReading => marketReading(ID, PRICE, RISK, over);

const state = (book: PositionBook, over: Partial<DecisionState> = {}): DecisionState =>
  decisionState(book, [reading()], over);

const HEALTHY = acct(1);
const UNDER = acct(2);
const BANKRUPT = acct(3);
const SHORT = acct(4);

/** A healthy long, a solvent long under maintenance, a bankrupt long (deficit 185) and a 2x short. */
function book(): PositionBook {
  const b = new PositionBook();
  put(b, HEALTHY, true, units(1), usd(2000), usd(400));
  put(b, UNDER, true, units(1), usd(2100), usd(180)); // equity 80 < 100 maintenance
  put(b, BANKRUPT, true, units(1), usd(2300), usd(115)); // equity -185
  put(b, SHORT, false, units(2), usd(2000), usd(2000));
  return b;
}

describe("keeper decide (pure)", function () {
  it("does nothing while every position is above maintenance", function () {
    const b = new PositionBook();
    put(b, HEALTHY, true, units(1), usd(2000), usd(400));
    put(b, SHORT, false, units(1), usd(2000), usd(400));
    expect(decide(state(b))).to.deep.equal([]);
  });

  it("liquidates a solvent position under maintenance by the cap, and sends a bankrupt one to ADL", function () {
    const actions = decide(state(book(), { fundAvailable: usd(10) }));
    expect(actions.map((a) => a.kind)).to.deep.equal(["liquidate", "deleverage"]);
    const liq = actions[0];
    if (liq.kind !== "liquidate") throw new Error("unreachable");
    const eq = usd(80);
    expect([liq.account, liq.equity, liq.cover, liq.deficit]).to.deep.equal([UNDER, eq, false, 0n]);
    expect(liq.size).to.equal(specMaxTake(units(1), eq, PRICE, { ...RISK, imr: WAD / 10n, liquidatorShare: WAD / 2n }));
    const adl = actions[1];
    if (adl.kind !== "deleverage") throw new Error("unreachable");
    expect(adl.bankrupt).to.equal(BANKRUPT);
    // delta = ceil(D * W / q) - floor(min(A, D) * W / q) with D = 185, A = 10, q = 1.
    expect(adl.delta).to.deep.equal({ deficit: usd(185), covered: usd(10), sigma: usd(10), delta: usd(175) });
    const queue = buildQueue(book(), ID, BANKRUPT, PRICE, 0n, usd(175));
    expect(adl.plan.counterparties).to.deep.equal([queue[0].account]);
    expect(adl.plan.counterparties).to.deep.equal([SHORT]);
    expect(adl.plan.takes).to.deep.equal([units(1)]);
  });

  it("liquidates with cover while the fund covers whole deficits, largest first, then ADL for the rest", function () {
    const b = book();
    const SECOND = acct(5);
    put(b, SECOND, true, units(1), usd(2100), usd(50)); // equity -50
    const actions = decide(state(b, { fundAvailable: usd(200) }));
    // 200 covers the 185 deficit; the 15 left does not cover 50: that one goes to ADL.
    expect(actions.map((a) => [a.kind, "account" in a ? a.account : "bankrupt" in a ? a.bankrupt : ""])).to.deep.equal([
      ["liquidate", UNDER],
      ["liquidate", BANKRUPT],
      ["deleverage", SECOND],
    ]);
    const cover = actions[1];
    if (cover.kind !== "liquidate") throw new Error("unreachable");
    expect([cover.cover, cover.size, cover.deficit]).to.deep.equal([true, units(1), usd(185)]);
    const adl = actions[2];
    if (adl.kind !== "deleverage") throw new Error("unreachable");
    expect(adl.delta.covered).to.equal(usd(15));
  });

  it("reports a bankrupt position with no eligible counterparty once while it cannot take it over, and clears a listed one that recovered", function () {
    const b = new PositionBook();
    put(b, BANKRUPT, true, units(1), usd(2300), usd(115));
    // The only short: 20x entered at 2,000, equity per unit 100 + 0 < delta 185.
    put(b, SHORT, false, units(1), usd(2000), usd(100));
    // No free collateral for the takeover's initial margin (10% of 2,000): reported, and waits.
    const wait = {
      kind: "final-layer-wait",
      marketId: ID,
      bankrupt: BANKRUPT,
      reason: "free-collateral",
      deficit: usd(185),
      due: 0n,
      needed: usd(200),
      free: 0n,
    };
    expect(decide(state(b))).to.deep.equal([
      { kind: "report-unsettled", marketId: ID, account: BANKRUPT, deficit: usd(185) },
      wait,
    ]);
    const listed = reading({ unsettled: new Map([[BANKRUPT, usd(185)]]) });
    expect(decide(state(b, { markets: [listed] }))).to.deep.equal([wait]);
    const recovered = reading({ unsettled: new Map([[acct(9), 0n]]) });
    expect(decide(state(b, { markets: [recovered] })).at(-1)).to.deep.equal({
      kind: "clear-unsettled",
      marketId: ID,
      account: acct(9),
    });
  });

  it("plans at most maxAdlPerTick bankrupt positions per tick, largest deficit first", function () {
    const b = book();
    put(b, acct(5), true, units(1), usd(2400), usd(120)); // equity -280
    put(b, acct(7), true, units(1), usd(2100), usd(50)); // equity -50
    const planned = (n: number) =>
      decide(state(b, { maxAdlPerTick: n }))
        .filter((a) => a.kind === "deleverage")
        .map((a) => (a.kind === "deleverage" ? a.bankrupt : ""));
    expect(planned(1)).to.deep.equal([acct(5)]);
    expect(planned(2)).to.deep.equal([acct(5), BANKRUPT]);
    expect(planned(16)).to.deep.equal([acct(5), BANKRUPT, acct(7)]);
  });

  it("leaves alone its own position, positions with a pending transaction, and paused markets", function () {
    const b = book();
    expect(decide(state(b, { keeper: UNDER, fundAvailable: usd(1000) })).map((a) => a.kind)).to.deep.equal([
      "liquidate",
    ]);
    const busy = new Set([busyKey(ID, UNDER), busyKey(ID, BANKRUPT)]);
    expect(decide(state(b, { busy }))).to.deep.equal([]);
    expect(decide(state(b, { markets: [reading({ paused: true })] }))).to.deep.equal([]);
  });

  it("orders liquidations by equity per notional, lowest first", function () {
    const b = new PositionBook();
    put(b, acct(10), true, units(1), usd(2100), usd(190)); // 90 / 2000
    put(b, acct(11), true, units(2), usd(2100), usd(300)); // 100 / 4000
    put(b, acct(12), true, units(1), usd(2100), usd(170)); // 70 / 2000
    const order = decide(state(b)).map((a) => (a.kind === "liquidate" ? a.account : ""));
    expect(order).to.deep.equal([acct(11), acct(12), acct(10)]);
  });

  it("returns proof-too-large (the session extension point) when the proof exceeds the contract's bounds", function () {
    const bounds = { maxListLength: 64, maxProofNodes: 3, maxOpenedMembers: 2000 };
    const actions = decide(state(book(), { bounds }));
    const big = actions.find((a) => a.kind === "proof-too-large");
    if (!big || big.kind !== "proof-too-large") throw new Error("expected proof-too-large");
    expect(big.bankrupt).to.equal(BANKRUPT);
    expect(big.proofNodes).to.equal(big.plan.proof.length);
    expect(big.proofNodes).to.be.greaterThan(3);
    expect(actions.some((a) => a.kind === "deleverage")).to.equal(false);
  });

  it("refreshes a leaf the proof opens with no member left, and its ancestors, before the call", function () {
    const b = book();
    // A 2x short that opened and closed: its leaf keeps stale aggregates with count 0.
    const GONE = acct(6);
    put(b, GONE, false, units(1), usd(2600), usd(1300));
    b.applyPositionChanged({
      marketId: ID,
      account: GONE,
      isLong: false,
      size: 0n,
      entry: 0n,
      margin: 0n,
      leverage: 0n,
      leaf: 0,
    });
    const actions = decide(state(b, { refreshLooseNodes: true }));
    const refreshes = actions.filter((a) => a.kind === "refresh");
    const adlAt = actions.findIndex((a) => a.kind === "deleverage");
    const adl = actions[adlAt];
    if (adl.kind !== "deleverage") throw new Error("unreachable");
    const empty = adl.plan.proof.filter((n) => n.open && n.members.length === 0);
    expect(empty.length).to.equal(1);
    expect(refreshes.length).to.equal(15);
    expect(refreshes.map((r) => (r.kind === "refresh" ? [r.level, r.position, r.isLong] : []))).to.deep.equal(
      Array.from({ length: 15 }, (_, level) => [level, empty[0].position >> level, false]),
    );
    expect(actions.findIndex((a) => a.kind === "refresh")).to.be.lessThan(adlAt);
    expect(decide(state(b)).some((a) => a.kind === "refresh")).to.equal(false);
  });

  it("maxTake equals the spec mirror on random positions (fixed seed)", function () {
    // Invariant: the keeper's cap is the cap the clearinghouse enforces, as the spec states it.
    fc.assert(
      fc.property(
        fc.bigInt(1n, 10n ** 22n),
        fc.bigInt(-(10n ** 24n), 10n ** 24n),
        fc.bigInt(10n ** 15n, 10n ** 24n),
        fc.bigInt(10n ** 15n, WAD / 5n),
        fc.bigInt(0n, WAD / 20n),
        (q, eq, price, mmr, fee) => {
          const risk = { mmr, liquidationFee: fee, minNotional: 10n * WAD };
          const spec = specMaxTake(q, eq, price, { ...risk, imr: 2n * mmr, liquidatorShare: WAD / 2n });
          expect(maxTake(q, eq, price, risk)).to.equal(spec);
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });

  it("the tree walk yields exactly the brute-force queue on random books, ties included (fixed seed)", function () {
    // Invariant: headOfQueue (best-first over node bounds) lists the same entries in the same order as
    // buildQueue (every position scored and sorted), including equal scores ordered by address.
    const pos = fc.record({
      isLong: fc.boolean(),
      lev: fc.integer({ min: 1, max: 50 }),
      entryBps: fc.integer({ min: -2000, max: 2000 }),
      size: fc.integer({ min: 1, max: 10_000 }),
      twin: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(pos, { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 0, max: 400 }),
        (specs, deltaUsd) => {
          const b = new PositionBook();
          let n = 100;
          for (const s of specs) {
            const entry = (PRICE * BigInt(10_000 + s.entryBps)) / 10_000n;
            const size = (WAD / 100n) * BigInt(s.size);
            const margin = mulDivUp(mulDivUp(size, entry, WAD), WAD, BigInt(s.lev) * WAD);
            put(b, acct(n++), s.isLong, size, entry, margin);
            // A twin with the same (a, K): an equal score, ordered by address only.
            if (s.twin) put(b, acct(n++), s.isLong, size, entry, margin);
          }
          put(b, BANKRUPT, true, units(1), usd(2300), usd(115));
          const delta = usd(deltaUsd);
          const brute = buildQueue(b, ID, BANKRUPT, PRICE, 0n, delta).map((q) => [q.account, q.value]);
          const walked = [...headOfQueue(b, ID, BANKRUPT, PRICE, 0n, delta)].map((q) => [q.account, q.value]);
          expect(walked).to.deep.equal(brute);
          for (const [a] of brute) {
            const p = b.position(ID, a as string);
            expect(equityOf(p.margin, p.size, pnlPerUnit(p.isLong, p.entry, PRICE, 0n))).to.be.greaterThan(0n);
          }
        },
      ),
      { seed: 7, numRuns: 60 },
    );
  });
});
