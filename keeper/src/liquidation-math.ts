/**
 * The liquidation cap of docs/liquidation.md, bit for bit as LiquidationMath.maxTake computes it
 * (ClearinghouseLens.maxLiquidationSize returns the same value on chain).
 */
import { WAD, mulDivDown, mulDivUp } from "../../lib/math";
import { requirementUp } from "../../lib/position";
import type { MarketRisk } from "./interfaces";

/** A partial liquidation may bring the remainder back to mmr * (1 + 25%) after the fee. */
export const LIQUIDATION_BUFFER = 25n * 10n ** 16n;

/**
 * The most a liquidator may take of a position of size `size` with equity `equity` at `price`: the
 * least size that restores 1.25 * mmr after the fee, rounded up, or the whole position when that
 * cannot be reached, when equity <= 0, or when the remainder would fall under the minimum notional.
 */
export function maxTake(
  size: bigint,
  equity: bigint,
  price: bigint,
  risk: Pick<MarketRisk, "mmr" | "liquidationFee" | "minNotional">,
): bigint {
  const target = risk.mmr + mulDivDown(risk.mmr, LIQUIDATION_BUFFER, WAD);
  if (equity <= 0n || target <= risk.liquidationFee) return size;
  const need = requirementUp(size, price, target) - equity;
  const perUnit = mulDivDown(target - risk.liquidationFee, price, WAD);
  if (need <= 0n || perUnit === 0n) return size;
  let cap = mulDivUp(need, WAD, perUnit);
  // At least the minimum notional's worth, so a liquidator without a position can take the cap.
  const leastLeg = mulDivUp(risk.minNotional, WAD, price);
  if (cap < leastLeg) cap = leastLeg;
  if (cap >= size || mulDivDown(size - cap, price, WAD) < risk.minNotional) return size;
  return cap;
}

/** True iff equity < ceil(ceil(q * P / W) * mmr / W) (ClearinghouseLens.isLiquidatable, PositionMath.liquidatable). */
export function isLiquidatable(size: bigint, equity: bigint, price: bigint, mmr: bigint): boolean {
  return equity < requirementUp(size, price, mmr);
}
