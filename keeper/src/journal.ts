/**
 * The journal of sent transactions. An entry is written (and the checkpoint saved) right after the
 * node accepts a transaction and before the keeper waits for it, so a keeper restarted at any point
 * knows what it already sent: it looks each pending hash up before deciding anything, and leaves
 * the position alone while its transaction is pending or mined but not yet in the book.
 */
import type { JournalEntry, JournalKind, JournalStatus } from "./types";
import { busyKey } from "./decide";

/** Settled entries kept for inspection; older ones are dropped. */
export const JOURNAL_KEEP = 200;

export class Journal {
  constructor(private entries: JournalEntry[] = []) {}

  all(): readonly JournalEntry[] {
    return this.entries;
  }

  /** Entries whose transaction has not been seen mined or dropped. */
  pending(): JournalEntry[] {
    return this.entries.filter((e) => e.status === "sent");
  }

  record(kind: JournalKind, marketId: string, account: string, txHash: string, nonce: number): JournalEntry {
    const entry: JournalEntry = {
      key: `${kind}:${busyKey(marketId, account)}`,
      kind,
      marketId,
      account,
      txHash,
      nonce,
      status: "sent",
      sentAt: new Date().toISOString(),
    };
    this.entries.push(entry);
    return entry;
  }

  settle(txHash: string, status: Exclude<JournalStatus, "sent">, block?: number): JournalEntry | undefined {
    const e = this.entries.find((x) => x.txHash === txHash);
    if (!e) return undefined;
    e.status = status;
    if (block !== undefined) e.block = block;
    this.prune();
    return e;
  }

  /**
   * Positions not to act on: a transaction pending, or mined in a block the book has not reached
   * (its effect is not visible to the decision yet).
   */
  busy(bookBlock: number): Set<string> {
    const out = new Set<string>();
    for (const e of this.entries) {
      const unseen = e.status === "sent" || (e.status !== "dropped" && (e.block ?? 0) > bookBlock);
      if (unseen) out.add(busyKey(e.marketId, e.account));
    }
    return out;
  }

  private prune(): void {
    const settled = this.entries.filter((e) => e.status !== "sent");
    if (settled.length <= JOURNAL_KEEP) return;
    const drop = new Set(settled.slice(0, settled.length - JOURNAL_KEEP));
    this.entries = this.entries.filter((e) => !drop.has(e));
  }
}
