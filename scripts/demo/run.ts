/**
 * The main job end to end: deploy the whole system, put the scenario's traders on both sides of
 * ETH-USD, BTC-USD and the thin SOL-USD, stake the insurance fund, fund the keeper, then crash the
 * index step by step with the keeper acting after each step, and build the report. Used by the
 * `demo` task and by test/demo.
 */
import type { Signer } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { discoverParticipants, readLedger } from "../../lib/invariants";
import { deployLocalSystem, type LocalSystem } from "../../lib/local";
import { runCrash, fundValue } from "./crash";
import { DirectDriver, type CrashDriver } from "./driver";
import { KeeperDriver } from "./keeper-driver";
import { buildReport, type DemoReport } from "./report";
import { buildScenario, USDC, W, type DemoOptions, type Scenario } from "./scenario";
import { FillDesk, depositForTraders, openPositions, traderWallets } from "./traders";

/** Wall-clock phases, kept out of the report so that the report is deterministic. */
export interface DemoTiming {
  setupMs: number;
  crashMs: number;
  totalMs: number;
}

/** The keeper takes over liquidated positions with 1x margin: it can never be liquidated itself. */
const TAKEOVER_LEVERAGE = W;

/**
 * The driver the crash uses: the project's keeper by default, or the direct lib/adl.ts steps.
 * Anything with `tick()` that liquidates and deleverages works, since the demo reads the outcome
 * from the chain.
 */
async function createDriver(
  kind: DemoOptions["driver"],
  sys: LocalSystem,
  keeper: Signer,
  ids: string[],
  fromBlock: number,
): Promise<CrashDriver> {
  if (kind === "direct") return new DirectDriver(sys, keeper, ids, TAKEOVER_LEVERAGE, fromBlock);
  return KeeperDriver.create(sys, keeper, ids, TAKEOVER_LEVERAGE, fromBlock);
}

/** Collateral the keeper needs to take over every long at 1x after the crash's first step, plus room. */
function keeperDeposit(scenario: Scenario): bigint {
  let notional = 0n;
  for (const round of scenario.rounds) {
    for (const f of round.fills) notional += (f.size * round.prices[f.market]) / W;
  }
  return (notional * 2n) / 10n ** 12n + 1_000_000n * USDC;
}

export async function runDemo(
  hre: HardhatRuntimeEnvironment,
  options: DemoOptions,
  log: (line: string) => void = () => {},
): Promise<{ report: DemoReport; timing: DemoTiming }> {
  const t0 = performance.now();
  const { ethers } = hre;
  const scenario = buildScenario(options);
  const signers = await ethers.getSigners();
  if (signers.length < 4)
    throw new Error(`the demo needs 4 funded accounts on ${hre.network.name}, found ${signers.length}`);
  const [admin, keeper, staker, matcher] = signers;
  const provider = ethers.provider;

  const deployBlock = (await provider.getBlockNumber()) + 1;
  const sys = await deployLocalSystem(
    admin,
    scenario.markets.map((m) => ({ symbol: m.symbol, price: m.listingPrice })),
  );
  const ids = scenario.markets.map((m) => sys.markets.get(m.symbol)!.id);
  log(
    `deployed on ${hre.network.name}: clearinghouse ${await sys.clearinghouse.getAddress()}, deleverager ${await sys.deleverager.getAddress()}`,
  );

  const wallets = traderWallets(scenario, provider);
  const depositedTokens = await depositForTraders(sys, admin, scenario, wallets);
  log(`${wallets.length} traders deposited ${depositedTokens / USDC} USD in total`);
  const desk = await FillDesk.create(sys, matcher, scenario, wallets);
  const opened = await openPositions(sys, desk, scenario, log);

  // Stake the fund (the stake also sweeps the trading fees collected so far into it).
  const fundAddress = await sys.insuranceFund.getAddress();
  if (scenario.fundStakeTokens > 0n) {
    await (await sys.token.connect(staker).mint(staker.address, scenario.fundStakeTokens)).wait();
    await (await sys.token.connect(staker).approve(fundAddress, scenario.fundStakeTokens)).wait();
    await (await sys.insuranceFund.connect(staker).deposit(scenario.fundStakeTokens, staker.address)).wait();
  }
  const keeperTokens = keeperDeposit(scenario);
  await (await sys.token.connect(keeper).mint(keeper.address, keeperTokens)).wait();
  await (await sys.token.connect(keeper).approve(await sys.clearinghouse.getAddress(), keeperTokens)).wait();
  await (await sys.clearinghouse.connect(keeper).deposit(keeper.address, keeperTokens)).wait();

  const block = await provider.getBlockNumber();
  const participants = await discoverParticipants(sys, block);
  const before = await readLedger(sys, ids, participants.accounts, block, participants.holders);
  const fundBeforeCrash = fundValue(before);
  log(`insurance fund ${fundBeforeCrash / W} USD before the crash; keeper deposited ${keeperTokens / USDC} USD`);
  const t1 = performance.now();

  const driver = await createDriver(options.driver, sys, keeper, ids, deployBlock);
  let crash;
  try {
    crash = await runCrash(sys, provider, scenario, driver, desk, log);
  } finally {
    await driver.stop();
  }

  const unsettledAtEnd: DemoReport["unsettledAtEnd"] = [];
  for (const [i, id] of ids.entries()) {
    const [accounts, deficits] = await sys.deleverager.unsettled(id);
    accounts.forEach((a, j) =>
      unsettledAtEnd.push({ market: scenario.markets[i].symbol, account: a, deficit: deficits[j] }),
    );
  }
  const keeperPositions: DemoReport["keeperPositions"] = [];
  for (const [i, id] of ids.entries()) {
    const p = await sys.clearinghouse.getPosition(id, keeper.address);
    if (p.size === 0n) continue;
    keeperPositions.push({
      market: scenario.markets[i].symbol,
      isLong: p.isLong,
      size: p.size,
      entry: p.entry,
      margin: p.margin,
      equity: await sys.lens.equity(id, keeper.address),
    });
  }
  const roles: Record<string, string> = {
    [admin.address]: "admin",
    [keeper.address]: "keeper",
    [staker.address]: "staker",
    [matcher.address]: "matcher",
  };
  scenario.traders.forEach((t, i) => (roles[wallets[i].address] = t.label));
  const report = buildReport(
    {
      network: hre.network.name,
      chainId: (await provider.getNetwork()).chainId,
      scenario,
      driver: driver.name,
      contracts: {
        clearinghouse: await sys.clearinghouse.getAddress(),
        deleverager: await sys.deleverager.getAddress(),
        insuranceFund: fundAddress,
        lens: await sys.lens.getAddress(),
        oracle: await sys.oracle.getAddress(),
        collateral: await sys.token.getAddress(),
      },
      roles,
      traders: scenario.traders.map((t, i) => ({
        label: t.label,
        address: wallets[i].address,
        depositTokens: t.depositTokens,
      })),
      setup: {
        ...opened,
        depositedTokens,
        fundStakeTokens: scenario.fundStakeTokens,
        keeperDepositTokens: keeperTokens,
      },
      marketIds: ids,
      openInterestBefore: ids.map((id) => before.markets.get(id)!.longOpenInterest),
      fundBeforeCrash,
      unsettledAtEnd,
      keeperPositions,
    },
    crash,
  );
  const t2 = performance.now();
  return { report, timing: { setupMs: t1 - t0, crashMs: t2 - t1, totalMs: t2 - t0 } };
}
