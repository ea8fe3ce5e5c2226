/**
 * Revert decoding and error classes. A revert's custom error is decoded with the contracts'
 * interfaces (clearinghouse, deleverager, lens, oracle, fund, rank tree) so logs and reports name
 * it with its arguments; `classify` tells the executor what to do about it.
 */
import { Interface, type ErrorFragment } from "ethers";
import {
  AutoDeleverager__factory,
  ClearinghouseLens__factory,
  Clearinghouse__factory,
  InsuranceFund__factory,
  OracleAdapter__factory,
  RankTree__factory,
} from "../../typechain-types";
import type { DecodedError } from "./types";

const INTERFACES: Interface[] = [
  Clearinghouse__factory.createInterface(),
  AutoDeleverager__factory.createInterface(),
  ClearinghouseLens__factory.createInterface(),
  OracleAdapter__factory.createInterface(),
  InsuranceFund__factory.createInterface(),
  RankTree__factory.createInterface(),
];

/** Standard Solidity Error(string) and Panic(uint256). */
const BUILTIN = new Interface(["error Error(string message)", "error Panic(uint256 code)"]);

const BY_SELECTOR = new Map<string, { iface: Interface; fragment: ErrorFragment }>();
for (const iface of [BUILTIN, ...INTERFACES]) {
  iface.forEachError((fragment) => {
    if (!BY_SELECTOR.has(fragment.selector)) BY_SELECTOR.set(fragment.selector, { iface, fragment });
  });
}

const HEX = /^0x[0-9a-fA-F]*$/;

/** The first revert-data-looking `data` field inside an (ethers / provider) error, searched breadth-first. */
export function revertData(error: unknown): string | undefined {
  const queue: unknown[] = [error];
  const seen = new Set<unknown>();
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    const rec = e as Record<string, unknown>;
    const data = rec.data;
    if (typeof data === "string" && HEX.test(data) && data.length >= 10) return data;
    for (const k of ["error", "info", "cause", "data", "revert"]) if (k in rec) queue.push(rec[k]);
  }
  return undefined;
}

/** The custom error (name and arguments as strings) a revert carries, or the error's message. */
export function decodeError(error: unknown): DecodedError {
  const data = revertData(error);
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  if (data) {
    const known = BY_SELECTOR.get(data.slice(0, 10).toLowerCase());
    if (known) {
      try {
        const args = known.iface.decodeErrorResult(known.fragment, data);
        return { name: known.fragment.name, args: args.map((a: unknown) => String(a)), message };
      } catch {
        return { name: known.fragment.name, args: [], message };
      }
    }
    return { name: "UnknownRevert", args: [data], message };
  }
  if (isTransient(error)) return { name: "RpcError", args: [], message };
  return { name: "Error", args: [], message };
}

/** Errors that mean the list or proof went stale: rebuild from fresh state and try again. */
export const STALE_ADL = new Set([
  "AdlListOrder",
  "AdlMemberOutranks",
  "AdlLeafCountMismatch",
  "AdlNodeNotPrunable",
  "AdlEntryIneligible",
  "AdlEntrySameSide",
  "AdlEntryNotFinite",
  "AdlEntryIsBankrupt",
  "AdlListPadded",
  "AdlNoLiveEntry",
  "AdlMembersNotAscending",
]);

/** Errors that mean the action is no longer needed (someone else acted, the price moved). */
export const MOOT = new Set([
  "AdlNotBankrupt",
  "AdlFundSufficient",
  "AdlOnly",
  "PositionNotLiquidatable",
  "PositionNotFound",
  "AdlStillUnsettled",
]);

/** Errors that mean an ADL session holds the side: wait until it ends (the guard blocks changes). */
export const BLOCKED = new Set(["AdlSessionActive", "AdlPending"]);

/** The deadline trigger of the final layer is not open yet (B not listed long enough). */
export const EARLY = new Set(["AdlSocialTooEarly"]);

/** The keeper's free collateral does not cover a takeover (liquidation leg or socialized position). */
export const COLLATERAL = new Set(["InsufficientFreeCollateral"]);

export type ErrorClass = "stale" | "moot" | "blocked" | "early" | "collateral" | "resize" | "transient" | "fatal";

/**
 * stale: rebuild the list and proof and retry; moot: drop the action (the next tick decides again);
 * blocked: an ADL session is open on that side, defer; early: the final layer's deadline has not
 * come, defer; collateral: the keeper lacks free collateral for the takeover, defer and warn;
 * resize: re-read the liquidation cap and retry; transient: an RPC failure, retry with backoff;
 * fatal: report and move on.
 */
export function classify(decoded: DecodedError): ErrorClass {
  if (STALE_ADL.has(decoded.name)) return "stale";
  if (MOOT.has(decoded.name)) return "moot";
  if (BLOCKED.has(decoded.name)) return "blocked";
  if (EARLY.has(decoded.name)) return "early";
  if (COLLATERAL.has(decoded.name)) return "collateral";
  if (decoded.name === "LiquidationTooLarge") return "resize";
  if (decoded.name === "RpcError") return "transient";
  return "fatal";
}

const TRANSIENT_CODES = new Set(["NETWORK_ERROR", "TIMEOUT", "SERVER_ERROR", "UNKNOWN_ERROR"]);
const TRANSIENT_TEXT =
  /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|socket hang up|rate limit|too many requests|\b429\b|\b502\b|\b503\b|\b504\b|timeout/i;

/** True for RPC failures worth retrying: network errors, timeouts, overloaded servers; never a revert. */
export function isTransient(error: unknown): boolean {
  if (revertData(error)) return false;
  const rec = (error ?? {}) as { code?: unknown; message?: unknown };
  if (rec.code === "CALL_EXCEPTION") return false;
  if (typeof rec.code === "string" && TRANSIENT_CODES.has(rec.code)) return true;
  return typeof rec.message === "string" && TRANSIENT_TEXT.test(rec.message);
}

/** Nonce errors: resynchronise the nonce from the node and send again. */
export function isNonceError(error: unknown): boolean {
  const rec = (error ?? {}) as { code?: unknown; message?: unknown };
  if (rec.code === "NONCE_EXPIRED") return true;
  return (
    typeof rec.message === "string" && /nonce (too low|too high|has already been used)|invalid nonce/i.test(rec.message)
  );
}
