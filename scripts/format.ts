/** Human-readable renderings of 18-decimal fixed-point bigints (display only, never math). */
import { WAD } from "../lib/math";

function fixed(value: bigint, decimals: number): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const unit = 10n ** BigInt(decimals);
  const scaled = (abs * unit) / WAD; // truncated for display
  const whole = scaled / unit;
  const frac = (scaled % unit).toString().padStart(decimals, "0");
  const wholeText = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${wholeText}${decimals > 0 ? "." + frac : ""}`;
}

/** A quote amount or price with 2 decimals. */
export const formatQuote = (value: bigint): string => fixed(value, 2);
/** A size, ratio or leverage with 4 decimals. */
export const formatRatio = (value: bigint): string => fixed(value, 4);
