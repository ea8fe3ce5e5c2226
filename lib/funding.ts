/** Funding accrual, bit for bit as contracts/libraries/FundingMath.sol. */
import { WAD } from "./math";

export interface FundingAccrual {
  cumulativeFunding: bigint;
  fundingRate: bigint;
  lastFundingTime: bigint;
  windowStart: bigint;
  premiumTimesSize: bigint;
  windowSize: bigint;
}

/** Solidity's signed division: truncates toward zero (bigint does the same). */
const truncDiv = (a: bigint, b: bigint): bigint => a / b;

function increment(rate: bigint, price: bigint, dt: bigint): bigint {
  if (rate === 0n || dt === 0n) return 0n;
  return truncDiv(rate * price * dt, WAD);
}

/**
 * Projects the accrual state forward to `now` at index `price` (FundingMath.project).
 * `openInterest` is the market's long open interest now: a closing window's premium is
 * sum(premium * size) / max(sum(size), openInterest).
 */
export function projectFunding(
  state: FundingAccrual,
  fundingWindow: bigint,
  fundingPeriod: bigint,
  price: bigint,
  now: bigint,
  openInterest: bigint,
): FundingAccrual {
  const a = { ...state };
  let cursor = a.lastFundingTime;
  const windowEnd = a.windowStart + fundingWindow;
  if (now >= windowEnd) {
    const closedAt = windowEnd > cursor ? windowEnd : cursor;
    a.cumulativeFunding += increment(a.fundingRate, price, closedAt - cursor);
    cursor = closedAt;
    const weight = a.windowSize > openInterest ? a.windowSize : openInterest;
    a.fundingRate = a.windowSize === 0n ? 0n : truncDiv(truncDiv(a.premiumTimesSize, weight), fundingPeriod);
    a.premiumTimesSize = 0n;
    a.windowSize = 0n;
    const fullWindows = (now - windowEnd) / fundingWindow;
    if (fullWindows > 0n) {
      const nextEnd = windowEnd + fundingWindow;
      if (nextEnd > cursor) {
        a.cumulativeFunding += increment(a.fundingRate, price, nextEnd - cursor);
        cursor = nextEnd;
      }
      a.fundingRate = 0n;
    }
    a.windowStart = windowEnd + fullWindows * fundingWindow;
  }
  a.cumulativeFunding += increment(a.fundingRate, price, now - cursor);
  a.lastFundingTime = now;
  return a;
}

/** Clamped premium (p - P) / P of a fill, truncated toward zero (FundingMath.premium). */
export function premiumOf(fillPrice: bigint, indexPrice: bigint, maxPremium: bigint): bigint {
  let p = truncDiv((fillPrice - indexPrice) * WAD, indexPrice);
  if (p > maxPremium) p = maxPremium;
  if (p < -maxPremium) p = -maxPremium;
  return p;
}
