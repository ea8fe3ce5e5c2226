/** Building, signing and matching order pairs against a Clearinghouse. */
import { ZeroAddress, type Signer, type ContractTransactionResponse } from "ethers";
import type { Clearinghouse } from "../typechain-types";
import { orderDomain, signOrder, type Order } from "./orders";

let saltCounter = 0n;

/** Fields a caller usually sets; the rest get safe defaults. */
export interface OrderSpec {
  marketId: string;
  size: bigint;
  limitPrice: bigint;
  leverage?: bigint;
  expiry?: bigint;
  reduceOnly?: boolean;
  /** Default true: the order may rest as a maker. Set false for a taker-only order. */
  makerAllowed?: boolean;
  /** Default the zero address: anyone may submit the order. Else only this address may. */
  sender?: string;
  salt?: bigint;
}

/**
 * A complete order for `trader`: leverage 5x, expiry far away, a fresh salt and no sender
 * restriction unless given.
 */
export function buildOrder(trader: string, spec: OrderSpec): Order {
  saltCounter += 1n;
  return {
    trader,
    marketId: spec.marketId,
    size: spec.size,
    limitPrice: spec.limitPrice,
    leverage: spec.leverage ?? 5n * 10n ** 18n,
    salt: spec.salt ?? BigInt(Date.now()) * 1_000_000n + saltCounter,
    expiry: spec.expiry ?? 2n ** 63n,
    reduceOnly: spec.reduceOnly ?? false,
    makerAllowed: spec.makerAllowed ?? true,
    sender: spec.sender ?? ZeroAddress,
  };
}

/** Signs an order for `clearinghouse` on the connected chain. */
export async function signFor(clearinghouse: Clearinghouse, signer: Signer, order: Order): Promise<string> {
  const network = await signer.provider!.getNetwork();
  return signOrder(signer, orderDomain(network.chainId, await clearinghouse.getAddress()), order);
}

/** One maker/taker pair for `signAndMatchBatch`, with its fill size. */
export interface PairToMatch {
  maker: { signer: Signer; order: Order };
  taker: { signer: Signer; order: Order };
  fillSize: bigint;
}

/** Signs every pair and has `keeper` execute them as one `matchOrderBatch` (all or nothing). */
export async function signAndMatchBatch(
  clearinghouse: Clearinghouse,
  keeper: Signer,
  pairs: PairToMatch[],
): Promise<ContractTransactionResponse> {
  const matches = await Promise.all(
    pairs.map(async (p) => ({
      maker: p.maker.order,
      makerSignature: await signFor(clearinghouse, p.maker.signer, p.maker.order),
      taker: p.taker.order,
      takerSignature: await signFor(clearinghouse, p.taker.signer, p.taker.order),
      fillSize: p.fillSize,
    })),
  );
  return clearinghouse.connect(keeper).matchOrderBatch(matches);
}

/**
 * Signs a maker and a taker order and has `keeper` match them for `fillSize` (default: the
 * smaller of the two sizes) at the maker's price.
 */
export async function signAndMatch(
  clearinghouse: Clearinghouse,
  keeper: Signer,
  maker: { signer: Signer; order: Order },
  taker: { signer: Signer; order: Order },
  fillSize?: bigint,
): Promise<ContractTransactionResponse> {
  const abs = (v: bigint) => (v < 0n ? -v : v);
  const size =
    fillSize ?? (abs(maker.order.size) < abs(taker.order.size) ? abs(maker.order.size) : abs(taker.order.size));
  const [makerSig, takerSig] = await Promise.all([
    signFor(clearinghouse, maker.signer, maker.order),
    signFor(clearinghouse, taker.signer, taker.order),
  ]);
  return clearinghouse.connect(keeper).matchOrders(maker.order, makerSig, taker.order, takerSig, size);
}
