/**
 * ADL sessions on the keeper's side: which open session needs which step (a pure function of the
 * sessions read from the chain and the next block's time), the per-transaction limits a continue
 * slice must fit, and the memory of sessions seen across ticks that tells a re-open after an expiry
 * or a challenge (a restart) from a first open. The proof, its split and the step rule itself are
 * lib/adl-session.ts's (buildProofFrom, splitProof, nextSessionStep).
 */
import { getAddress } from "ethers";
import { nextSessionStep, type SessionState, type SplitLimits } from "../../lib/adl-session";
import type { AdlBounds } from "./interfaces";
import type { SessionStepAction } from "./types";

/** The session on one side of one market as read from `adlSession` (id 0n: none open). */
export interface SessionView {
  marketId: string;
  /** The side the session settles against (the counterparties' side: true = longs). */
  side: boolean;
  session: SessionState;
}

/** `${marketId}:${side}` (market id lower-case). */
export const sideKey = (marketId: string, side: boolean): string => `${marketId.toLowerCase()}:${side}`;

/**
 * The step each open session needs, for any bankrupt position (anyone may continue, finish or expire
 * a session). Sessions whose bankrupt position has a transaction of this keeper pending (`isBusy`)
 * are left for the next tick. `now` is the timestamp of the block the next transaction lands in.
 */
export function sessionActions(
  views: readonly SessionView[],
  now: bigint,
  keeper: string,
  isBusy: (marketId: string, account: string) => boolean,
): SessionStepAction[] {
  const out: SessionStepAction[] = [];
  for (const v of views) {
    const s = v.session;
    if (s.id === 0n || isBusy(v.marketId, s.bankrupt)) continue;
    const step = nextSessionStep(s, s.bankrupt, now, keeper);
    // "open" and "wait" cannot come out for a live session asked about its own bankrupt position.
    if (step.kind === "open" || step.kind === "wait") continue;
    out.push({
      kind: "adl-session",
      marketId: v.marketId,
      side: v.side,
      bankrupt: getAddress(s.bankrupt),
      step,
      session: s,
    });
  }
  return out;
}

/**
 * What one continue transaction may carry: the contract's per-call bounds, and a gas budget of the
 * keeper's cap less its headroom (the pipeline adds the headroom to the estimate and refuses a call
 * estimated above the cap).
 */
export function continueLimits(bounds: AdlBounds, gasLimitCap: bigint, gasHeadroomPercent: bigint): SplitLimits {
  const budget = (gasLimitCap * 100n) / (100n + gasHeadroomPercent);
  return {
    gasBudget: Number(budget),
    maxProofNodes: bounds.maxProofNodes,
    maxOpenedMembers: bounds.maxOpenedMembers,
  };
}

/**
 * Sessions seen across ticks: one that disappears from its side without this keeper finishing it
 * (expired, or challenged by a watcher) marks its bankrupt position, so the next open of a session
 * for that position is logged and reported as a restart. In memory only: after a process restart
 * the first open is a plain open.
 */
export class SessionMemory {
  private readonly seen = new Map<string, { id: bigint; marketId: string; bankrupt: string }>();
  private readonly finished = new Set<string>();
  private readonly endedEarly = new Map<string, string>();

  private static positionKey(marketId: string, bankrupt: string): string {
    return `${marketId.toLowerCase()}:${getAddress(bankrupt)}`;
  }

  /** Records the sessions read this tick; any seen before that ended without a finish is a restart cause. */
  observe(views: readonly SessionView[]): void {
    for (const v of views) {
      const key = sideKey(v.marketId, v.side);
      const before = this.seen.get(key);
      if (before && before.id !== v.session.id && !this.finished.has(`${key}:${before.id}`)) {
        this.endedEarly.set(
          SessionMemory.positionKey(before.marketId, before.bankrupt),
          `session ${before.id} ended without a finish`,
        );
      }
      if (v.session.id === 0n) this.seen.delete(key);
      else this.seen.set(key, { id: v.session.id, marketId: v.marketId, bankrupt: v.session.bankrupt });
    }
  }

  /** This keeper finished session `id` on the side. */
  markFinished(marketId: string, side: boolean, id: bigint): void {
    this.finished.add(`${sideKey(marketId, side)}:${id}`);
  }

  /** This keeper expired session `id` for `bankrupt`: the next open for it is a restart. */
  markExpired(marketId: string, bankrupt: string, id: bigint): void {
    this.endedEarly.set(SessionMemory.positionKey(marketId, bankrupt), `session ${id} expired`);
  }

  /** The reason the next open for `bankrupt` is a restart, or undefined. */
  restartReason(marketId: string, bankrupt: string): string | undefined {
    return this.endedEarly.get(SessionMemory.positionKey(marketId, bankrupt));
  }

  /** A session for `bankrupt` opened again: the restart is done. */
  clearRestart(marketId: string, bankrupt: string): void {
    this.endedEarly.delete(SessionMemory.positionKey(marketId, bankrupt));
  }
}
