/**
 * The crash driven by the project's keeper (keeper/src): after each price step the demo calls
 * `keeper.tick()` until a pass finds nothing left to do (a liquidation can drain the fund and turn
 * the next bankrupt position into an ADL case, and a socialized loss can bankrupt a charged position,
 * which the following pass settles).
 */
import type { Signer } from "ethers";
import pino from "pino";
import { Keeper, MemoryCheckpointStore } from "../../keeper/src";
import { SignerTxSender } from "../../keeper/src/chain/tx-sender";
import type { TxRequest, TxSender } from "../../keeper/src/interfaces";
import type { LocalSystem } from "../../lib/local";
import type { CrashDriver, DriverTick } from "./driver";

const RETRY = { retries: 2, baseDelayMs: 10, maxDelayMs: 50 };
/** The gas the demo's sender claims for every transaction: the keeper sends with 120% of it. */
const DEMO_GAS_ESTIMATE = 12_000_000n;

/**
 * The keeper's own sender, except that it never calls eth_estimateGas: the in-process Hardhat node
 * keeps native memory after every estimate of a heavy call (a gas search runs the call many times),
 * which took the default demo to 13.6 GB. Every transaction is still simulated first (eth_call),
 * then sent with a fixed limit far above what any of the demo's calls use (under 1.2M gas) and
 * below the keeper's per-transaction cap; receipts give the gas actually used.
 */
class FixedGasSender implements TxSender {
  constructor(private readonly inner: TxSender) {}
  get address(): string {
    return this.inner.address;
  }
  simulate(tx: TxRequest): Promise<void> {
    return this.inner.simulate(tx);
  }
  async estimateGas(): Promise<bigint> {
    return DEMO_GAS_ESTIMATE;
  }
  send(tx: TxRequest, gasLimit: bigint): ReturnType<TxSender["send"]> {
    return this.inner.send(tx, gasLimit);
  }
  wait(hash: string, timeoutMs: number): ReturnType<TxSender["wait"]> {
    return this.inner.wait(hash, timeoutMs);
  }
  lookup(hash: string): ReturnType<TxSender["lookup"]> {
    return this.inner.lookup(hash);
  }
}

/** Passes per price step before the demo moves on (each pass re-reads the chain). */
const MAX_PASSES = 8;

export class KeeperDriver implements CrashDriver {
  readonly name = "keeper (keeper/src, Keeper.tick)";

  private constructor(private readonly keeper: Keeper) {}

  /**
   * @param takeoverLeverage the leverage of the margin the keeper posts for positions it takes over.
   * @param fromBlock the deployment block: the keeper replays events from there.
   */
  static async create(
    sys: LocalSystem,
    runner: Signer,
    marketIds: readonly string[],
    takeoverLeverage: bigint,
    fromBlock: number,
  ): Promise<KeeperDriver> {
    // Structured logs go to stderr at "warn": the step log and report stay readable on stdout.
    const logger = pino({ level: process.env.DEMO_KEEPER_LOG ?? "warn" }, pino.destination(2));
    const keeper = await Keeper.create({
      runner,
      addresses: {
        clearinghouse: await sys.clearinghouse.getAddress(),
        deleverager: await sys.deleverager.getAddress(),
        insuranceFund: await sys.insuranceFund.getAddress(),
        lens: await sys.lens.getAddress(),
      },
      markets: [...marketIds],
      logger,
      checkpoint: new MemoryCheckpointStore(),
      txSender: new FixedGasSender(await SignerTxSender.create(runner, { retry: RETRY, pollMs: 5 })),
      options: {
        startBlock: fromBlock,
        liquidationLeverage: takeoverLeverage,
        receiptPollMs: 5,
        retry: RETRY,
      },
    });
    return new KeeperDriver(keeper);
  }

  async tick(): Promise<DriverTick> {
    const problems: string[] = [];
    for (let pass = 1; pass <= MAX_PASSES; pass++) {
      const r = await this.keeper.tick();
      for (const e of r.errors)
        problems.push(`${e.kind} ${e.account ?? ""}: ${e.error.name} ${e.error.args.join(", ")}`.trim());
      for (const d of r.deferred) problems.push(`deferred ${d.kind} ${d.account}: ${d.reason}`);
      const acted = r.liquidations.length + r.adl.length + r.socialized.length + r.unsettled.length + r.sessions.length;
      if (acted === 0) return { passes: pass, problems };
    }
    return { passes: MAX_PASSES, problems };
  }

  async stop(): Promise<void> {
    await this.keeper.stop();
  }
}
