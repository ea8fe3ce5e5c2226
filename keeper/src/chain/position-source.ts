/**
 * PositionSource from PositionChanged (clearinghouse) and NodeRefreshed (deleverager) logs, queried
 * in block pages; progress is kept per page, so a failure mid-way resumes where it stopped. A page
 * the node refuses as too large is halved and retried.
 */
import type { Log, Provider } from "ethers";
import { PositionBook } from "../../../lib/adl";
import { AutoDeleverager__factory, Clearinghouse__factory } from "../../../typechain-types";
import type { PositionSource } from "../interfaces";
import { withRetry, type RetryPolicy } from "../retry";

const POSITION_CHANGED = Clearinghouse__factory.createInterface().getEvent("PositionChanged").topicHash;
const NODE_REFRESHED = AutoDeleverager__factory.createInterface().getEvent("NodeRefreshed").topicHash;
const RANGE_TOO_LARGE = /range|too many|limit exceeded|more than \d+ results|response size/i;

export interface EventSourceOptions {
  clearinghouse: string;
  deleverager: string;
  /** Blocks per getLogs query. */
  pageSize: number;
  retry: RetryPolicy;
  /** Called after each applied page (for progress logs). */
  onPage?: (fromBlock: number, toBlock: number, logs: number) => void;
}

export class EventPositionSource implements PositionSource {
  private pageSize: number;

  constructor(
    private readonly provider: Provider,
    readonly book: PositionBook,
    public lastBlock: number,
    private readonly opts: EventSourceOptions,
  ) {
    this.pageSize = opts.pageSize;
  }

  async sync(toBlock: number): Promise<number> {
    let applied = 0;
    while (this.lastBlock < toBlock) {
      const from = this.lastBlock + 1;
      const to = Math.min(from + this.pageSize - 1, toBlock);
      let logs: Log[];
      try {
        logs = await withRetry(() => this.page(from, to), this.opts.retry);
      } catch (e) {
        if (this.pageSize > 1 && RANGE_TOO_LARGE.test(e instanceof Error ? e.message : String(e))) {
          this.pageSize = Math.max(1, Math.floor(this.pageSize / 2));
          continue;
        }
        throw e;
      }
      logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
      for (const log of logs) this.book.applyLog(log);
      applied += logs.length;
      this.lastBlock = to;
      this.opts.onPage?.(from, to, logs.length);
    }
    return applied;
  }

  private async page(fromBlock: number, toBlock: number): Promise<Log[]> {
    const [changed, refreshed] = await Promise.all([
      this.provider.getLogs({ address: this.opts.clearinghouse, topics: [POSITION_CHANGED], fromBlock, toBlock }),
      this.provider.getLogs({ address: this.opts.deleverager, topics: [NODE_REFRESHED], fromBlock, toBlock }),
    ]);
    return [...changed, ...refreshed];
  }
}
