/** EIP-712 orders: the typed-data layout the Clearinghouse verifies, and signing helpers. */
import type { Signer, TypedDataDomain } from "ethers";

/** A trader's signed intent (mirrors IClearinghouse.Order). */
export interface Order {
  trader: string;
  marketId: string;
  /** Signed base size, 18 decimals: > 0 buys. */
  size: bigint;
  limitPrice: bigint;
  leverage: bigint;
  salt: bigint;
  expiry: bigint;
  reduceOnly: boolean;
  /**
   * May rest and be matched as the maker at its own limit; false: taker only, filled at a resting
   * order's price within the market's takerBand of the index.
   */
  makerAllowed: boolean;
  /** The only address allowed to submit the order in a match; the zero address lets anyone. */
  sender: string;
}

export const ORDER_TYPES = {
  Order: [
    { name: "trader", type: "address" },
    { name: "marketId", type: "bytes32" },
    { name: "size", type: "int256" },
    { name: "limitPrice", type: "uint256" },
    { name: "leverage", type: "uint256" },
    { name: "salt", type: "uint256" },
    { name: "expiry", type: "uint64" },
    { name: "reduceOnly", type: "bool" },
    { name: "makerAllowed", type: "bool" },
    { name: "sender", type: "address" },
  ],
};

/** The Clearinghouse's EIP-712 domain on `chainId` at `verifyingContract`. */
export function orderDomain(chainId: bigint, verifyingContract: string): TypedDataDomain {
  return { name: "Clearinghouse", version: "1", chainId, verifyingContract };
}

/** Signs `order` with `signer` for the given domain. */
export async function signOrder(signer: Signer, domain: TypedDataDomain, order: Order): Promise<string> {
  return signer.signTypedData(domain, ORDER_TYPES, order);
}
