/**
 * TxSender for an ethers Signer: simulation against the pending block, gas estimation, sends with
 * a locally tracked nonce (resynchronised from the node on a nonce error), receipts by polling (the
 * in-process Hardhat provider has no waitForTransaction).
 */
import type { Provider, Signer, TransactionReceipt } from "ethers";
import { isNonceError } from "../errors";
import type { TxOutcome, TxRequest, TxSender } from "../interfaces";
import { sleep, withRetry, type RetryPolicy } from "../retry";

export interface SignerTxSenderOptions {
  retry: RetryPolicy;
  /** Receipt polling interval. */
  pollMs: number;
  /** Fee caps (wei); undefined lets the signer price the transaction. */
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
}

const outcome = (r: TransactionReceipt): TxOutcome => ({
  hash: r.hash,
  status: r.status === 1 ? "success" : "reverted",
  block: r.blockNumber,
  gasUsed: r.gasUsed,
  logs: r.logs,
});

export class SignerTxSender implements TxSender {
  private nextNonce: number | undefined;

  private constructor(
    private readonly signer: Signer,
    private readonly provider: Provider,
    readonly address: string,
    private readonly opts: SignerTxSenderOptions,
  ) {}

  static async create(signer: Signer, opts: SignerTxSenderOptions): Promise<SignerTxSender> {
    if (!signer.provider) throw new Error("the keeper's signer has no provider");
    return new SignerTxSender(signer, signer.provider, await signer.getAddress(), opts);
  }

  async simulate(tx: TxRequest): Promise<void> {
    await withRetry(
      () => this.provider.call({ to: tx.to, data: tx.data, from: this.address, blockTag: "pending" }),
      this.opts.retry,
    );
  }

  async estimateGas(tx: TxRequest): Promise<bigint> {
    return withRetry(
      () => this.provider.estimateGas({ to: tx.to, data: tx.data, from: this.address }),
      this.opts.retry,
    );
  }

  async send(tx: TxRequest, gasLimit: bigint): Promise<{ hash: string; nonce: number }> {
    for (let attempt = 0; ; attempt++) {
      if (this.nextNonce === undefined) {
        this.nextNonce = await withRetry(
          () => this.provider.getTransactionCount(this.address, "pending"),
          this.opts.retry,
        );
      }
      const nonce = this.nextNonce;
      try {
        // Retrying a transient failure with the same nonce cannot send twice: the node keeps one.
        const sent = await withRetry(
          () =>
            this.signer.sendTransaction({
              to: tx.to,
              data: tx.data,
              gasLimit,
              nonce,
              maxFeePerGas: this.opts.maxFeePerGas,
              maxPriorityFeePerGas: this.opts.maxPriorityFeePerGas,
            }),
          this.opts.retry,
        );
        this.nextNonce = nonce + 1;
        return { hash: sent.hash, nonce };
      } catch (e) {
        this.nextNonce = undefined;
        if (attempt === 0 && isNonceError(e)) continue;
        throw e;
      }
    }
  }

  async wait(hash: string, timeoutMs: number): Promise<TxOutcome | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await withRetry(() => this.provider.getTransactionReceipt(hash), this.opts.retry);
      if (r) return outcome(r);
      if (Date.now() >= deadline) return null;
      await sleep(Math.min(this.opts.pollMs, Math.max(1, deadline - Date.now())));
    }
  }

  async lookup(hash: string): Promise<{ state: "mined"; outcome: TxOutcome } | { state: "pending" | "unknown" }> {
    const r = await withRetry(() => this.provider.getTransactionReceipt(hash), this.opts.retry);
    if (r) return { state: "mined", outcome: outcome(r) };
    const t = await withRetry(() => this.provider.getTransaction(hash), this.opts.retry);
    return { state: t ? "pending" : "unknown" };
  }
}
