/**
 * The crash the end-to-end run drives from its own process, against a deployed system on a node:
 * traders deposit and trade on both sides of ETH-USD at the index (so funding stays near zero), a
 * staker puts a small stake in the insurance fund, the keeper's account gets margin for its
 * takeover legs, then the index is stepped down so that positions become liquidatable, then
 * bankrupt while the fund can pay, then bankrupt beyond what the fund holds (ADL).
 */
import { MaxUint256, type JsonRpcProvider, type Signer } from "ethers";
import {
  Clearinghouse__factory,
  InsuranceFund__factory,
  MockAggregator__factory,
  MockERC20__factory,
  type Clearinghouse,
} from "../typechain-types";
import type { Deployment } from "../lib/deployment";
import { marketId } from "../lib/local";
import { buildOrder, signFor } from "../lib/matching";

const W = 10n ** 18n;
const USD = 10n ** 6n;
const FEED_SCALE = 10n ** 10n;
export const ETH = "ETH-USD";
export const BTC_SYMBOL = "BTC-USD";

/** Account indexes of the node's unlocked accounts. */
export const ACCOUNTS = { admin: 0, keeper: 1, staker: 2, firstTrader: 3 } as const;

/** One matched pair at the index: `long` buys `size` from `short`. */
interface Pair {
  long: number;
  short: number;
  /** ETH, thousandths. */
  sizeMilli: bigint;
  longLeverage: bigint;
  shortLeverage: bigint;
}

/**
 * Longs at 10x go bankrupt below -10% (the first step gaps to -11%: 20 per ETH, 140 in all, more
 * than the fund holds); the one at 6x stays above maintenance there and goes bankrupt in the
 * second step (-17.5%), with the fund drained. The shorts profit and form the ADL queue (the 10x
 * short scores highest). Trader indexes are offsets from ACCOUNTS.firstTrader.
 */
const PAIRS: readonly Pair[] = [
  { long: 0, short: 5, sizeMilli: 3000n, longLeverage: 10n, shortLeverage: 2n },
  { long: 1, short: 6, sizeMilli: 2000n, longLeverage: 10n, shortLeverage: 3n },
  { long: 2, short: 7, sizeMilli: 2000n, longLeverage: 10n, shortLeverage: 4n },
  { long: 3, short: 8, sizeMilli: 1500n, longLeverage: 6n, shortLeverage: 5n },
  { long: 4, short: 9, sizeMilli: 1000n, longLeverage: 2n, shortLeverage: 10n },
];
/** BTC-USD: a 10x long against a 2x short; the short later closes against a late 10x short. */
const BTC = { long: 10, short: 11, lateShort: 12, size: W / 10n, price: 60_000n * W } as const;
/** The BTC-USD long's index in CrashContext.traders: the position the final layer settles. */
export const BTC_LONG = BTC.long;
export const TRADERS = 13;
export const BTC_GAP_USD = 45_000n;

/** The index path: listing price, then each step of the crash (USD per ETH). */
export const START_PRICE_USD = 2000n;
export const CRASH_STEPS_USD: readonly bigint[] = [1780n, 1650n];

/** Collateral amounts (token units, 6 decimals). */
const TRADER_DEPOSIT = 20_000n * USD;
const KEEPER_DEPOSIT = 200_000n * USD;
/** A small fund: it pays the first bankruptcies and then runs dry, so the rest need ADL. */
export const FUND_STAKE = 60n * USD;

export interface CrashContext {
  provider: JsonRpcProvider;
  deployment: Deployment;
  signers: Signer[];
  clearinghouse: Clearinghouse;
  ethId: string;
  traders: string[];
  keeper: string;
}

export async function connect(provider: JsonRpcProvider, deployment: Deployment): Promise<CrashContext> {
  const accounts = await provider.listAccounts();
  if (accounts.length < ACCOUNTS.firstTrader + TRADERS)
    throw new Error(`the node has only ${accounts.length} accounts`);
  const signers: Signer[] = accounts;
  return {
    provider,
    deployment,
    signers,
    clearinghouse: Clearinghouse__factory.connect(deployment.clearinghouse, provider),
    ethId: marketId(ETH),
    traders: accounts.slice(ACCOUNTS.firstTrader, ACCOUNTS.firstTrader + TRADERS).map((a) => a.address),
    keeper: accounts[ACCOUNTS.keeper].address,
  };
}

async function send(tx: Promise<{ wait(): Promise<unknown> }>): Promise<void> {
  await (await tx).wait();
}

/** Deposits for traders and the keeper, the fund stake, and the opening trades at the index. */
export async function openBook(ctx: CrashContext): Promise<void> {
  const { deployment, signers } = ctx;
  const admin = signers[ACCOUNTS.admin];
  const token = MockERC20__factory.connect(deployment.collateral, admin);
  const fund = InsuranceFund__factory.connect(deployment.insuranceFund, signers[ACCOUNTS.staker]);
  const funded: [number, bigint][] = [
    [ACCOUNTS.keeper, KEEPER_DEPOSIT],
    ...ctx.traders.map((_, i): [number, bigint] => [ACCOUNTS.firstTrader + i, TRADER_DEPOSIT]),
  ];
  for (const [index, amount] of funded) {
    const who = signers[index];
    await send(token.mint(await who.getAddress(), amount));
    await send(token.connect(who).approve(deployment.clearinghouse, MaxUint256));
    await send(ctx.clearinghouse.connect(who).deposit(await who.getAddress(), amount));
  }
  await send(token.mint(await signers[ACCOUNTS.staker].getAddress(), FUND_STAKE));
  await send(token.connect(signers[ACCOUNTS.staker]).approve(deployment.insuranceFund, FUND_STAKE));
  await send(fund.deposit(FUND_STAKE, await signers[ACCOUNTS.staker].getAddress()));

  const price = START_PRICE_USD * W;
  for (const pair of PAIRS) {
    const size = (pair.sizeMilli * W) / 1000n;
    const fill = await signedFill(ctx, ctx.ethId, price, size, [
      { trader: pair.long, leverage: pair.longLeverage * W },
      { trader: pair.short, leverage: pair.shortLeverage * W },
    ]);
    await send(fill());
  }
  const btc = await signedFill(ctx, marketId(BTC_SYMBOL), BTC.price, BTC.size, [
    { trader: BTC.long, leverage: 10n * W },
    { trader: BTC.short, leverage: 2n * W },
  ]);
  await send(btc());
}

interface Side {
  /** Offset from ACCOUNTS.firstTrader. */
  trader: number;
  leverage: bigint;
  reduceOnly?: boolean;
}

/**
 * Signs a maker order buying `size` at `price` and a taker order selling it; returns the admin's
 * matchOrders call (with a fixed gas limit, so it can be sent while the price update that makes
 * it valid is still pending).
 */
async function signedFill(ctx: CrashContext, id: string, price: bigint, size: bigint, [buyer, seller]: [Side, Side]) {
  const buy = ctx.signers[ACCOUNTS.firstTrader + buyer.trader];
  const sell = ctx.signers[ACCOUNTS.firstTrader + seller.trader];
  const maker = buildOrder(await buy.getAddress(), {
    marketId: id,
    size,
    limitPrice: price,
    leverage: buyer.leverage,
    reduceOnly: buyer.reduceOnly,
  });
  const taker = buildOrder(await sell.getAddress(), {
    marketId: id,
    size: -size,
    limitPrice: price,
    leverage: seller.leverage,
    reduceOnly: seller.reduceOnly,
    makerAllowed: false,
  });
  const ch = ctx.clearinghouse.connect(ctx.signers[ACCOUNTS.admin]);
  const [makerSig, takerSig] = [await signFor(ch, buy, maker), await signFor(ch, sell, taker)];
  return () => ch.matchOrders(maker, makerSig, taker, takerSig, size, { gasLimit: FILL_GAS_LIMIT });
}

const FILL_GAS_LIMIT = 3_000_000n;

/**
 * BTC-USD gaps to BTC_GAP_USD, and in the same block the 2x short takes its profit by buying back
 * from a newcomer who opens a 10x short at the new price. The 10x long is then bankrupt with the
 * fund drained, and its only counterparty entered after the gap: its equity per unit (a tenth of
 * the price) is below the loss per unit, so it is ineligible and ADL cannot settle the long: the
 * keeper socializes it (docs/mechanism.md section 7.6). One block, so no keeper acts between.
 */
export async function btcGapWithLateEntrant(ctx: CrashContext): Promise<void> {
  const price = BTC_GAP_USD * W;
  const fill = await signedFill(ctx, marketId(BTC_SYMBOL), price, BTC.size, [
    { trader: BTC.short, leverage: 2n * W, reduceOnly: true },
    { trader: BTC.lateShort, leverage: 10n * W },
  ]);
  const feed = MockAggregator__factory.connect(ctx.deployment.feeds.BTC_USD, ctx.signers[ACCOUNTS.admin]);
  await ctx.provider.send("evm_setAutomine", [false]);
  try {
    // Same sender: the price update (lower nonce) runs first in the block.
    const update = await feed.setAnswer(price / FEED_SCALE, { gasLimit: 200_000n });
    const trade = await fill();
    await ctx.provider.send("evm_mine", []);
    for (const tx of [update, trade]) {
      const receipt = await tx.wait();
      if (receipt?.status !== 1) throw new Error(`BTC gap transaction ${tx.hash} failed`);
    }
  } finally {
    await ctx.provider.send("evm_setAutomine", [true]);
  }
}

/** Sets the ETH-USD mock feed to `usd` (whole dollars), updated now. */
export async function setEthPrice(ctx: CrashContext, usd: bigint): Promise<void> {
  const feed = MockAggregator__factory.connect(ctx.deployment.feeds.ETH_USD, ctx.signers[ACCOUNTS.admin]);
  await send(feed.setAnswer((usd * W) / FEED_SCALE));
}
