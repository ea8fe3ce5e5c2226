/**
 * PriceSource on chain. Reads run against the pending block (the one the keeper's next transaction
 * lands in: F moves every second, and the deleverager checks the list at the call's own (P, F)),
 * falling back to the latest block on nodes that do not serve "pending". Besides F it reads each
 * side's F with its socialized-loss index folded in, which every position of that side is valued at.
 */
import { getAddress } from "ethers";
import type { AdlBounds, MarketReading, PriceSource } from "../interfaces";
import { withRetry, type RetryPolicy } from "../retry";
import type { KeeperContracts } from "./contracts";

type Tag = { blockTag: "pending" | "latest" };

export class ChainPriceSource implements PriceSource {
  private tag: Tag = { blockTag: "pending" };

  constructor(
    private readonly c: KeeperContracts,
    private readonly retry: RetryPolicy,
  ) {}

  /** Runs a read at the pending block; if the node rejects the tag itself, switches to latest for good. */
  private async read<T>(fn: (tag: Tag) => Promise<T>): Promise<T> {
    return withRetry(async () => {
      try {
        return await fn(this.tag);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (this.tag.blockTag === "pending" && /pending|block tag|unknown block/i.test(msg)) {
          this.tag = { blockTag: "latest" };
          return fn(this.tag);
        }
        throw e;
      }
    }, this.retry);
  }

  async market(marketId: string): Promise<MarketReading> {
    const { clearinghouse, lens, oracle, deleverager } = this.c;
    const [[price], funding, fundingLong, fundingShort, params, [, paused], [accounts, deficits], socialDelay] =
      await Promise.all([
        this.read((t) => oracle.getPrice(marketId, true, t)),
        this.read((t) => lens.currentFunding(marketId, t)),
        this.read((t) => lens.currentSideFunding(marketId, true, t)),
        this.read((t) => lens.currentSideFunding(marketId, false, t)),
        this.read((t) => clearinghouse.marketParams(marketId, t)),
        this.read((t) => clearinghouse.marketStatus(marketId, t)),
        this.read((t) => deleverager.unsettled(marketId, t)),
        this.read((t) => deleverager.socialDelay(marketId, t)),
      ]);
    const since = await Promise.all(accounts.map((a) => this.read((t) => deleverager.unsettledSince(marketId, a, t))));
    const unsettled = new Map<string, bigint>();
    const unsettledSince = new Map<string, bigint>();
    accounts.forEach((a, i) => {
      unsettled.set(getAddress(a), deficits[i]);
      unsettledSince.set(getAddress(a), since[i]);
    });
    return {
      marketId,
      price,
      funding,
      fundingLong,
      fundingShort,
      risk: {
        imr: params.imr,
        mmr: params.mmr,
        liquidationFee: params.liquidationFee,
        minNotional: params.minNotional,
      },
      paused,
      unsettled,
      unsettledSince,
      socialDelay,
    };
  }

  async fundAvailable(): Promise<bigint> {
    const { clearinghouse, insuranceFund } = this.c;
    const [pending, tokens, scale] = await Promise.all([
      this.read((t) => clearinghouse.pendingFundFees(t)),
      this.read((t) => insuranceFund.available(t)),
      this.read((t) => clearinghouse.collateralScale(t)),
    ]);
    return pending + tokens * scale;
  }

  async bounds(): Promise<AdlBounds> {
    const d = this.c.deleverager;
    const [list, nodes, members] = await Promise.all([
      this.read((t) => d.maxListLength(t)),
      this.read((t) => d.maxProofNodes(t)),
      this.read((t) => d.maxOpenedMembers(t)),
    ]);
    return { maxListLength: Number(list), maxProofNodes: Number(nodes), maxOpenedMembers: Number(members) };
  }

  async maxLiquidationSize(marketId: string, account: string): Promise<bigint> {
    return this.read((t) => this.c.lens.maxLiquidationSize(marketId, account, t));
  }

  async freeCollateral(account: string): Promise<bigint> {
    return this.read((t) => this.c.clearinghouse.freeCollateral(account, t));
  }
}
