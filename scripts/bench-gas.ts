/**
 * Gas of every clearinghouse and insurance-fund operation, one scenario each, measured on the
 * in-process Hardhat network. Writes bench/clearinghouse-gas.json and the table in docs/gas.md.
 *
 *   npm run bench:gas
 */
import { writeFileSync, readFileSync } from "node:fs";
import { ethers, network } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import { deployLocalSystem } from "../lib/local";
import { buildOrder, signAndMatch } from "../lib/matching";
import { WAD } from "../lib/math";

const USDC = 10n ** 6n;

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  return receipt!.gasUsed;
}

async function main() {
  const [admin, keeper, alice, bob, carol, dave, staker, erin, frank] = await ethers.getSigners();
  const sys = await deployLocalSystem(admin, [{ symbol: "ETH-USD", price: 2000n * WAD }]);
  const ch = sys.clearinghouse;
  const id = sys.markets.get("ETH-USD")!.id;
  const chAddress = await ch.getAddress();
  const rows: { operation: string; scenario: string; gas: bigint }[] = [];
  const record = (operation: string, scenario: string, gas: bigint) => {
    rows.push({ operation, scenario, gas });
    console.log(`${operation.padEnd(16)} ${scenario.padEnd(52)} ${gas}`);
  };

  for (const t of [alice, bob, carol, dave, keeper, staker, erin, frank]) {
    await (await sys.token.mint(t.address, 1_000_000n * USDC)).wait();
    await (await sys.token.connect(t).approve(chAddress, ethers.MaxUint256)).wait();
  }
  record(
    "deposit",
    "first deposit of an account",
    await gasOf(ch.connect(alice).deposit(alice.address, 100_000n * USDC)),
  );
  record("deposit", "further deposit", await gasOf(ch.connect(alice).deposit(alice.address, 1_000n * USDC)));
  for (const t of [bob, carol, dave, keeper, erin, frank])
    await (await ch.connect(t).deposit(t.address, 100_000n * USDC)).wait();
  record(
    "withdraw",
    "partial withdrawal of free collateral",
    await gasOf(ch.connect(alice).withdraw(alice.address, 500n * USDC)),
  );

  const price = 2000n * WAD;
  const match = (makerSize: bigint, maker = alice, taker = bob, p = price) =>
    gasOf(
      signAndMatch(
        ch,
        keeper,
        { signer: maker, order: buildOrder(maker.address, { marketId: id, size: makerSize, limitPrice: p }) },
        { signer: taker, order: buildOrder(taker.address, { marketId: id, size: -makerSize, limitPrice: p }) },
      ),
    );
  record("matchOrders", "open: both traders open a position", await match(2n * WAD));
  record("matchOrders", "increase: both traders add to their positions", await match(WAD));
  record("matchOrders", "reduce: both traders shrink their positions", await match(-WAD));
  record("matchOrders", "close: both traders close", await match(-2n * WAD));
  await (await match(WAD)).valueOf();
  record("matchOrders", "flip: both traders cross zero (close + open)", await match(-2n * WAD));
  record("matchOrders", "open against an existing book (third trader pair)", await match(3n * WAD, carol, dave));

  record("addMargin", "add margin to an open position", await gasOf(ch.connect(carol).addMargin(id, 100n * WAD)));
  record(
    "removeMargin",
    "remove margin, margin test passes",
    await gasOf(ch.connect(carol).removeMargin(id, 50n * WAD)),
  );

  // Liquidations: carol long 3 at 2000 with 5x leverage (margin 1,200 + 50).
  await sys.setPrice("ETH-USD", 1640n * WAD);
  const max = await sys.lens.maxLiquidationSize(id, carol.address);
  record(
    "liquidate",
    "partial: the capped size restores health",
    await gasOf(ch.connect(keeper).liquidate(id, carol.address, max, 5n * WAD)),
  );
  // A small position whose capped remainder would fall below the minimum notional is taken whole.
  await sys.setPrice("ETH-USD", 2000n * WAD);
  await (await match(WAD / 100n, erin, frank)).valueOf();
  await sys.setPrice("ETH-USD", 1640n * WAD);
  const small = (await ch.getPosition(id, erin.address)).size;
  record(
    "liquidate",
    "full: a small position taken whole",
    await gasOf(ch.connect(keeper).liquidate(id, erin.address, small, 5n * WAD)),
  );

  // A bankrupt position covered by the fund: stake first, then gap the price.
  const fund = sys.insuranceFund;
  await (await sys.token.connect(staker).approve(await fund.getAddress(), ethers.MaxUint256)).wait();
  record(
    "fund.deposit",
    "stake into the insurance fund (ERC-4626)",
    await gasOf(fund.connect(staker).deposit(50_000n * USDC, staker.address)),
  );
  record("fund.donate", "donation", await gasOf(fund.connect(staker).donate(100n * USDC)));
  await sys.setPrice("ETH-USD", 2000n * WAD);
  await (await match(3n * WAD, alice, bob)).valueOf();
  await sys.setPrice("ETH-USD", 1500n * WAD);
  const bankrupt = (await ch.getPosition(id, alice.address)).size;
  record(
    "liquidate",
    "full, bankrupt, deficit covered by the fund",
    await gasOf(ch.connect(keeper).liquidate(id, alice.address, bankrupt, 5n * WAD)),
  );

  const shares = await fund.balanceOf(staker.address);
  const requestId = await fund.connect(staker).requestUnstake.staticCall(shares / 2n);
  record(
    "fund.request",
    "request to unstake half the shares",
    await gasOf(fund.connect(staker).requestUnstake(shares / 2n)),
  );
  await network.provider.send("evm_increaseTime", [7 * 24 * 3600 + 1]);
  record(
    "fund.complete",
    "complete the unstake after the cooldown",
    await gasOf(fund.connect(staker).completeUnstake(requestId, staker.address)),
  );

  const json = rows.map((r) => ({ ...r, gas: Number(r.gas) }));
  writeFileSync("bench/clearinghouse-gas.json", JSON.stringify(json, null, 2) + "\n");
  const table = [
    "| operation | scenario | gas |",
    "| --- | --- | ---: |",
    ...rows.map((r) => `| \`${r.operation}\` | ${r.scenario} | ${r.gas.toLocaleString("en-US")} |`),
  ].join("\n");
  const doc = readFileSync("docs/gas.md", "utf8");
  const begin = "<!-- clearinghouse-gas:begin -->";
  const end = "<!-- clearinghouse-gas:end -->";
  const updated = doc.slice(0, doc.indexOf(begin) + begin.length) + "\n" + table + "\n" + doc.slice(doc.indexOf(end));
  writeFileSync("docs/gas.md", updated);
  console.log("\nwrote bench/clearinghouse-gas.json and docs/gas.md");
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
