/**
 * The Keeper: follows blocks, keeps its book from events, decides (pure, keeper/src/decide.ts) and
 * executes (keeper/src/execute.ts), persisting the book, the last block and the journal of sent
 * transactions in a checkpoint. Usable in-process (Keeper.create + tick) or as a loop (run).
 */
import { getAddress, type Provider, type Signer } from "ethers";
import type { Logger } from "pino";
import { PositionBook } from "../../lib/adl";
import { connectContracts, type KeeperContracts } from "./chain/contracts";
import { EventPositionSource } from "./chain/position-source";
import { ChainPriceSource } from "./chain/price-source";
import { SignerTxSender } from "./chain/tx-sender";
import { readSession } from "../../lib/adl-session";
import { decide, holdings } from "./decide";
import { decodeError } from "./errors";
import { ActionExecutor } from "./execute";
import type { CheckpointStore, MarketReading, PositionSource, PriceSource, TxSender } from "./interfaces";
import { Journal } from "./journal";
import { EventLog } from "./log";
import { DEFAULT_OPTIONS, type KeeperOptions } from "./options";
import { TxPipeline } from "./pipeline";
import { SessionMemory, type SessionView } from "./sessions";
import { sleep, withRetry } from "./retry";
import type { KeeperAddresses, KeeperSummary, TickReport } from "./types";

/** Blocks after which a checkpoint is written even if nothing changed. */
export const SAVE_EVERY_BLOCKS = 100;

/** What a Keeper needs. Sources and sender default to the chain-backed implementations. */
export interface KeeperDeps {
  /** The keeper's account (an ethers Signer with a provider): it signs and pays for every transaction. */
  runner: Signer;
  addresses: KeeperAddresses;
  /** Market ids (bytes32) to watch. */
  markets: string[];
  logger: Logger;
  checkpoint: CheckpointStore;
  options?: Partial<KeeperOptions>;
  positionSource?: PositionSource;
  priceSource?: PriceSource;
  txSender?: TxSender;
}

export class Keeper {
  private stopping = false;
  private stopped: Promise<KeeperSummary> | undefined;
  /** lastBlock of the last checkpoint written. */
  private savedBlock = -1;
  private running: Promise<TickReport> | undefined;
  private wake: (() => void) | undefined;
  private readonly sessions = new SessionMemory();
  /** The keeper's holdings as last logged. */
  private holdingsKey = "[]";
  private readonly totals: KeeperSummary = {
    ticks: 0,
    lastBlock: -1,
    liquidations: 0,
    adlCalls: 0,
    sessionTransactions: 0,
    socializations: 0,
    unsettledReports: 0,
    deferred: 0,
    errors: 0,
    gasUsed: 0n,
  };

  private constructor(
    private readonly provider: Provider,
    private readonly chainId: string,
    readonly address: string,
    readonly addresses: KeeperAddresses,
    readonly markets: string[],
    readonly contracts: KeeperContracts,
    private readonly positions: PositionSource,
    private readonly prices: PriceSource,
    private readonly journal: Journal,
    private readonly checkpoint: CheckpointStore,
    private readonly sender: TxSender,
    private readonly pipeline: TxPipeline,
    private readonly log: EventLog,
    readonly options: KeeperOptions,
  ) {}

  /** Loads the checkpoint (if any), checks it belongs to this chain and clearinghouse, and wires the parts. */
  static async create(deps: KeeperDeps): Promise<Keeper> {
    const options: KeeperOptions = { ...DEFAULT_OPTIONS, ...deps.options };
    const provider = deps.runner.provider;
    if (!provider) throw new Error("the keeper's runner has no provider");
    const log = new EventLog(deps.logger);
    const chainId = (await withRetry(() => provider.getNetwork(), options.retry)).chainId.toString();
    const addresses: KeeperAddresses = {
      clearinghouse: getAddress(deps.addresses.clearinghouse),
      deleverager: getAddress(deps.addresses.deleverager),
      insuranceFund: getAddress(deps.addresses.insuranceFund),
      lens: getAddress(deps.addresses.lens),
    };
    const contracts = await connectContracts(addresses, deps.runner);
    const cp = await deps.checkpoint.load();
    if (cp && (cp.chainId !== chainId || getAddress(cp.clearinghouse) !== addresses.clearinghouse)) {
      throw new Error(
        `checkpoint is for chain ${cp.chainId} / clearinghouse ${cp.clearinghouse}, not ${chainId} / ${addresses.clearinghouse}`,
      );
    }
    const book = cp ? PositionBook.restore(cp.book) : new PositionBook();
    const lastBlock = cp ? cp.lastBlock : options.startBlock - 1;
    const positions =
      deps.positionSource ??
      new EventPositionSource(provider, book, lastBlock, {
        clearinghouse: addresses.clearinghouse,
        deleverager: addresses.deleverager,
        pageSize: options.pageSize,
        retry: options.retry,
        onPage: (from, to, logs) => log.debug("sync.page", { fromBlock: from, toBlock: to, logs }),
      });
    const prices = deps.priceSource ?? new ChainPriceSource(contracts, options.retry);
    const sender =
      deps.txSender ??
      (await SignerTxSender.create(deps.runner, {
        retry: options.retry,
        pollMs: options.receiptPollMs,
        maxFeePerGas: options.maxFeePerGas,
        maxPriorityFeePerGas: options.maxPriorityFeePerGas,
      }));
    const journal = new Journal(cp?.journal ?? []);
    const markets = deps.markets.map((m) => m.toLowerCase());
    let keeper: Keeper | undefined;
    const pipeline = new TxPipeline(sender, journal, () => keeper!.save(), log, {
      gasLimitCap: options.gasLimitCap,
      gasHeadroomPercent: options.gasHeadroomPercent,
      receiptTimeoutMs: options.receiptTimeoutMs,
    });
    keeper = new Keeper(
      provider,
      chainId,
      sender.address,
      addresses,
      markets,
      contracts,
      positions,
      prices,
      journal,
      deps.checkpoint,
      sender,
      pipeline,
      log,
      options,
    );
    log.info("keeper.started", {
      address: sender.address,
      chainId,
      addresses,
      markets,
      resumedFromBlock: cp ? cp.lastBlock : null,
      pendingTransactions: journal.pending().length,
    });
    return keeper;
  }

  /** The keeper's view of every position (for inspection and tests). */
  get book(): PositionBook {
    return this.positions.book;
  }

  /** Totals so far. */
  summary(): KeeperSummary {
    return { ...this.totals };
  }

  /** Writes the checkpoint: the book, the last synced block and the journal. */
  async save(): Promise<void> {
    this.savedBlock = this.positions.lastBlock;
    await this.checkpoint.save({
      version: 1,
      chainId: this.chainId,
      clearinghouse: this.addresses.clearinghouse,
      lastBlock: this.positions.lastBlock,
      book: this.positions.book.snapshot(),
      journal: [...this.journal.all()],
    });
  }

  private async syncTarget(): Promise<number> {
    const head = await withRetry(() => this.provider.getBlockNumber(), this.options.retry);
    return Math.max(-1, head - this.options.confirmations);
  }

  /** One pass: resolve pending transactions, sync events, decide, execute, save. Never runs twice at once. */
  async tick(): Promise<TickReport> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.tickOnce();
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async tickOnce(): Promise<TickReport> {
    const started = Date.now();
    const report: TickReport = {
      fromBlock: this.positions.lastBlock + 1,
      toBlock: this.positions.lastBlock,
      eventsApplied: 0,
      positions: 0,
      liquidations: [],
      adl: [],
      sessions: [],
      socialized: [],
      unsettled: [],
      deferred: [],
      errors: [],
      resolved: [],
      holdings: [],
      durationMs: 0,
    };
    try {
      await this.resolvePending(report);
      const target = await this.syncTarget();
      report.eventsApplied = await this.positions.sync(target);
      report.toBlock = this.positions.lastBlock;
      const actions = await this.decideNow(report);
      const executor = new ActionExecutor(
        {
          contracts: this.contracts,
          addresses: this.addresses,
          positions: this.positions,
          prices: this.prices,
          pipeline: this.pipeline,
          log: this.log,
          options: this.options,
          syncTarget: () => this.syncTarget(),
          now: () => this.nextTimestamp(),
          keeper: this.address,
          sessions: this.sessions,
        },
        report,
      );
      for (const action of actions) {
        if (this.stopping) break;
        try {
          await executor.run(action);
        } catch (e) {
          const error = decodeError(e);
          const account = "account" in action ? action.account : "bankrupt" in action ? action.bankrupt : undefined;
          report.errors.push({ kind: action.kind, marketId: action.marketId, account, error });
          this.log.error("action.failed", { kind: action.kind, marketId: action.marketId, account, error });
        }
      }
      report.toBlock = this.positions.lastBlock;
      // The book of a large market is megabytes of JSON: write it when it changed, or every
      // SAVE_EVERY_BLOCKS blocks so a restart does not replay a long run of empty blocks.
      const sent =
        report.liquidations.length +
        report.adl.length +
        report.sessions.length +
        report.socialized.length +
        report.unsettled.length;
      if (report.eventsApplied > 0 || sent > 0 || this.positions.lastBlock - this.savedBlock >= SAVE_EVERY_BLOCKS) {
        await this.save();
      }
    } catch (e) {
      const error = decodeError(e);
      report.errors.push({ kind: "sync", error });
      this.log.error("tick.failed", { error });
    }
    report.positions = this.markets.reduce((n, m) => n + this.positions.book.positions(m).length, 0);
    report.durationMs = Date.now() - started;
    this.account(report);
    this.log.info("tick.done", {
      fromBlock: report.fromBlock,
      toBlock: report.toBlock,
      eventsApplied: report.eventsApplied,
      positions: report.positions,
      liquidations: report.liquidations.length,
      adlCalls: report.adl.length,
      sessionTransactions: report.sessions.length,
      socializations: report.socialized.length,
      unsettled: report.unsettled.length,
      holdings: report.holdings.length,
      deferred: report.deferred.length,
      errors: report.errors.length,
      durationMs: report.durationMs,
    });
    return report;
  }

  /** Looks up every journal entry still marked sent: mined, still pending, or gone (dropped). */
  private async resolvePending(report: TickReport): Promise<void> {
    let changed = false;
    for (const entry of this.journal.pending()) {
      const found = await this.sender.lookup(entry.txHash);
      if (found.state === "mined") {
        const status = found.outcome.status === "success" ? "confirmed" : "reverted";
        const settled = this.journal.settle(entry.txHash, status, found.outcome.block);
        if (settled) report.resolved.push({ ...settled });
        this.log.info("journal.resolved", { ...entry, status, block: found.outcome.block });
        changed = true;
      } else if (found.state === "pending") {
        report.deferred.push({
          kind: entry.kind,
          marketId: entry.marketId,
          account: entry.account,
          reason: "pending-transaction",
          detail: `nonce ${entry.nonce} still pending`,
          txHash: entry.txHash,
        });
        this.log.info("journal.pending", { ...entry });
      } else {
        const settled = this.journal.settle(entry.txHash, "dropped");
        if (settled) report.resolved.push({ ...settled });
        this.log.warn("journal.dropped", { ...entry });
        changed = true;
      }
    }
    if (changed) await this.save();
  }

  /** Reads every market, the fund and the bounds, and runs the pure decision. */
  private async decideNow(report: TickReport) {
    const readings: MarketReading[] = [];
    for (const m of this.markets) {
      try {
        readings.push(await this.prices.market(m));
      } catch (e) {
        const error = decodeError(e);
        report.errors.push({ kind: "sync", marketId: m, error });
        this.log.error("market.read_failed", { marketId: m, error });
      }
    }
    const [fundAvailable, bounds, keeperFree] = await Promise.all([
      this.prices.fundAvailable(),
      this.prices.bounds(),
      this.prices.freeCollateral(this.address),
    ]);
    const sessions = await this.readSessions(readings.map((r) => r.marketId));
    this.sessions.observe(sessions);
    report.holdings = holdings(this.positions.book, readings, this.address);
    this.logHoldings(report);
    return decide({
      book: this.positions.book,
      markets: readings,
      fundAvailable,
      keeper: this.address,
      keeperFree,
      liquidationLeverage: this.options.liquidationLeverage,
      bounds,
      busy: this.journal.busy(this.positions.lastBlock),
      maxEntries: this.options.maxEntries,
      refreshLooseNodes: this.options.refreshLooseNodes,
      maxAdlPerTick: this.options.maxAdlPerTick,
      sessions,
      now: await this.nextTimestamp(),
    });
  }

  /**
   * Logs the keeper's own positions when they change (`keeper.holding`), and each tick one of them is
   * under maintenance (`keeper.holding_at_risk`, warn: only another account may liquidate it).
   */
  private logHoldings(report: TickReport): void {
    const key = JSON.stringify(report.holdings.map((h) => [h.marketId, h.isLong, String(h.size), String(h.margin)]));
    if (key !== this.holdingsKey) {
      this.holdingsKey = key;
      this.log.info("keeper.holding", { holdings: report.holdings });
    }
    for (const h of report.holdings) if (h.liquidatable) this.log.warn("keeper.holding_at_risk", { ...h });
  }

  /** The ADL session on both sides of each market (id 0n where none is open). */
  private async readSessions(marketIds: string[]): Promise<SessionView[]> {
    const out: SessionView[] = [];
    for (const marketId of marketIds) {
      for (const side of [true, false]) {
        const session = await withRetry(
          () => readSession(this.contracts.deleverager, marketId, side),
          this.options.retry,
        );
        out.push({ marketId, side, session });
      }
    }
    return out;
  }

  /** The timestamp the next block gets at the earliest: the latest block's plus one second. */
  private async nextTimestamp(): Promise<bigint> {
    const latest = await withRetry(() => this.provider.getBlock("latest"), this.options.retry);
    return BigInt(latest?.timestamp ?? Math.floor(Date.now() / 1000)) + 1n;
  }

  private account(r: TickReport): void {
    const t = this.totals;
    t.ticks++;
    t.lastBlock = r.toBlock;
    t.liquidations += r.liquidations.length;
    t.adlCalls += r.adl.length;
    t.sessionTransactions += r.sessions.length;
    t.socializations += r.socialized.length;
    t.unsettledReports += r.unsettled.filter((u) => u.kind === "report-unsettled").length;
    t.deferred += r.deferred.length;
    t.errors += r.errors.length;
    for (const x of [...r.liquidations, ...r.adl, ...r.sessions, ...r.unsettled]) t.gasUsed += x.gasUsed;
    for (const x of r.socialized) t.gasUsed += x.gasUsed + x.topUpGasUsed;
  }

  /** Ticks every pollIntervalMs until stop(); returns the summary. */
  async run(): Promise<KeeperSummary> {
    while (!this.stopping) {
      await this.tick();
      if (this.stopping) break;
      await Promise.race([sleep(this.options.pollIntervalMs), new Promise<void>((r) => (this.wake = r))]);
    }
    return this.summary();
  }

  /**
   * Finishes the tick in progress (no new action starts), saves, and logs the summary. Every call
   * returns the same promise, so a caller racing a signal handler waits for the same shutdown.
   */
  stop(): Promise<KeeperSummary> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wake?.();
      if (this.running) await this.running.catch(() => undefined);
      await this.save();
      this.log.info("keeper.summary", { ...this.summary() });
      this.log.info("keeper.stopped", {});
      return this.summary();
    })();
    return this.stopped;
  }
}
