/**
 * What drives the crash after each price step: one keeper pass over every market. The demo only
 * needs `tick()`; it reads what happened from the chain's events, so any keeper that liquidates
 * and deleverages can stand behind this interface.
 *
 * DirectDriver does the keeper's work with lib/adl.ts: liquidate every liquidatable position (the
 * fund covering bankrupt ones while it can), deleverage bankrupt positions the fund cannot cover
 * with a list and proof built from events, and socialize those no eligible counterparty can absorb
 * with the empty-list proof (reporting them unsettled if that fails). Every position is valued at
 * the F of its own side.
 */
import type { Interface, Signer } from "ethers";
import { PositionBook, adlDelta, buildNoEligibleProof, planDeleverage } from "../../lib/adl";
import type { LocalSystem } from "../../lib/local";
import { equityOf, pnlPerUnit, requirementUp } from "../../lib/position";

/** What one driver tick did besides its transactions (which the demo reads from the chain). */
export interface DriverTick {
  /** Keeper passes run until one found nothing left to do. */
  passes: number;
  /** Actions that failed or were deferred, as the keeper reported them. */
  problems: string[];
}

/** A keeper pass over every market, repeated until nothing is left to do at the current prices. */
export interface CrashDriver {
  readonly name: string;
  tick(): Promise<DriverTick>;
  stop(): Promise<void>;
}

const PENDING = { blockTag: "pending" } as const;

/** A liquidatable position and how far under maintenance it is. */
export interface LiquidationCandidate {
  account: string;
  equity: bigint;
  maintenance: bigint;
}

/** The F each side's positions are valued at (loss index folded in). */
export interface SideFunding {
  long: bigint;
  short: bigint;
}

/**
 * Pure decision: the positions of `book` in `marketId` under maintenance at (P, F of their side),
 * worst first (lowest equity per maintenance), ties by address.
 */
export function liquidationCandidates(
  book: PositionBook,
  marketId: string,
  price: bigint,
  funding: SideFunding,
  mmr: bigint,
): LiquidationCandidate[] {
  const out: LiquidationCandidate[] = [];
  for (const p of book.positions(marketId)) {
    const f = p.isLong ? funding.long : funding.short;
    const equity = equityOf(p.margin, p.size, pnlPerUnit(p.isLong, p.entry, price, f));
    const maintenance = requirementUp(p.size, price, mmr);
    if (equity < maintenance) out.push({ account: p.account, equity, maintenance });
  }
  return out.sort((u, v) => {
    // equity_u / maint_u < equity_v / maint_v, cross-multiplied (maintenance > 0).
    const l = u.equity * v.maintenance;
    const r = v.equity * u.maintenance;
    if (l !== r) return l < r ? -1 : 1;
    return BigInt(u.account) < BigInt(v.account) ? -1 : 1;
  });
}

/**
 * The custom error name of a revert: from ethers' decoded `revert`, else by decoding the revert
 * data found on the error (or its cause) with `iface`.
 */
export function revertName(e: unknown, iface: Interface): string | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [e];
  while (queue.length > 0) {
    const cur = queue.shift();
    if (cur === null || typeof cur !== "object" || seen.has(cur)) continue;
    seen.add(cur);
    const o = cur as { revert?: { name?: string }; data?: unknown; error?: unknown; info?: unknown; cause?: unknown };
    if (o.revert?.name) return o.revert.name;
    if (typeof o.data === "string" && o.data.startsWith("0x") && o.data.length >= 10) {
      const parsed = iface.parseError(o.data);
      if (parsed) return parsed.name;
    }
    queue.push(o.error, o.info, o.cause, o.data);
  }
  return undefined;
}

export class DirectDriver implements CrashDriver {
  readonly name = "direct (lib/adl.ts)";
  private readonly book = new PositionBook();
  private lastBlock: number;

  /**
   * @param keeper sends every transaction; needs free collateral to take over liquidated positions.
   * @param takeoverLeverage the leverage of the margin the keeper posts for what it takes over.
   * @param fromBlock the first block to replay events from (the deployment).
   */
  constructor(
    private readonly sys: LocalSystem,
    private readonly keeper: Signer,
    private readonly marketIds: readonly string[],
    private readonly takeoverLeverage: bigint,
    fromBlock: number,
  ) {
    this.lastBlock = fromBlock - 1;
  }

  private async sync(): Promise<void> {
    const latest = await this.keeper.provider!.getBlockNumber();
    if (latest <= this.lastBlock) return;
    await this.book.sync(this.sys.clearinghouse, this.sys.deleverager, this.lastBlock + 1, latest);
    this.lastBlock = latest;
  }

  /** What the fund can pay now, as the contracts count it (18 decimals). */
  private async fundAvailable(): Promise<bigint> {
    const scale = await this.sys.clearinghouse.collateralScale();
    return (
      (await this.sys.insuranceFund.available(PENDING)) * scale +
      (await this.sys.clearinghouse.pendingFundFees(PENDING))
    );
  }

  async stop(): Promise<void> {}

  private async sideFunding(id: string): Promise<SideFunding> {
    return {
      long: await this.sys.lens.currentSideFunding(id, true, PENDING),
      short: await this.sys.lens.currentSideFunding(id, false, PENDING),
    };
  }

  async tick(): Promise<DriverTick> {
    for (const id of this.marketIds) {
      await this.sync();
      const [price] = await this.sys.oracle.getPrice(id, true, PENDING);
      const funding = await this.sideFunding(id);
      const { mmr } = await this.sys.clearinghouse.marketParams(id);
      const adl: string[] = [];
      const me = await this.keeper.getAddress();
      // Its own positions (taken over) only another account may liquidate.
      for (const c of liquidationCandidates(this.book, id, price, funding, mmr).filter((x) => x.account !== me)) {
        if (!(await this.liquidate(id, c.account))) adl.push(c.account);
      }
      for (const b of adl) await this.settle(id, b);
    }
    return { passes: 1, problems: [] };
  }

  /** Brings the margin of the position just taken over to `takeoverLeverage`, like a liquidation leg's. */
  private async topUp(id: string, price: bigint): Promise<void> {
    const ch = this.sys.clearinghouse.connect(this.keeper);
    const p = await ch.getPosition(id, await this.keeper.getAddress());
    const target = (p.size * price + this.takeoverLeverage - 1n) / this.takeoverLeverage;
    if (target > p.margin) await (await ch.addMargin(id, target - p.margin)).wait();
  }

  /** Simulates, then liquidates the most allowed; false if only ADL can settle it (AdlOnly). */
  private async liquidate(id: string, account: string): Promise<boolean> {
    const ch = this.sys.clearinghouse.connect(this.keeper);
    const size = await this.sys.lens.maxLiquidationSize(id, account, PENDING);
    if (size === 0n) return true;
    try {
      await ch.liquidate.staticCall(id, account, size, this.takeoverLeverage, PENDING);
    } catch (e) {
      if (revertName(e, ch.interface) === "AdlOnly") return false;
      throw e;
    }
    await (await ch.liquidate(id, account, size, this.takeoverLeverage)).wait();
    return true;
  }

  /**
   * Deleverages `bankrupt` call by call until it is closed, covered by the fund, or no eligible
   * counterparty is left; then the final layer: socializeLoss with the empty-list proof (the
   * driver's account takes the position over), or a report if that is refused.
   */
  private async settle(id: string, bankrupt: string): Promise<void> {
    const del = this.sys.deleverager.connect(this.keeper);
    const maxList = Number(await del.maxListLength());
    for (let call = 0; call < 64; call++) {
      await this.sync();
      const [price] = await this.sys.oracle.getPrice(id, true, PENDING);
      const funding = await this.sideFunding(id);
      const available = await this.fundAvailable();
      const b = this.book.position(id, bankrupt);
      const [own, theirs] = b.isLong ? [funding.long, funding.short] : [funding.short, funding.long];
      const d = adlDelta(this.book, id, bankrupt, price, own, available);
      if (d.deficit === 0n) return;
      if (available >= d.deficit) {
        await this.liquidate(id, bankrupt);
        return;
      }
      const plan = planDeleverage(this.book, id, bankrupt, price, theirs, d.delta, maxList);
      if (!plan) {
        const proof = buildNoEligibleProof(this.book, id, !b.isLong, price, theirs, d.delta);
        try {
          await del.socializeLoss.staticCall(id, bankrupt, proof, PENDING);
        } catch {
          const [listed] = await del.unsettled(id);
          if (!listed.includes(bankrupt)) await (await del.reportUnsettled(id, bankrupt)).wait();
          return;
        }
        await (await del.socializeLoss(id, bankrupt, proof)).wait();
        await this.topUp(id, price);
        return;
      }
      await del.deleverage.staticCall(id, bankrupt, plan.counterparties, plan.proof, PENDING);
      await (await del.deleverage(id, bankrupt, plan.counterparties, plan.proof)).wait();
    }
  }
}
