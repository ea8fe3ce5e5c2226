/**
 * One transaction from decision to receipt: simulate against the pending block (a revert is decoded
 * and returned, nothing is sent), estimate gas (above the cap: not sent), send, journal the hash and
 * save the checkpoint before waiting, then wait for the receipt up to a timeout.
 */
import { decodeError } from "./errors";
import type { Journal } from "./journal";
import type { TxOutcome, TxRequest, TxSender } from "./interfaces";
import type { EventLog } from "./log";
import type { DecodedError, JournalKind } from "./types";

export interface PipelineOptions {
  /** Largest gas limit the keeper sets on a transaction. */
  gasLimitCap: bigint;
  /** Percent added to the estimate. */
  gasHeadroomPercent: bigint;
  receiptTimeoutMs: number;
}

export type PipelineResult =
  | { status: "mined"; outcome: TxOutcome; gasLimit: bigint }
  | { status: "reverted"; outcome: TxOutcome; error: DecodedError }
  | { status: "rejected"; error: DecodedError }
  | { status: "gas-above-cap"; estimate: bigint }
  | { status: "timeout"; hash: string }
  | { status: "send-failed"; error: DecodedError };

export class TxPipeline {
  constructor(
    private readonly sender: TxSender,
    private readonly journal: Journal,
    private readonly persist: () => Promise<void>,
    private readonly log: EventLog,
    private readonly opts: PipelineOptions,
  ) {}

  /** Simulation only: undefined if the call would succeed, else its decoded revert. */
  async simulate(tx: TxRequest): Promise<DecodedError | undefined> {
    try {
      await this.sender.simulate(tx);
      return undefined;
    } catch (e) {
      return decodeError(e);
    }
  }

  async run(
    kind: JournalKind,
    marketId: string,
    account: string,
    tx: TxRequest,
    simulated = false,
  ): Promise<PipelineResult> {
    if (!simulated) {
      const rejected = await this.simulate(tx);
      if (rejected) return { status: "rejected", error: rejected };
    }
    let estimate: bigint;
    try {
      estimate = await this.sender.estimateGas(tx);
    } catch (e) {
      return { status: "rejected", error: decodeError(e) };
    }
    const gasLimit = (estimate * (100n + this.opts.gasHeadroomPercent)) / 100n;
    if (estimate > this.opts.gasLimitCap) return { status: "gas-above-cap", estimate };
    const limit = gasLimit > this.opts.gasLimitCap ? this.opts.gasLimitCap : gasLimit;
    let sent: { hash: string; nonce: number };
    try {
      sent = await this.sender.send(tx, limit);
    } catch (e) {
      return { status: "send-failed", error: decodeError(e) };
    }
    this.journal.record(kind, marketId, account, sent.hash, sent.nonce);
    // Persist before waiting: a restart from here on knows this transaction exists.
    await this.persist();
    this.log.debug("tx.sent", { kind, marketId, account, txHash: sent.hash, nonce: sent.nonce, gasLimit: limit });
    const outcome = await this.sender.wait(sent.hash, this.opts.receiptTimeoutMs);
    if (!outcome) return { status: "timeout", hash: sent.hash };
    this.journal.settle(sent.hash, outcome.status === "success" ? "confirmed" : "reverted", outcome.block);
    await this.persist();
    if (outcome.status !== "success") {
      // The revert reason is not in the receipt; replaying would need the pre-state, so name it plainly.
      return {
        status: "reverted",
        outcome,
        error: { name: "RevertedOnChain", args: [], message: `mined reverted in block ${outcome.block}` },
      };
    }
    return { status: "mined", outcome, gasLimit: limit };
  }
}
