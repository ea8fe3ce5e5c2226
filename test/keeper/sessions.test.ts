/**
 * The keeper's session decisions (keeper/src/sessions.ts, keeper/src/decide.ts) on a hand-built book:
 * an open session gets its next step (continue, finish, expire, wait out a foreign hold) whoever
 * opened it, its bankrupt position gets no second plan, no single-transaction ADL is planned against
 * its side, a pending transaction of the keeper leaves it alone; SessionMemory tells a re-open after a
 * session ended without a finish (a restart) from one after a finish.
 */
import { expect } from "chai";
import { PositionBook } from "../../lib/adl";
import type { SessionState } from "../../lib/adl-session";
import { bandReference, marketId } from "../../lib/local";
import { WAD } from "../../lib/math";
import { busyKey, decide, type DecisionState } from "../../keeper/src";
import { SessionMemory, continueLimits, type SessionView } from "../../keeper/src/sessions";
import { acct, decisionState, marketReading, sessionState } from "../helpers/keeper-decisions";

const ID = marketId("ETH-USD");
const PRICE = 2000n * WAD;
const usd = (n: number): bigint => BigInt(n) * WAD;
const KEEPER = acct(0xfeed);
const B = acct(3);
const B2 = acct(5);
const SHORT = acct(4);
const LEAVES = 1 << 14;

function put(book: PositionBook, account: string, isLong: boolean, size: bigint, entry: bigint, margin: bigint): void {
  book.putPosition(ID, account, isLong, size, entry, margin, bandReference(PRICE));
}

/** Two bankrupt longs (deficits 185 and 85) and a 2x short that can settle either. */
function book(): PositionBook {
  const b = new PositionBook();
  put(b, B, true, WAD, usd(2300), usd(115));
  put(b, B2, true, WAD, usd(2200), usd(115));
  put(b, SHORT, false, 2n * WAD, usd(2000), usd(2000));
  return b;
}

const session = (over: Partial<SessionState> = {}): SessionState =>
  sessionState(PRICE, { bankrupt: B, deadline: 1000n, lastAccount: SHORT, entries: [SHORT], ...over });

const shorts = (s: SessionState): SessionView[] => [
  { marketId: ID, side: false, session: s },
  { marketId: ID, side: true, session: session({ id: 0n }) },
];

const RISK = { imr: WAD / 10n, mmr: WAD / 20n, liquidationFee: WAD / 100n, minNotional: 10n * WAD };
const state = (over: Partial<DecisionState> = {}): DecisionState =>
  decisionState(book(), [marketReading(ID, PRICE, RISK)], { keeper: KEEPER, now: 500n, ...over });

describe("keeper sessions (pure)", function () {
  it("without a session both bankrupt longs get a single-transaction plan", function () {
    const kinds = decide(state({ sessions: shorts(session({ id: 0n })) })).map((a) => [
      a.kind,
      "bankrupt" in a ? a.bankrupt : "",
    ]);
    expect(kinds).to.deep.equal([
      ["deleverage", B],
      ["deleverage", B2],
    ]);
  });

  it("an open session gets its next step and blocks single-transaction ADL against its side (the other position is reported and waits)", function () {
    const cases: [Partial<SessionState>, bigint, string][] = [
      [{}, 500n, "continue"],
      [{ cursor: LEAVES }, 500n, "finish"],
      [{ cursor: LEAVES }, 1001n, "expire"],
      [{ held: true, holder: acct(0xbeef), holdUntil: 600n }, 500n, "hold"],
      [{ held: true, holder: acct(0xbeef), holdUntil: 600n }, 601n, "continue"],
      [{ held: true, holder: KEEPER, holdUntil: 600n }, 500n, "continue"],
    ];
    for (const [over, now, expected] of cases) {
      const actions = decide(state({ sessions: shorts(session(over)), now }));
      expect(
        actions.map((a) => [a.kind, "bankrupt" in a ? a.bankrupt : "account" in a ? a.account : ""]),
      ).to.deep.equal([
        ["adl-session", B],
        ["report-unsettled", B2],
        ["final-layer-wait", B2],
      ]);
      const wait = actions[2];
      expect(wait.kind === "final-layer-wait" && wait.reason).to.equal("session-open");
      const step = actions[0];
      if (step.kind !== "adl-session") throw new Error("expected a session step");
      expect([step.step.kind, step.bankrupt, step.side, step.session.id]).to.deep.equal([expected, B, false, 7n]);
    }
    // A foreign hold that lapsed is restarted from the leaf's first member; the keeper's own is resumed.
    const lapsed = decide(
      state({ sessions: shorts(session({ held: true, holder: acct(0xbeef), holdUntil: 600n })), now: 601n }),
    )[0];
    expect(lapsed.kind === "adl-session" && lapsed.step).to.deep.equal({ kind: "continue", restart: true });
  });

  it("a session opened by someone else for another position is driven too", function () {
    const actions = decide(state({ sessions: shorts(session({ bankrupt: B2 })) }));
    expect(actions.map((a) => [a.kind, "bankrupt" in a ? a.bankrupt : "account" in a ? a.account : ""])).to.deep.equal([
      ["adl-session", B2],
      ["report-unsettled", B],
      ["final-layer-wait", B],
    ]);
  });

  it("leaves a session alone while the keeper's transaction on its bankrupt position is pending", function () {
    const actions = decide(state({ sessions: shorts(session()), busy: new Set([busyKey(ID, B)]) }));
    expect(actions.filter((a) => a.kind === "adl-session")).to.deep.equal([]);
    expect(actions.some((a) => "bankrupt" in a && a.bankrupt === B)).to.equal(false);
  });

  it("a paused market's session is left alone", function () {
    const s = state({ sessions: shorts(session()) });
    s.markets = [{ ...s.markets[0], paused: true }];
    expect(decide(s)).to.deep.equal([]);
  });

  it("SessionMemory: a session gone without this keeper's finish makes the next open a restart", function () {
    const m = new SessionMemory();
    m.observe(shorts(session()));
    m.observe(shorts(session({ id: 0n })));
    expect(m.restartReason(ID, B)).to.equal("session 7 ended without a finish");
    m.clearRestart(ID, B);
    expect(m.restartReason(ID, B)).to.equal(undefined);
    m.observe(shorts(session({ id: 8n })));
    m.markFinished(ID, false, 8n);
    m.observe(shorts(session({ id: 0n })));
    expect(m.restartReason(ID, B)).to.equal(undefined);
    m.markExpired(ID, B2, 9n);
    expect(m.restartReason(ID, B2)).to.equal("session 9 expired");
  });

  it("continue limits: the contract's bounds and the gas cap less the headroom", function () {
    const limits = continueLimits({ maxListLength: 64, maxProofNodes: 40, maxOpenedMembers: 300 }, 15_000_000n, 20n);
    expect(limits).to.deep.equal({ gasBudget: 12_500_000, maxProofNodes: 40, maxOpenedMembers: 300 });
  });
});
