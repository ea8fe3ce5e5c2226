/**
 * Chain plumbing for the ADL benchmark: a seeded PRNG, deterministic trader wallets, raw
 * transactions on the in-process network (no gas estimation round trip), snapshots, and opening
 * many positions against one counterparty through signed, matched orders.
 */
import { network } from "hardhat";
import { Wallet, ZeroAddress, keccak256, toUtf8Bytes, type Interface } from "ethers";
import type { Clearinghouse, MockAggregator, MockERC20 } from "../../typechain-types";
import { orderDomain, signOrder, type Order } from "../../lib/orders";
import { WAD, mulDivUp } from "../../lib/math";
import { mulberry32 } from "../../lib/prng";

/** EIP-7825: the most gas one transaction may use. */
export const TX_GAS_CAP = 16_777_216n;
/** Collateral is a 6-decimal token; internal amounts have 18 decimals. */
export const SCALE = 10n ** 12n;
/** The mock feeds have 8 decimals. */
export const FEED_SCALE = 10n ** 10n;

/** mulberry32 (lib/prng.ts): every run builds the same books. */
export const prng = mulberry32;

/** A log-uniform draw in [lo, hi]. */
export const logUniform = (rand: () => number, lo: number, hi: number): number =>
  Math.exp(Math.log(lo) + rand() * (Math.log(hi) - Math.log(lo)));

/** A decimal number as an 18-decimal bigint, rounded to `digits` decimals. */
export function wad(v: number, digits = 6): bigint {
  return BigInt(Math.round(v * 10 ** digits)) * 10n ** BigInt(18 - digits);
}

/** The `i`-th trader wallet of `label` (private key derived from the label: reproducible). */
export function traderWallet(label: string, i: number): Wallet {
  return new Wallet(keccak256(toUtf8Bytes(`adl-bench:${label}:${i}`)));
}

export interface Receipt {
  status: number;
  gasUsed: bigint;
  blockNumber: number;
}

type RawReceipt = { status: string; gasUsed: string; blockNumber: string };

/** Sends a transaction from an unlocked node account and returns its receipt (automine). */
export async function send(from: string, to: string, data: string, gas: bigint): Promise<Receipt> {
  const hash = (await network.provider.request({
    method: "eth_sendTransaction",
    params: [{ from, to, data, gas: "0x" + gas.toString(16) }],
  })) as string;
  const r = (await network.provider.request({ method: "eth_getTransactionReceipt", params: [hash] })) as RawReceipt;
  return { status: Number(r.status), gasUsed: BigInt(r.gasUsed), blockNumber: Number(r.blockNumber) };
}

/** eth_estimateGas of a call; null if it cannot run within the block gas limit (or reverts). */
export async function estimate(from: string, to: string, data: string): Promise<{ gas?: bigint; error?: string }> {
  try {
    const g = (await network.provider.request({ method: "eth_estimateGas", params: [{ from, to, data }] })) as string;
    return { gas: BigInt(g) };
  } catch (e) {
    return { error: (e as Error).message.split("\n")[0].slice(0, 300) };
  }
}

export const snapshot = async (): Promise<string> =>
  (await network.provider.request({ method: "evm_snapshot", params: [] })) as string;

export async function revertTo(id: string): Promise<void> {
  const ok = await network.provider.request({ method: "evm_revert", params: [id] });
  if (ok !== true) throw new Error(`evm_revert(${id}) failed`);
}

/** The contracts and accounts a book is opened with. */
export interface Venue {
  clearinghouse: Clearinghouse;
  chAddress: string;
  token: MockERC20;
  aggregator: MockAggregator;
  marketId: string;
  chainId: bigint;
  /** Unlocked node accounts: the admin funds deposits and sets prices, the keeper matches. */
  admin: string;
  keeper: string;
  /** One account on the other side of every trade (its own wallet, so it signs its orders). */
  whale: Wallet;
}

/** One position to open: `size` base units at `price` with `leverage`, long or short. */
export interface PositionSpec {
  wallet: Wallet;
  isLong: boolean;
  size: bigint;
  price: bigint;
  leverage: bigint;
}

let salt = 1n;
/** The last order salt used; resetSalt(it) makes the next orders repeat the same salts. */
export const currentSalt = (): bigint => salt;
export function resetSalt(to: bigint): void {
  salt = to;
}
const FAR = 2n ** 63n;
/** Gas limit of one match (a fresh tree path costs about 1.5M). */
const MATCH_GAS = 4_000_000n;

const ifaceOf = (c: { interface: Interface }) => c.interface;

/** Sets the feed to `price` (18 decimals, a multiple of 1e10), updated at the next block. */
export async function setPrice(v: Venue, price: bigint): Promise<void> {
  if (price % FEED_SCALE !== 0n) throw new Error(`price ${price} has more than 8 decimals`);
  const data = ifaceOf(v.aggregator).encodeFunctionData("setAnswer", [price / FEED_SCALE]);
  const r = await send(v.admin, await v.aggregator.getAddress(), data, 200_000n);
  if (r.status !== 1) throw new Error("setAnswer failed");
}

/** Credits `amount` (internal 18-decimal units, rounded up to a token unit) to `account`. */
export async function depositFor(v: Venue, account: string, amount: bigint): Promise<void> {
  const tokens = (amount + SCALE - 1n) / SCALE;
  const data = ifaceOf(v.clearinghouse).encodeFunctionData("deposit", [account, tokens]);
  const r = await send(v.admin, v.chAddress, data, 300_000n);
  if (r.status !== 1) throw new Error(`deposit for ${account} failed`);
}

/** Mints the admin enough collateral for every deposit of the run and approves the clearinghouse. */
export async function fundAdmin(v: Venue, tokens: bigint): Promise<void> {
  const t = ifaceOf(v.token);
  const tokenAddress = await v.token.getAddress();
  await send(v.admin, tokenAddress, t.encodeFunctionData("mint", [v.admin, tokens]), 200_000n);
  await send(v.admin, tokenAddress, t.encodeFunctionData("approve", [v.chAddress, 2n ** 256n - 1n]), 200_000n);
}

export function order(v: Venue, trader: string, size: bigint, price: bigint, leverage: bigint): Order {
  salt += 1n;
  return {
    trader,
    marketId: v.marketId,
    size,
    limitPrice: price,
    leverage,
    salt,
    expiry: FAR,
    reduceOnly: false,
    makerAllowed: true,
    sender: ZeroAddress,
  };
}

export async function sign(v: Venue, wallet: Wallet, o: Order): Promise<string> {
  return signOrder(wallet, orderDomain(v.chainId, v.chAddress), o);
}

/** Matches a signed maker order against a signed taker order for `fill`; returns the receipt. */
export async function match(
  v: Venue,
  maker: { order: Order; sig: string },
  taker: { order: Order; sig: string },
  fill: bigint,
): Promise<Receipt> {
  const data = ifaceOf(v.clearinghouse).encodeFunctionData("matchOrders", [
    maker.order,
    maker.sig,
    taker.order,
    taker.sig,
    fill,
  ]);
  return send(v.keeper, v.chAddress, data, MATCH_GAS);
}

/** The margin a fresh position posts: ceil(size * price / leverage). */
export const marginOf = (s: PositionSpec): bigint => mulDivUp(s.size, s.price, s.leverage);

/**
 * Opens every spec against the whale at the index (the feed is set to each trade's price first, so
 * no premium accrues and F stays 0). Specs are grouped by price: one feed update and one whale order
 * (partially filled many times) per price level. Each trader gets exactly its margin plus `buffer`
 * deposited first. Calls `progress` every `every` trades.
 */
export async function openAgainstWhale(
  v: Venue,
  specs: PositionSpec[],
  buffer: bigint,
  progress?: (done: number) => void,
  every = 500,
): Promise<void> {
  for (const s of specs) await depositFor(v, s.wallet.address, marginOf(s) + buffer);
  const byPrice = new Map<bigint, PositionSpec[]>();
  for (const s of specs) {
    if (!byPrice.has(s.price)) byPrice.set(s.price, []);
    byPrice.get(s.price)!.push(s);
  }
  let done = 0;
  for (const [price, group] of [...byPrice.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    await setPrice(v, price);
    // The whale's one order per side at this level, 1x leverage.
    const buys = group.filter((s) => !s.isLong).reduce((t, s) => t + s.size, 0n);
    const sells = group.filter((s) => s.isLong).reduce((t, s) => t + s.size, 0n);
    const whaleBuy = buys > 0n ? order(v, v.whale.address, buys, price, WAD) : undefined;
    const whaleSell = sells > 0n ? order(v, v.whale.address, -sells, price, WAD) : undefined;
    const whaleSigs = new Map<Order, string>();
    for (const o of [whaleBuy, whaleSell]) if (o) whaleSigs.set(o, await sign(v, v.whale, o));
    for (const s of group) {
      const mine = order(v, s.wallet.address, s.isLong ? s.size : -s.size, price, s.leverage);
      const w = s.isLong ? whaleSell! : whaleBuy!;
      const r = await match(
        v,
        { order: mine, sig: await sign(v, s.wallet, mine) },
        { order: w, sig: whaleSigs.get(w)! },
        s.size,
      );
      if (r.status !== 1) throw new Error(`opening ${s.wallet.address} failed`);
      done += 1;
      if (progress && done % every === 0) progress(done);
    }
  }
}
