/**
 * Runs the actions `decide` returns, one transaction at a time, and turns each outcome into the
 * tick report: liquidations re-read their cap from the lens; deleverage calls whose list or proof
 * went stale are rebuilt from fresh state (events synced, (P, F), fund and free collateral re-read)
 * and retried; a plan too large for one call opens an ADL session, and each open session's step is
 * sent (one continue slice, the finish, or an expiry followed by a re-open); a socialized loss is
 * simulated, rebuilt the same way when its proof went stale (the next layer may then apply), sent,
 * and followed by the margin top-up of the position taken over. Bankrupt positions that must wait
 * are logged with the reason and reported as deferred.
 */
import { buildProofFrom, readSession, RESTART_HELD, splitProof, type SessionState } from "../../lib/adl-session";
import { decideBankrupt, openedMembers } from "./final-layer";
import { classify } from "./errors";
import { equityOf, pnlPerUnit } from "../../lib/position";
import { sideFundingOf, type PositionSource, type PriceSource } from "./interfaces";
import type { EventLog } from "./log";
import type { KeeperOptions } from "./options";
import type { PipelineResult, TxPipeline } from "./pipeline";
import { continueLimits, type SessionMemory } from "./sessions";
import { deleverageEvents, liquidationEvent, socializationEvents } from "./receipts";
import type { KeeperContracts } from "./chain/contracts";
import { IERC20__factory } from "../../typechain-types";
import type {
  Action,
  ClearUnsettledAction,
  DecodedError,
  DeleverageAction,
  FinalLayerWaitAction,
  LiquidateAction,
  ProofTooLargeAction,
  RefreshAction,
  ReportUnsettledAction,
  SessionReport,
  SessionStepAction,
  SocializationReport,
  SocializeAction,
  TickReport,
} from "./types";

/** What settles a bankrupt position in one transaction (or opens its session). */
type Settlement = DeleverageAction | ProofTooLargeAction | SocializeAction;

export interface ExecutionContext {
  contracts: KeeperContracts;
  addresses: { clearinghouse: string; deleverager: string };
  positions: PositionSource;
  prices: PriceSource;
  pipeline: TxPipeline;
  log: EventLog;
  options: KeeperOptions;
  /** Latest block to sync to before a rebuild (head minus confirmations). */
  syncTarget: () => Promise<number>;
  /** Timestamp of the block the next transaction lands in (the deadline of the final layer). */
  now: () => Promise<bigint>;
  /** The keeper's account (it sends every transaction, posts session bonds and takes socialized positions over). */
  keeper: string;
  /** Sessions seen across ticks (tells a restart from a first open). */
  sessions: SessionMemory;
}

export class ActionExecutor {
  /** Set after a mined transaction: the book no longer matches the chain until the next sync. */
  private bookDirty = false;

  constructor(
    private readonly ctx: ExecutionContext,
    private readonly report: TickReport,
  ) {}

  async run(action: Action): Promise<void> {
    switch (action.kind) {
      case "liquidate":
        return this.liquidate(action);
      case "deleverage":
        return this.deleverage(action);
      case "proof-too-large":
        return this.openSession(action);
      case "adl-session":
        return this.sessionStep(action);
      case "socialize":
        return this.socialize(action);
      case "final-layer-wait":
        return this.finalLayerWait(action);
      case "report-unsettled":
      case "clear-unsettled":
      case "refresh":
        return this.maintenance(action);
    }
  }

  private async liquidate(a: LiquidateAction): Promise<void> {
    const { contracts, prices, pipeline, log, options } = this.ctx;
    // The lens is what `liquidate` enforces; it agrees with decide's mirror unless the state moved.
    let size = await prices.maxLiquidationSize(a.marketId, a.account);
    for (let attempt = 0; attempt <= 1; attempt++) {
      if (size === 0n) {
        log.info("action.moot", { kind: a.kind, marketId: a.marketId, account: a.account, reason: "not liquidatable" });
        return;
      }
      const data = contracts.clearinghouse.interface.encodeFunctionData("liquidate", [
        a.marketId,
        a.account,
        size,
        options.liquidationLeverage,
      ]);
      const r = await pipeline.run("liquidate", a.marketId, a.account, { to: this.ctx.addresses.clearinghouse, data });
      if (r.status === "rejected" && classify(r.error) === "resize" && attempt === 0) {
        size = await prices.maxLiquidationSize(a.marketId, a.account);
        continue;
      }
      if (r.status !== "mined") return this.failed(a, a.account, r);
      this.bookDirty = true;
      const ev = liquidationEvent(this.ctx.addresses.clearinghouse, a.account, r.outcome);
      const entry = {
        marketId: a.marketId,
        account: a.account,
        size: ev?.size ?? size,
        cover: a.cover,
        price: ev?.price ?? 0n,
        feeToLiquidator: ev?.feeToLiquidator ?? 0n,
        deficitCovered: ev?.deficitCovered ?? 0n,
        gasUsed: r.outcome.gasUsed,
        txHash: r.outcome.hash,
        block: r.outcome.block,
      };
      this.report.liquidations.push(entry);
      log.info("liquidation.sent", { ...entry, equity: a.equity, deficit: a.deficit });
      return;
    }
  }

  /**
   * Re-syncs the book and re-reads (P, F of each side), fund, bounds, free collateral and the clock,
   * then decides `bankrupt` again with the same pure rule as `decide` (final-layer.ts): a deleverage,
   * a session opening, a socialized loss, or undefined when nothing settles it now (not bankrupt,
   * covered, or waiting: the next tick reports why). Sessions are not re-read: one this tick opened
   * makes the simulation revert with AdlSessionActive, which defers the action.
   */
  private async rebuild(a: { marketId: string; bankrupt: string }): Promise<Settlement | undefined> {
    const { positions, prices, options } = this.ctx;
    await positions.sync(await this.ctx.syncTarget());
    this.bookDirty = false;
    const [market, fund, bounds, keeperFree, now] = await Promise.all([
      prices.market(a.marketId),
      prices.fundAvailable(),
      prices.bounds(),
      prices.freeCollateral(this.ctx.keeper),
      this.ctx.now(),
    ]);
    const b = positions.book.position(a.marketId, a.bankrupt);
    if (b.size === 0n) return undefined;
    const equity = equityOf(
      b.margin,
      b.size,
      pnlPerUnit(b.isLong, b.entry, market.price, sideFundingOf(market, b.isLong)),
    );
    if (equity >= 0n || fund >= -equity) return undefined;
    return decideBankrupt({
      book: positions.book,
      market,
      bankrupt: a.bankrupt,
      deficit: -equity,
      fundAvailable: fund,
      bounds,
      maxEntries: options.maxEntries,
      keeper: this.ctx.keeper,
      keeperFree,
      liquidationLeverage: options.liquidationLeverage,
      now,
      sessionOnCounterparties: false,
      sessionOnOwnSide: false,
    }).settle;
  }

  /** Sends whichever settlement a rebuild chose. */
  private dispatch(fresh: Settlement): Promise<void> {
    if (fresh.kind === "deleverage") return this.deleverage(fresh);
    if (fresh.kind === "proof-too-large") return this.openSession(fresh);
    return this.socialize(fresh);
  }

  private async deleverage(first: DeleverageAction): Promise<void> {
    const { contracts, pipeline, log, options } = this.ctx;
    let a: DeleverageAction = first;
    let rebuilds = 0;
    if (this.bookDirty) {
      // An earlier transaction this tick changed positions: plan against the chain as it is now.
      const fresh = await this.rebuild(a);
      if (!fresh) return this.moot(a, "no longer settles now");
      if (fresh.kind !== "deleverage") return this.dispatch(fresh);
      a = fresh;
    }
    for (;;) {
      const data = contracts.deleverager.interface.encodeFunctionData("deleverage", [
        a.marketId,
        a.bankrupt,
        a.plan.counterparties,
        a.plan.proof,
      ]);
      const tx = { to: this.ctx.addresses.deleverager, data };
      const rejected = await pipeline.simulate(tx);
      if (rejected && classify(rejected) === "stale" && rebuilds < options.maxRebuilds) {
        rebuilds++;
        const fresh = await this.rebuild(a);
        log.info("adl.rebuilt", {
          marketId: a.marketId,
          bankrupt: a.bankrupt,
          cause: rejected.name,
          args: rejected.args,
          rebuilds,
          counterparties: fresh && fresh.kind !== "socialize" ? fresh.plan.counterparties : [],
          next: fresh?.kind ?? "none",
        });
        if (!fresh) return this.moot(a, "no longer settles now");
        if (fresh.kind !== "deleverage") return this.dispatch(fresh);
        a = fresh;
        continue;
      }
      const r: PipelineResult = rejected
        ? { status: "rejected", error: rejected }
        : await pipeline.run("deleverage", a.marketId, a.bankrupt, tx, true);
      if (r.status === "gas-above-cap") {
        // Within the bounds but too heavy for one transaction: a multi-transaction session settles it.
        log.warn("adl.gas_above_cap", { marketId: a.marketId, bankrupt: a.bankrupt, estimate: r.estimate });
        const plan = a.plan;
        return this.openSession({
          ...a,
          kind: "proof-too-large",
          listLength: plan.counterparties.length,
          proofNodes: plan.proof.length,
          openedMembers: openedMembers(plan),
        });
      }
      if (r.status !== "mined") return this.failed(a, a.bankrupt, r);
      this.bookDirty = true;
      const ev = deleverageEvents(this.ctx.addresses.deleverager, r.outcome);
      const entry = {
        marketId: a.marketId,
        bankrupt: a.bankrupt,
        counterparties: ev?.counterparties ?? a.plan.counterparties,
        takes: ev?.takes ?? a.plan.takes,
        scores: ev?.scores ?? a.plan.scores,
        queuePositions: ev?.queuePositions ?? [],
        charges: ev?.charges ?? [],
        price: ev?.price ?? a.price,
        funding: a.funding,
        delta: ev?.delta ?? a.delta.delta,
        closedSize: ev?.closedSize ?? 0n,
        remainingSize: ev?.remainingSize ?? 0n,
        fundContribution: ev?.fundContribution ?? 0n,
        deficitAbsorbed: ev?.deficitAbsorbed ?? 0n,
        proofNodes: a.plan.proof.length,
        openedMembers: openedMembers(a.plan),
        rebuilds,
        gasUsed: r.outcome.gasUsed,
        txHash: r.outcome.hash,
        block: r.outcome.block,
      };
      this.report.adl.push(entry);
      log.info("adl.sent", entry);
      return;
    }
  }

  /**
   * Opens a session for a bankrupt position whose proof no single call can carry: its list is the
   * plan's (the queue head at the next block's (P, F)); the proof follows in continue transactions on
   * later ticks. The market's session bond is approved first if the keeper's allowance falls short.
   * Simulated first (a stale list is rebuilt) and journaled as `session-open`.
   */
  private async openSession(first: ProofTooLargeAction): Promise<void> {
    const { contracts, pipeline, log, options } = this.ctx;
    let a: ProofTooLargeAction = first;
    let rebuilds = 0;
    log.info("adl.proof_too_large", {
      marketId: a.marketId,
      bankrupt: a.bankrupt,
      listLength: a.listLength,
      proofNodes: a.proofNodes,
      openedMembers: a.openedMembers,
      delta: a.delta.delta,
    });
    if (this.bookDirty) {
      const fresh = await this.rebuild(a);
      if (!fresh) return this.moot(a, "no longer settles now");
      if (fresh.kind !== "proof-too-large") return this.dispatch(fresh);
      a = fresh;
    }
    if (!(await this.approveBond(a))) return;
    for (;;) {
      const data = contracts.deleverager.interface.encodeFunctionData("openAdlSession", [
        a.marketId,
        a.bankrupt,
        a.plan.counterparties,
      ]);
      const tx = { to: this.ctx.addresses.deleverager, data };
      const rejected = await pipeline.simulate(tx);
      if (rejected && classify(rejected) === "stale" && rebuilds < options.maxRebuilds) {
        rebuilds++;
        const fresh = await this.rebuild(a);
        log.info("adl.rebuilt", {
          marketId: a.marketId,
          bankrupt: a.bankrupt,
          cause: rejected.name,
          rebuilds,
          next: fresh?.kind ?? "none",
        });
        if (!fresh) return this.moot(a, "no longer settles now");
        if (fresh.kind !== "proof-too-large") return this.dispatch(fresh);
        a = fresh;
        continue;
      }
      const r: PipelineResult = rejected
        ? { status: "rejected", error: rejected }
        : await pipeline.run("session-open", a.marketId, a.bankrupt, tx, true);
      if (r.status !== "mined") return this.failed(a, a.bankrupt, r);
      this.bookDirty = true;
      const side = !this.ctx.positions.book.position(a.marketId, a.bankrupt).isLong;
      const s = await readSession(contracts.deleverager, a.marketId, side);
      const restart = this.ctx.sessions.restartReason(a.marketId, a.bankrupt);
      this.ctx.sessions.clearRestart(a.marketId, a.bankrupt);
      const entry = this.sessionEntry("open", a.marketId, side, a.bankrupt, s, r.outcome, restart !== undefined);
      this.report.sessions.push(entry);
      log.info("adl.session_opened", {
        ...entry,
        counterparties: a.plan.counterparties,
        price: s.price,
        funding: s.funding,
        delta: s.delta,
        reserveTokens: s.reserveTokens,
        rebuilds,
      });
      if (restart !== undefined) {
        log.info("adl.session_restarted", {
          marketId: a.marketId,
          bankrupt: a.bankrupt,
          sessionId: s.id,
          reason: restart,
        });
      }
      return;
    }
  }

  /**
   * Opening a session pulls the market's bond (AutoDeleverager.sessionTerms, 18-decimal quote, in
   * collateral tokens rounded up) from the keeper: approves the deleverager for it when the keeper's
   * allowance is short (journaled as `session-bond-approve`). False if that approval failed.
   */
  private async approveBond(a: ProofTooLargeAction): Promise<boolean> {
    const { contracts, pipeline, addresses, keeper } = this.ctx;
    const [bond] = await contracts.deleverager.sessionTerms(a.marketId);
    if (bond === 0n) return true;
    const scale = await contracts.clearinghouse.collateralScale();
    const tokens = (bond + scale - 1n) / scale;
    const token = IERC20__factory.connect(await contracts.clearinghouse.collateral(), contracts.clearinghouse.runner);
    if ((await token.allowance(keeper, addresses.deleverager)) >= tokens) return true;
    const data = token.interface.encodeFunctionData("approve", [addresses.deleverager, tokens]);
    const r = await pipeline.run("session-bond-approve", a.marketId, a.bankrupt, {
      to: await token.getAddress(),
      data,
    });
    if (r.status === "mined") return true;
    this.failed(a, a.bankrupt, r);
    return false;
  }

  /** The next step of an open session: continue with one slice, finish, expire (and re-open), or wait. */
  private async sessionStep(a: SessionStepAction): Promise<void> {
    const { log } = this.ctx;
    const step = a.step;
    if (step.kind === "hold") {
      this.report.deferred.push({
        kind: a.kind,
        marketId: a.marketId,
        account: a.bankrupt,
        reason: "session-held",
        detail: `leaf ${a.session.cursor} held by ${step.holder} until ${step.until}`,
      });
      log.info("adl.session_held", {
        marketId: a.marketId,
        bankrupt: a.bankrupt,
        holder: step.holder,
        until: step.until,
      });
      return;
    }
    if (step.kind === "continue") return this.continueSession(a, step.restart === true);
    const iface = this.ctx.contracts.deleverager.interface;
    const data =
      step.kind === "finish"
        ? iface.encodeFunctionData("finishAdlSession", [a.marketId, a.side])
        : iface.encodeFunctionData("expireAdlSession", [a.marketId, a.side]);
    const journalKind = step.kind === "finish" ? "session-finish" : "session-expire";
    const r = await this.ctx.pipeline.run(journalKind, a.marketId, a.bankrupt, {
      to: this.ctx.addresses.deleverager,
      data,
    });
    if (r.status !== "mined") return this.failed(a, a.bankrupt, r);
    this.bookDirty = true;
    const entry = this.sessionEntry(step.kind, a.marketId, a.side, a.bankrupt, a.session, r.outcome, false);
    if (step.kind === "finish") {
      this.ctx.sessions.markFinished(a.marketId, a.side, a.session.id);
      entry.remainingSize = (await this.ctx.contracts.clearinghouse.getPosition(a.marketId, a.bankrupt)).size;
      this.report.sessions.push(entry);
      log.info("adl.session_finished", { ...entry });
      return;
    }
    this.ctx.sessions.markExpired(a.marketId, a.bankrupt, a.session.id);
    this.report.sessions.push(entry);
    log.info("adl.session_expired", { ...entry });
    // Re-open at once if the position still needs a session (a single call if it fits now, the final
    // layer if no list exists any more or the deadline has passed).
    const fresh = await this.rebuild({ marketId: a.marketId, bankrupt: a.bankrupt });
    if (!fresh) return this.moot(a, "no longer settles now after the expiry");
    return this.dispatch(fresh);
  }

  /**
   * Sends the next slice of the session's proof: built from the stored cursor at the pinned values
   * against a book synced to the latest block, split within the contract's bounds and the gas cap.
   * A rejected slice (the book moved, or the resume of a held leaf skipped a member) is rebuilt from
   * a fresh sync, listing a held leaf from its first member.
   */
  private async continueSession(a: SessionStepAction, restartHeld: boolean): Promise<void> {
    const { contracts, positions, prices, pipeline, log, options } = this.ctx;
    const limits = continueLimits(await prices.bounds(), options.gasLimitCap, options.gasHeadroomPercent);
    let restart = restartHeld;
    let rebuilds = 0;
    for (;;) {
      if (this.bookDirty || rebuilds > 0) {
        await positions.sync(await this.ctx.syncTarget());
        this.bookDirty = false;
      }
      const s = await readSession(contracts.deleverager, a.marketId, a.side);
      if (s.id !== a.session.id) return this.moot(a, `session ${a.session.id} ended`);
      const heldLast = s.held ? (restart ? RESTART_HELD : s.heldLast) : undefined;
      const proof = buildProofFrom(positions.book, a.marketId, a.side, s, s.cursor, heldLast);
      const slices = splitProof(proof, limits);
      const slice = slices[0] ?? [];
      const data = contracts.deleverager.interface.encodeFunctionData("continueAdlSession", [
        a.marketId,
        a.side,
        slice,
      ]);
      const tx = { to: this.ctx.addresses.deleverager, data };
      const rejected = await pipeline.simulate(tx);
      if (rejected && classify(rejected) === "stale" && rebuilds < options.maxRebuilds) {
        rebuilds++;
        restart = s.held;
        log.info("adl.session_rebuilt", { marketId: a.marketId, bankrupt: a.bankrupt, cause: rejected.name, rebuilds });
        continue;
      }
      const r: PipelineResult = rejected
        ? { status: "rejected", error: rejected }
        : await pipeline.run("session-continue", a.marketId, a.bankrupt, tx, true);
      if (r.status !== "mined") return this.failed(a, a.bankrupt, r);
      this.bookDirty = true;
      const after = await readSession(contracts.deleverager, a.marketId, a.side);
      const entry = this.sessionEntry("continue", a.marketId, a.side, a.bankrupt, after, r.outcome, false);
      entry.proofNodes = slice.length;
      entry.openedMembers = slice.reduce((n, node) => n + (node.open ? node.members.length : 0), 0);
      entry.slicesLeft = Math.max(0, slices.length - 1);
      this.report.sessions.push(entry);
      log.info("adl.session_continued", {
        ...entry,
        fromCursor: s.cursor,
        restartedHeldLeaf: heldLast === RESTART_HELD,
        rebuilds,
      });
      return;
    }
  }

  private sessionEntry(
    step: SessionReport["step"],
    marketId: string,
    side: boolean,
    bankrupt: string,
    s: Pick<SessionState, "id" | "cursor" | "held">,
    outcome: { gasUsed: bigint; hash: string; block: number },
    restart: boolean,
  ): SessionReport {
    return {
      step,
      marketId,
      side,
      bankrupt,
      sessionId: s.id,
      cursor: s.cursor,
      held: s.held,
      proofNodes: 0,
      openedMembers: 0,
      slicesLeft: 0,
      restart,
      gasUsed: outcome.gasUsed,
      txHash: outcome.hash,
      block: outcome.block,
    };
  }

  /**
   * The final layer: simulates `socializeLoss` (a proof gone stale is rebuilt from fresh state, which
   * may now find a list, and then deleverages instead), sends it, reads what it did from its events,
   * then adds the planned margin to the position taken over.
   */
  private async socialize(first: SocializeAction): Promise<void> {
    const { contracts, pipeline, log, options } = this.ctx;
    let a: SocializeAction = first;
    let rebuilds = 0;
    if (this.bookDirty) {
      const fresh = await this.rebuild(a);
      if (!fresh) return this.moot(a, "no longer settles now");
      if (fresh.kind !== "socialize") return this.dispatch(fresh);
      a = fresh;
    }
    for (;;) {
      const data = contracts.deleverager.interface.encodeFunctionData("socializeLoss", [
        a.marketId,
        a.bankrupt,
        a.proof,
      ]);
      const tx = { to: this.ctx.addresses.deleverager, data };
      const rejected = await pipeline.simulate(tx);
      if (rejected && classify(rejected) === "stale" && rebuilds < options.maxRebuilds) {
        rebuilds++;
        const fresh = await this.rebuild(a);
        log.info("socialize.rebuilt", {
          marketId: a.marketId,
          bankrupt: a.bankrupt,
          cause: rejected.name,
          args: rejected.args,
          rebuilds,
          next: fresh?.kind ?? "none",
        });
        if (!fresh) return this.moot(a, "no longer settles now");
        if (fresh.kind !== "socialize") return this.dispatch(fresh);
        a = fresh;
        continue;
      }
      const r: PipelineResult = rejected
        ? { status: "rejected", error: rejected }
        : await pipeline.run("socialize", a.marketId, a.bankrupt, tx, true);
      if (r.status !== "mined") return this.failed(a, a.bankrupt, r);
      this.bookDirty = true;
      const ev = socializationEvents(this.ctx.addresses.clearinghouse, this.ctx.addresses.deleverager, r.outcome);
      const entry: SocializationReport = {
        marketId: a.marketId,
        bankrupt: a.bankrupt,
        byDeadline: ev?.byDeadline ?? a.byDeadline,
        chargedLong: ev?.chargedLong ?? !a.isLong,
        size: ev?.size ?? a.size,
        price: ev?.price ?? a.price,
        deficit: ev ? ev.fundPaid + ev.lossSocialized : a.delta.deficit,
        fundPaid: ev?.fundPaid ?? 0n,
        lossSocialized: ev?.lossSocialized ?? 0n,
        openInterest: ev?.openInterest ?? 0n,
        lossIndex: ev?.lossIndex ?? 0n,
        toFund: ev?.toFund ?? 0n,
        keeperReward: ev?.keeperReward ?? 0n,
        proofNodes: a.proofNodes,
        openedMembers: a.openedMembers,
        topUp: 0n,
        topUpGasUsed: 0n,
        gasUsed: r.outcome.gasUsed,
        txHash: r.outcome.hash,
        block: r.outcome.block,
      };
      this.report.socialized.push(entry);
      log.info("socialize.sent", { ...entry, takeoverMargin: a.takeoverMargin, rebuilds });
      if (a.topUp > 0n) await this.topUp(a, entry);
      return;
    }
  }

  /** Adds `a.topUp` of margin to the position the keeper just took over (its liquidation leverage). */
  private async topUp(a: SocializeAction, entry: SocializationReport): Promise<void> {
    const { contracts, pipeline, log } = this.ctx;
    const data = contracts.clearinghouse.interface.encodeFunctionData("addMargin", [a.marketId, a.topUp]);
    const r = await pipeline.run("add-margin", a.marketId, this.ctx.keeper, {
      to: this.ctx.addresses.clearinghouse,
      data,
    });
    if (r.status !== "mined") {
      const error =
        r.status === "rejected" || r.status === "reverted" || r.status === "send-failed" ? r.error : undefined;
      log.warn("keeper.margin_not_added", { marketId: a.marketId, amount: a.topUp, stage: r.status, error });
      return;
    }
    entry.topUp = a.topUp;
    entry.topUpGasUsed = r.outcome.gasUsed;
    log.info("keeper.margin_added", {
      marketId: a.marketId,
      amount: a.topUp,
      gasUsed: r.outcome.gasUsed,
      txHash: r.outcome.hash,
      block: r.outcome.block,
    });
  }

  /**
   * A bankrupt position nothing settles this tick: logged (at warn when the keeper lacks the free
   * collateral for the takeover) and reported as deferred with the reason.
   */
  private finalLayerWait(a: FinalLayerWaitAction): void {
    const fields = {
      marketId: a.marketId,
      bankrupt: a.bankrupt,
      reason: a.reason,
      deficit: a.deficit,
      due: a.due,
      needed: a.needed,
      free: a.free,
    };
    if (a.reason === "free-collateral") this.ctx.log.warn("socialize.collateral_short", fields);
    else this.ctx.log.info("final_layer.waiting", fields);
    const detail =
      a.reason === "free-collateral"
        ? `takeover needs ${a.needed} of free collateral, the keeper has ${a.free}`
        : a.reason === "awaiting-deadline"
          ? a.due === 0n
            ? "empty-list proof too large; the deadline clock starts once listed"
            : `empty-list proof too large; socialized by the deadline from ${a.due}`
          : a.reason === "session-open"
            ? "an ADL session is open in the market"
            : "the keeper's own position: another account must liquidate or socialize it";
    this.report.deferred.push({ kind: a.kind, marketId: a.marketId, account: a.bankrupt, reason: a.reason, detail });
  }

  private async maintenance(a: ReportUnsettledAction | ClearUnsettledAction | RefreshAction): Promise<void> {
    const { contracts, pipeline, log } = this.ctx;
    const iface = contracts.deleverager.interface;
    const data =
      a.kind === "report-unsettled"
        ? iface.encodeFunctionData("reportUnsettled", [a.marketId, a.account])
        : a.kind === "clear-unsettled"
          ? iface.encodeFunctionData("clearUnsettled", [a.marketId, a.account])
          : iface.encodeFunctionData("refresh", [a.marketId, a.isLong, a.level, a.position, a.members]);
    const account = a.kind === "refresh" ? `node:${a.isLong}:${a.level}:${a.position}` : a.account;
    const r = await pipeline.run(
      a.kind,
      a.marketId,
      a.kind === "refresh" ? "0x0000000000000000000000000000000000000000" : a.account,
      {
        to: this.ctx.addresses.deleverager,
        data,
      },
    );
    if (r.status !== "mined") return this.failed(a, account, r);
    if (a.kind === "refresh") this.bookDirty = true;
    const entry = {
      kind: a.kind,
      marketId: a.marketId,
      account: a.kind === "refresh" ? undefined : a.account,
      deficit: a.kind === "report-unsettled" ? a.deficit : undefined,
      node: a.kind === "refresh" ? { isLong: a.isLong, level: a.level, position: a.position } : undefined,
      gasUsed: r.outcome.gasUsed,
      txHash: r.outcome.hash,
      block: r.outcome.block,
    };
    this.report.unsettled.push(entry);
    const event =
      a.kind === "report-unsettled"
        ? "unsettled.sent"
        : a.kind === "clear-unsettled"
          ? "unsettled.cleared"
          : "node.refreshed";
    log.info(event, entry);
  }

  private moot(a: Action, reason: string): void {
    const account = "account" in a ? a.account : "bankrupt" in a ? a.bankrupt : "";
    this.ctx.log.info("action.moot", { kind: a.kind, marketId: a.marketId, account, reason });
  }

  /** Records a non-mined outcome: deferred (timeout), moot (someone else acted) or an error. */
  private failed(a: Action, account: string, r: Exclude<PipelineResult, { status: "mined" }>): void {
    const { log } = this.ctx;
    if (r.status === "timeout") {
      this.report.deferred.push({
        kind: a.kind,
        marketId: a.marketId,
        account,
        reason: "receipt-timeout",
        detail: "sent; left pending in the journal",
        txHash: r.hash,
      });
      log.warn("tx.timeout", { kind: a.kind, marketId: a.marketId, account, txHash: r.hash });
      return;
    }
    if (r.status === "gas-above-cap") {
      this.report.deferred.push({
        kind: a.kind,
        marketId: a.marketId,
        account,
        reason: "gas-above-cap",
        detail: `estimate ${r.estimate}`,
      });
      log.warn("tx.gas_above_cap", { kind: a.kind, marketId: a.marketId, account, estimate: r.estimate });
      return;
    }
    const error: DecodedError = r.error;
    if (r.status === "rejected" && classify(error) === "blocked") {
      this.report.deferred.push({
        kind: a.kind,
        marketId: a.marketId,
        account,
        reason: "session-open",
        detail: `${error.name}(${error.args.join(", ")})`,
      });
      log.info("action.blocked", { kind: a.kind, marketId: a.marketId, account, reason: error.name, args: error.args });
      return;
    }
    if (r.status === "rejected" && classify(error) === "early") {
      this.report.deferred.push({
        kind: a.kind,
        marketId: a.marketId,
        account,
        reason: "awaiting-deadline",
        detail: `${error.name}(${error.args.join(", ")})`,
      });
      log.info("action.early", { kind: a.kind, marketId: a.marketId, account, reason: error.name, args: error.args });
      return;
    }
    if (r.status === "rejected" && classify(error) === "collateral") {
      this.report.deferred.push({
        kind: a.kind,
        marketId: a.marketId,
        account,
        reason: "free-collateral",
        detail: `${error.name}(${error.args.join(", ")})`,
      });
      log.warn("action.collateral_short", {
        kind: a.kind,
        marketId: a.marketId,
        account,
        reason: error.name,
        args: error.args,
      });
      return;
    }
    if (r.status === "rejected" && classify(error) === "moot") {
      log.info("action.moot", { kind: a.kind, marketId: a.marketId, account, reason: error.name, args: error.args });
      return;
    }
    const txHash = r.status === "reverted" ? r.outcome.hash : undefined;
    this.report.errors.push({ kind: a.kind, marketId: a.marketId, account, error, txHash });
    const event =
      a.kind === "liquidate"
        ? "liquidation.failed"
        : a.kind === "deleverage"
          ? "adl.failed"
          : a.kind === "adl-session" || a.kind === "proof-too-large"
            ? "adl.session_failed"
            : a.kind === "socialize"
              ? "socialize.failed"
              : "tx.failed";
    log.error(event, { kind: a.kind, marketId: a.marketId, account, stage: r.status, error, txHash });
  }
}
