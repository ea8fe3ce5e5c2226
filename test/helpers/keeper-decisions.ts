/**
 * Builders of the keeper's pure decision inputs (keeper/src/decide.ts) for hand-built books: a market
 * reading, the decision state and a session record, each with neutral defaults a test overrides.
 */
import { getAddress } from "ethers";
import type { PositionBook } from "../../lib/adl";
import type { SessionState } from "../../lib/adl-session";
import type { DecisionState, MarketReading } from "../../keeper/src";

/** A checksummed address from a small number. */
export const acct = (n: number): string => getAddress(`0x${n.toString(16).padStart(40, "0")}`);

/** A market reading at `price` with no funding, no loss index, nothing unsettled. */
export function marketReading(
  marketId: string,
  price: bigint,
  risk: MarketReading["risk"],
  over: Partial<MarketReading> = {},
): MarketReading {
  return {
    marketId,
    price,
    funding: 0n,
    fundingLong: 0n,
    fundingShort: 0n,
    risk,
    paused: false,
    unsettled: new Map(),
    unsettledSince: new Map(),
    socialDelay: 0n,
    ...over,
  };
}

/** The decision state over `book` and `markets`: default bounds, nothing busy, no free collateral. */
export function decisionState(
  book: PositionBook,
  markets: MarketReading[],
  over: Partial<DecisionState> = {},
): DecisionState {
  return {
    book,
    markets,
    fundAvailable: 0n,
    keeper: acct(0xfeed),
    keeperFree: 0n,
    bounds: { maxListLength: 64, maxProofNodes: 512, maxOpenedMembers: 2000 },
    busy: new Set(),
    maxEntries: 64,
    refreshLooseNodes: false,
    maxAdlPerTick: 16,
    ...over,
  };
}

/** An open session record at `price`: cursor 40, nothing held, no reserve or bond, no entries. */
export function sessionState(price: bigint, over: Partial<SessionState> = {}): SessionState {
  return {
    id: 7n,
    bankrupt: acct(9),
    openedAt: 100n,
    deadline: 1_000_000n,
    cursor: 40,
    held: false,
    heldLast: acct(0),
    heldTally: 0n,
    holder: acct(0),
    holdUntil: 0n,
    price,
    funding: 0n,
    sigma: 0n,
    delta: 0n,
    lastScore: 0n,
    lastAccount: acct(0),
    reserveTokens: 0n,
    opener: acct(0),
    bondTokens: 0n,
    entries: [],
    ...over,
  };
}
