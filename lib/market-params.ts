/**
 * Market settings shared by the Ignition modules and lib/local.ts. Kept apart from lib/local.ts,
 * which deploys through those modules, so that the modules do not import their own caller.
 */
import { ethers as ethersLib } from "ethers";
import type { IClearinghouseTypes } from "../typechain-types/contracts/Clearinghouse";
import { WAD } from "./math";

export type MarketParams = IClearinghouseTypes.MarketParamsStruct;

/** The K-band reference of a market listed at `price`: bitlen(price) - 1 (see RankTree.bandOf). */
export function bandReference(price: bigint): number {
  return price.toString(2).length - 1;
}

/** Market ids are the bytes32 of their symbol. */
export const marketId = (symbol: string): string => ethersLib.encodeBytes32String(symbol);

/**
 * Conservative defaults: 10x max leverage, 5% maintenance, 2/5 bps fees, 8h funding period, fills
 * within 5% of the index (0.5% for a taker-only order); half of fees to the insurance fund, a tenth
 * to the keeper reserve, which pays 1 quote unit per settling action (liquidation, ADL call, session
 * finish, socialized loss).
 */
export function defaultMarketParams(overrides: Partial<MarketParams> = {}): MarketParams {
  return {
    imr: WAD / 10n,
    mmr: WAD / 20n,
    makerFee: 2n * 10n ** 14n,
    takerFee: 5n * 10n ** 14n,
    priceBand: WAD / 20n,
    fundFeeShare: WAD / 2n,
    maxPremium: WAD / 100n,
    keeperFeeShare: WAD / 10n,
    minNotional: 10n * WAD,
    fundingPeriod: 8n * 3600n,
    fundingWindow: 3600n,
    liquidationFee: WAD / 100n,
    liquidatorShare: WAD / 2n,
    takerBand: WAD / 200n,
    keeperPay: WAD,
    ...overrides,
  };
}
