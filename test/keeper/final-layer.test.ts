/**
 * The keeper's decisions on the final layer (keeper/src/final-layer.ts through decide) on hand-built
 * books: a bankrupt position the fund cannot cover and no eligible counterparty can absorb is
 * socialized with the empty-list proof lib/adl.ts builds; without the free collateral for the
 * takeover, or with the proof over the contract's bounds before the deadline, or with a session open
 * in the market, it is reported and waits with the reason; ADL keeps priority while a list exists;
 * the deadline sends a position ADL would need a session for to the final layer; every position is
 * valued at the F of its own side; the takeover's cost is the taker leg's to the wei; the keeper's
 * own bankrupt position goes to ADL only.
 */
import { expect } from "chai";
import { PositionBook, adlDelta, buildNoEligibleProof, planDeleverage } from "../../lib/adl";
import { bandReference, marketId } from "../../lib/local";
import { WAD, mulDivUp } from "../../lib/math";
import { applyFill, requirementUp } from "../../lib/position";
import {
  chargeStep,
  decide,
  takeoverCost,
  topUpAmount,
  type Action,
  type DecisionState,
  type MarketReading,
} from "../../keeper/src";
import type { SessionView } from "../../keeper/src/sessions";
import type { SessionState } from "../../lib/adl-session";
import { acct, decisionState, marketReading, sessionState } from "../helpers/keeper-decisions";

const ID = marketId("ETH-USD");
const PRICE = 2000n * WAD;
const IMR = WAD / 10n;
const RISK = { imr: IMR, mmr: WAD / 20n, liquidationFee: WAD / 100n, minNotional: 10n * WAD };
const MAX = (1n << 256n) - 1n;
const units = (n: number): bigint => BigInt(Math.round(n * 1000)) * 10n ** 15n;
const usd = (n: number): bigint => BigInt(n) * WAD;
const KEEPER = acct(0xfeed);
const B = acct(3);
const SHORT = acct(4);
const LONGS = true;
const SHORTS = false;

function put(book: PositionBook, account: string, isLong: boolean, size: bigint, entry: bigint, margin: bigint): void {
  book.putPosition(ID, account, isLong, size, entry, margin, bandReference(PRICE));
}

const reading = (over: Partial<MarketReading> = {}): MarketReading =>
  marketReading(ID, PRICE, RISK, { socialDelay: 7200n, ...over });

const state = (book: PositionBook, over: Partial<DecisionState> = {}): DecisionState =>
  decisionState(book, [reading()], { keeper: KEEPER, keeperFree: usd(1000), now: 10_000n, ...over });

/** B: a long of 1 at 2,300 with 115 of margin, equity -185 at 2,000; its only short is 20x: 100 per unit < 185. */
function noEligible(): PositionBook {
  const b = new PositionBook();
  put(b, B, LONGS, units(1), usd(2300), usd(115));
  put(b, SHORT, SHORTS, units(1), usd(2000), usd(100));
  return b;
}

/** The same B against a 2x short: eligible, ADL settles it. */
function eligible(): PositionBook {
  const b = new PositionBook();
  put(b, B, LONGS, units(1), usd(2300), usd(115));
  put(b, SHORT, SHORTS, units(1), usd(2000), usd(1000));
  return b;
}

/**
 * `noEligible` plus a 2x short that opened and closed: its leaf keeps stale, eligible-looking
 * aggregates, so the empty-list proof must open leaves down the tree (more than three nodes).
 */
function noEligibleStale(): PositionBook {
  const b = noEligible();
  const GONE = acct(6);
  put(b, GONE, SHORTS, units(1), usd(2600), usd(1300));
  b.applyPositionChanged({
    marketId: ID,
    account: GONE,
    isLong: SHORTS,
    size: 0n,
    entry: 0n,
    margin: 0n,
    leverage: 0n,
    leaf: 0,
  });
  return b;
}

const kinds = (actions: Action[]) =>
  actions.map((a) => [a.kind, "bankrupt" in a ? a.bankrupt : "account" in a ? a.account : ""]);

function only<K extends Action["kind"]>(actions: Action[], kind: K): Extract<Action, { kind: K }> {
  const found = actions.filter((a) => a.kind === kind);
  expect(found.length, `one ${kind}`).to.equal(1);
  return found[0] as Extract<Action, { kind: K }>;
}

const session = (over: Partial<SessionState>): SessionState => sessionState(PRICE, over);

/** A session open on `side` (the side it settles against), none on the other. */
const sessionOn = (side: boolean): SessionView[] => [
  { marketId: ID, side, session: session({}) },
  { marketId: ID, side: !side, session: session({ id: 0n }) },
];

describe("keeper: the final layer (pure decisions)", function () {
  it("socializes a bankrupt position no eligible counterparty can absorb, with the empty-list proof lib/adl.ts builds", function () {
    const book = noEligible();
    const actions = decide(state(book));
    expect(kinds(actions)).to.deep.equal([["socialize", B]]);
    const s = only(actions, "socialize");
    expect(planDeleverage(book, ID, B, PRICE, 0n, usd(185))).to.equal(undefined);
    expect(s.proof).to.deep.equal(buildNoEligibleProof(book, ID, SHORTS, PRICE, 0n, usd(185)));
    expect([s.byDeadline, s.isLong, s.size, s.price]).to.deep.equal([false, LONGS, units(1), PRICE]);
    expect(s.delta).to.deep.equal({ deficit: usd(185), covered: 0n, sigma: 0n, delta: usd(185) });
    // The keeper is flat: the takeover posts the initial margin, 10% of 2,000; no top-up without a leverage.
    expect([s.takeoverMargin, s.topUp]).to.deep.equal([usd(200), 0n]);
    expect([s.proofNodes, s.openedMembers]).to.deep.equal([s.proof.length, 0]);
  });

  it("tops the taken position up to its liquidation leverage, as far as the free collateral left allows", function () {
    // At 5x the position of 1 at 2,000 wants 400 of margin: 200 on top of the initial margin.
    const full = only(decide(state(noEligible(), { liquidationLeverage: 5n * WAD })), "socialize");
    expect([full.takeoverMargin, full.topUp]).to.deep.equal([usd(200), usd(200)]);
    const part = only(
      decide(state(noEligible(), { liquidationLeverage: 5n * WAD, keeperFree: usd(250) })),
      "socialize",
    );
    expect([part.takeoverMargin, part.topUp]).to.deep.equal([usd(200), usd(50)]);
    // At 1x the whole notional, 2,000: the keeper can never be liquidated on it.
    const oneX = only(decide(state(noEligible(), { liquidationLeverage: WAD, keeperFree: usd(5000) })), "socialize");
    expect(oneX.topUp).to.equal(usd(1800));
  });

  it("without the free collateral for the takeover it reports the position (the deadline clock starts) and waits, saying what it needs", function () {
    const actions = decide(state(noEligible(), { keeperFree: usd(200) - 1n }));
    expect(actions).to.deep.equal([
      { kind: "report-unsettled", marketId: ID, account: B, deficit: usd(185) },
      {
        kind: "final-layer-wait",
        marketId: ID,
        bankrupt: B,
        reason: "free-collateral",
        deficit: usd(185),
        due: 0n,
        needed: usd(200),
        free: usd(200) - 1n,
      },
    ]);
    expect(kinds(decide(state(noEligible(), { keeperFree: usd(200) })))).to.deep.equal([["socialize", B]]);
  });

  it("when the empty-list proof exceeds the contract's bounds it waits for the deadline, then socializes with no proof", function () {
    const book = noEligibleStale();
    const proof = buildNoEligibleProof(book, ID, SHORTS, PRICE, 0n, usd(185));
    expect(proof.length).to.be.greaterThan(3);
    const bounds = { maxListLength: 64, maxProofNodes: 3, maxOpenedMembers: 2000 };
    // Not listed yet: reported, waiting (the clock starts with the report).
    expect(kinds(decide(state(book, { bounds })))).to.deep.equal([
      ["report-unsettled", B],
      ["final-layer-wait", B],
    ]);
    // Listed at 1,000 with T_social 7,200: due at 8,200.
    const listed = reading({ unsettled: new Map([[B, usd(185)]]), unsettledSince: new Map([[B, 1000n]]) });
    const early = decide(state(book, { bounds, markets: [listed], now: 8199n }));
    expect(early).to.deep.equal([
      {
        kind: "final-layer-wait",
        marketId: ID,
        bankrupt: B,
        reason: "awaiting-deadline",
        deficit: usd(185),
        due: 8200n,
      },
    ]);
    const due = only(decide(state(book, { bounds, markets: [listed], now: 8200n })), "socialize");
    expect([due.byDeadline, due.proof, due.proofNodes]).to.deep.equal([true, [], 0]);
    // Within the bounds the proof goes at once, listed or not, deadline or not.
    expect(only(decide(state(book, { markets: [listed], now: 8199n })), "socialize").proof).to.deep.equal(proof);
  });

  it("ADL keeps priority while a list exists: it deleverages even after the deadline; a session's worth of proof goes to the final layer only once the deadline has passed", function () {
    const book = eligible();
    const listed = reading({ unsettled: new Map([[B, usd(185)]]), unsettledSince: new Map([[B, 1000n]]) });
    expect(kinds(decide(state(book, { markets: [listed], now: 9000n })))).to.deep.equal([["deleverage", B]]);
    const tight = { maxListLength: 64, maxProofNodes: 1, maxOpenedMembers: 2000 };
    expect(kinds(decide(state(book, { bounds: tight, markets: [listed], now: 8199n })))).to.deep.equal([
      ["proof-too-large", B],
    ]);
    const late = only(decide(state(book, { bounds: tight, markets: [listed], now: 8200n })), "socialize");
    expect([late.byDeadline, late.proof]).to.deep.equal([true, []]);
    // A session open on B's own side: the final layer cannot run (it would move a pinned F), a session can.
    const ownSide = decide(state(book, { bounds: tight, markets: [listed], now: 8200n, sessions: sessionOn(LONGS) }));
    expect(kinds(ownSide.filter((a) => a.kind !== "adl-session"))).to.deep.equal([["proof-too-large", B]]);
  });

  it("an ADL session anywhere in the market holds the final layer back; one on the counterparties' side holds ADL too; either way the position is reported", function () {
    for (const side of [LONGS, SHORTS]) {
      const actions = decide(state(noEligible(), { sessions: sessionOn(side) }));
      const steps = actions.filter((a) => a.kind === "adl-session");
      expect(kinds(actions.filter((a) => a.kind !== "adl-session"))).to.deep.equal([
        ["report-unsettled", B],
        ["final-layer-wait", B],
      ]);
      expect(steps.length).to.equal(1);
      expect(only(actions, "final-layer-wait").reason).to.equal("session-open");
    }
    const held = decide(state(eligible(), { sessions: sessionOn(SHORTS) }));
    expect(held.some((a) => a.kind === "deleverage")).to.equal(false);
    expect(only(held, "final-layer-wait").reason).to.equal("session-open");
  });

  it("values every position at the F of its own side: a short charged by L_short falls under maintenance, and B's delta and the queue use their sides' F", function () {
    const book = eligible();
    const UNDER = acct(5);
    // A short of 1 at 2,000 with 150 of margin: 150 at F = 0, 90 once 60 per unit was charged to shorts.
    put(book, UNDER, SHORTS, units(1), usd(2000), usd(150));
    expect(decide(state(book)).some((a) => a.kind === "liquidate")).to.equal(false);
    // L_long = 20 lowers B (a long) by 20 per unit; L_short = 60 lowers every short by 60 per unit.
    const m = reading({ fundingLong: usd(20), fundingShort: -usd(60) });
    const actions = decide(state(book, { markets: [m] }));
    const liq = only(actions, "liquidate");
    expect([liq.account, liq.equity]).to.deep.equal([UNDER, usd(90)]);
    const adl = only(actions, "deleverage");
    const delta = adlDelta(book, ID, B, PRICE, usd(20), 0n);
    expect(delta.deficit).to.equal(usd(205));
    expect(adl.delta).to.deep.equal(delta);
    expect(adl.funding).to.equal(-usd(60));
    expect(adl.plan).to.deep.equal(planDeleverage(book, ID, B, PRICE, -usd(60), delta.delta));
  });

  it("the takeover's cost is the taker leg's: the initial margin flat, the margin test's shortfall on the same side, and an opposite holding's payout at its charged F first", function () {
    const m = reading();
    const flat = { isLong: false, size: 0n, entry: 0n, margin: 0n };
    const c0 = takeoverCost(flat, LONGS, units(1), PRICE, m, 0n);
    expect(c0).to.deep.equal({
      needed: usd(200),
      payout: 0n,
      posted: usd(200),
      after: { isLong: LONGS, size: units(1), margin: usd(200) },
      increased: units(1),
    });
    // The same side: one position of 2 at K 1,950 (rounded up for a long) with 100 of margin: 300 more.
    const same = { isLong: LONGS, size: units(1), entry: usd(1900), margin: usd(100) };
    const c1 = takeoverCost(same, LONGS, units(1), PRICE, m, 0n);
    const mirror = applyFill({ ...same, leverage: 0n }, units(1), PRICE, MAX, PRICE, 0n, IMR);
    expect(c1.needed).to.equal(mirror.posted);
    expect(c1.needed).to.equal(usd(300));
    expect(c1.after).to.deep.equal({ isLong: LONGS, size: mirror.position.size, margin: mirror.position.margin });
    // An opposite short of 3 at 2,100 with 630: a third closes, 210 released plus 1 * (2,100 - 2,000 - 50):
    // the 50 per unit the charge puts on shorts first. It pays out, so the takeover needs nothing.
    const bigShort = { isLong: SHORTS, size: units(3), entry: usd(2100), margin: usd(630) };
    const c2 = takeoverCost(bigShort, LONGS, units(1), PRICE, m, usd(50));
    expect(c2).to.deep.equal({
      needed: 0n,
      payout: usd(260),
      posted: 0n,
      after: { isLong: SHORTS, size: units(2), margin: usd(420) },
      increased: 0n,
    });
    expect(topUpAmount(c2, PRICE, WAD, usd(1000)), "nothing added on B's side: no top-up").to.equal(0n);
    // An opposite short of 1 at 1,900 with 190 loses 100 on closing (payout 90), then 2 open long: 400 - 90.
    const smallShort = { isLong: SHORTS, size: units(1), entry: usd(1900), margin: usd(190) };
    const c3 = takeoverCost(smallShort, LONGS, units(3), PRICE, m, 0n);
    expect(c3).to.deep.equal({
      needed: usd(310),
      payout: usd(90),
      posted: usd(400),
      after: { isLong: LONGS, size: units(2), margin: usd(400) },
      increased: units(2),
    });
    // The keeper's holding is read from the book: decide prices it the same way.
    const book = noEligible();
    put(book, KEEPER, LONGS, units(1), usd(1900), usd(100));
    expect(only(decide(state(book)), "socialize").takeoverMargin).to.equal(usd(300));
  });

  it("the charge step is ceil(D_rem * W / Q_side) over the opposite side's open interest in the book", function () {
    const book = noEligible();
    put(book, acct(7), SHORTS, units(2), usd(2000), usd(200));
    const delta = { deficit: usd(185), covered: usd(5), sigma: usd(5), delta: usd(180) };
    expect(chargeStep({ book, market: reading(), bankrupt: B }, delta)).to.equal(mulDivUp(usd(180), WAD, units(3)));
    expect(chargeStep({ book, market: reading(), bankrupt: B }, { ...delta, covered: usd(185) })).to.equal(0n);
  });

  it("the keeper's own bankrupt position goes to ADL only: never liquidated or socialized by itself", function () {
    const own = new PositionBook();
    put(own, KEEPER, LONGS, units(1), usd(2300), usd(115));
    put(own, SHORT, SHORTS, units(1), usd(2000), usd(1000));
    expect(kinds(decide(state(own)))).to.deep.equal([["deleverage", KEEPER]]);
    // The fund could cover it, but only another account may liquidate it.
    expect(decide(state(own, { fundAvailable: usd(1000) }))).to.deep.equal([
      { kind: "final-layer-wait", marketId: ID, bankrupt: KEEPER, reason: "own-position", deficit: usd(185), due: 0n },
    ]);
    const alone = new PositionBook();
    put(alone, KEEPER, LONGS, units(1), usd(2300), usd(115));
    put(alone, SHORT, SHORTS, units(1), usd(2000), usd(100));
    expect(kinds(decide(state(alone)))).to.deep.equal([
      ["report-unsettled", KEEPER],
      ["final-layer-wait", KEEPER],
    ]);
  });

  it("the initial margin it checks is the contract's requirement rounded up", function () {
    const odd = units(1) + 7n;
    const c = takeoverCost({ isLong: false, size: 0n, entry: 0n, margin: 0n }, SHORTS, odd, PRICE + 3n, reading(), 0n);
    expect(c.needed).to.equal(requirementUp(odd, PRICE + 3n, IMR));
  });
});
