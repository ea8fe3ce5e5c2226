/**
 * The main job, for now: deploy the whole system on the in-process Hardhat network, fund a few
 * traders, match signed orders on two markets, move the price and time (funding), liquidate the
 * position that falls below maintenance, and print positions, equity and funding as tables.
 *
 *   npm run demo
 */
import { ethers, network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { deployLocalSystem, type LocalSystem } from "../lib/local";
import { buildOrder, signAndMatch } from "../lib/matching";
import { WAD } from "../lib/math";
import { formatQuote, formatRatio } from "./format";

const USDC = 10n ** 6n;
const MARKETS = [
  { symbol: "ETH-USD", price: 2000n * WAD },
  { symbol: "BTC-USD", price: 60000n * WAD },
];

interface Trade {
  maker: number;
  taker: number;
  symbol: string;
  /** Maker's signed size in base units. */
  size: bigint;
  price: bigint;
  makerLeverage: bigint;
  takerLeverage: bigint;
}

async function trade(sys: LocalSystem, traders: HardhatEthersSigner[], keeper: HardhatEthersSigner, t: Trade) {
  const id = sys.markets.get(t.symbol)!.id;
  const maker = traders[t.maker];
  const taker = traders[t.taker];
  const makerOrder = buildOrder(maker.address, {
    marketId: id,
    size: t.size,
    limitPrice: t.price,
    leverage: t.makerLeverage,
  });
  const takerOrder = buildOrder(taker.address, {
    marketId: id,
    size: -t.size,
    limitPrice: t.price,
    leverage: t.takerLeverage,
  });
  const tx = await signAndMatch(
    sys.clearinghouse,
    keeper,
    { signer: maker, order: makerOrder },
    { signer: taker, order: takerOrder },
  );
  const receipt = await tx.wait();
  return receipt!.gasUsed;
}

async function printPositions(sys: LocalSystem, traders: HardhatEthersSigner[], title: string) {
  console.log(`\n${title}`);
  const rows: Record<string, string>[] = [];
  for (const [symbol, market] of sys.markets) {
    const funding = await sys.lens.currentFunding(market.id);
    for (const [i, t] of traders.entries()) {
      const p = await sys.clearinghouse.getPosition(market.id, t.address);
      if (p.size === 0n) continue;
      const equity = await sys.clearinghouse.equity(market.id, t.address);
      rows.push({
        trader: `#${i}`,
        market: symbol,
        side: p.isLong ? "long" : "short",
        size: formatRatio(p.size),
        "entry K": formatQuote(p.entry),
        margin: formatQuote(p.margin),
        "a = q/c": formatRatio(p.leverage),
        equity: formatQuote(equity),
        "margin ratio": formatRatio(await sys.lens.marginRatio(market.id, t.address)),
        liquidatable: (await sys.clearinghouse.isLiquidatable(market.id, t.address)) ? "yes" : "no",
        "funding F": formatQuote(funding),
      });
    }
  }
  console.table(rows);
}

async function main() {
  console.log(`network: ${network.name}`);
  const [admin, keeper, ...rest] = await ethers.getSigners();
  const traders = rest.slice(0, 6);
  const sys = await deployLocalSystem(admin, MARKETS);
  console.log(`clearinghouse: ${await sys.clearinghouse.getAddress()}`);
  for (const t of traders) {
    await (await sys.token.mint(t.address, 100_000n * USDC)).wait();
    await (await sys.token.connect(t).approve(await sys.clearinghouse.getAddress(), ethers.MaxUint256)).wait();
    await (await sys.clearinghouse.connect(t).deposit(t.address, 50_000n * USDC)).wait();
  }
  console.log(`funded ${traders.length} traders with 50,000 each`);

  const eth = 2000n * WAD;
  const btc = 60000n * WAD;
  const trades: Trade[] = [
    {
      maker: 0,
      taker: 1,
      symbol: "ETH-USD",
      size: 10n * WAD,
      price: eth,
      makerLeverage: 8n * WAD,
      takerLeverage: 3n * WAD,
    },
    {
      maker: 2,
      taker: 3,
      symbol: "ETH-USD",
      size: 5n * WAD,
      price: eth + 10n * WAD,
      makerLeverage: 2n * WAD,
      takerLeverage: 5n * WAD,
    },
    {
      maker: 4,
      taker: 5,
      symbol: "BTC-USD",
      size: WAD / 2n,
      price: btc,
      makerLeverage: 5n * WAD,
      takerLeverage: 5n * WAD,
    },
    {
      maker: 1,
      taker: 4,
      symbol: "BTC-USD",
      size: -WAD / 4n,
      price: btc + 100n * WAD,
      makerLeverage: 4n * WAD,
      takerLeverage: 4n * WAD,
    },
  ];
  for (const t of trades) {
    const gas = await trade(sys, traders, keeper, t);
    console.log(
      `matched ${t.symbol} #${t.maker} vs #${t.taker} size ${formatRatio(t.size)} @ ${formatQuote(t.price)} (gas ${gas})`,
    );
  }
  await printPositions(sys, traders, "Positions after the opening trades");

  // Buyers paid above the index in the first hour: the next window charges longs funding.
  await network.provider.send("evm_increaseTime", [3 * 3600]);
  await network.provider.send("evm_mine", []);
  await sys.setPrice("ETH-USD", 1800n * WAD);
  await sys.setPrice("BTC-USD", 61500n * WAD);
  for (const m of sys.markets.values()) await (await sys.clearinghouse.accrueFunding(m.id)).wait();
  await printPositions(sys, traders, "Three hours later: ETH at 1,800, BTC at 61,500");

  const ethId = sys.markets.get("ETH-USD")!.id;
  const victim = traders[0];
  if (await sys.clearinghouse.isLiquidatable(ethId, victim.address)) {
    const max = await sys.lens.maxLiquidationSize(ethId, victim.address);
    await (await sys.token.mint(keeper.address, 20_000n * USDC)).wait();
    await (await sys.token.connect(keeper).approve(await sys.clearinghouse.getAddress(), ethers.MaxUint256)).wait();
    await (await sys.clearinghouse.connect(keeper).deposit(keeper.address, 20_000n * USDC)).wait();
    const tx = await sys.clearinghouse.connect(keeper).liquidate(ethId, victim.address, max, 5n * WAD);
    const receipt = await tx.wait();
    console.log(`\nkeeper liquidated ${formatRatio(max)} ETH of trader #0 (gas ${receipt!.gasUsed})`);
    const rows = [victim.address, keeper.address].map(async (a, i) => {
      const p = await sys.clearinghouse.getPosition(ethId, a);
      return {
        account: i === 0 ? "trader #0" : "keeper",
        size: formatRatio(p.size),
        margin: formatQuote(p.margin),
        equity: formatQuote(await sys.clearinghouse.equity(ethId, a)),
        liquidatable: (await sys.clearinghouse.isLiquidatable(ethId, a)) ? "yes" : "no",
      };
    });
    console.table(await Promise.all(rows));
  }

  const state = await sys.clearinghouse.marketState(ethId);
  console.log("\nETH-USD market:");
  console.table([
    {
      "long OI": formatRatio(state.longOpenInterest),
      "short OI": formatRatio(state.shortOpenInterest),
      "funding F": formatQuote(state.cumulativeFunding),
      "rate (bps/hour)": formatRatio(state.fundingRate * 3600n * 10000n),
      "fund fees": formatQuote(await sys.clearinghouse.pendingFundFees()),
      treasury: formatQuote(await sys.clearinghouse.treasuryBalance()),
    },
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
