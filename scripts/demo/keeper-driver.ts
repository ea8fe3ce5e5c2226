/**
 * The crash driven by the project's keeper (keeper/src): after each price step the demo calls
 * `keeper.tick()` until a pass finds nothing left to do (a liquidation can drain the fund and turn
 * the next bankrupt position into an ADL case, which the following pass settles).
 */
import type { Signer } from "ethers";
import pino from "pino";
import { Keeper, MemoryCheckpointStore } from "../../keeper/src";
import type { LocalSystem } from "../../lib/local";
import type { CrashDriver, DriverTick } from "./driver";

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
      options: {
        startBlock: fromBlock,
        liquidationLeverage: takeoverLeverage,
        receiptPollMs: 5,
        retry: { retries: 2, baseDelayMs: 10, maxDelayMs: 50 },
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
      const acted = r.liquidations.length + r.adl.length + r.unsettled.length + r.sessions.length;
      if (acted === 0) return { passes: pass, problems };
    }
    return { passes: MAX_PASSES, problems };
  }

  async stop(): Promise<void> {
    await this.keeper.stop();
  }
}
