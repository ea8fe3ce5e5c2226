/**
 * The `demo` Hardhat task (the project's main job): `npx hardhat demo [--seed N] [--traders N]
 * [--crash-depth PCT] [--fund-stake USD] [--rounds N] [--driver keeper|direct] [--json FILE]
 * [--network NAME]`.
 * Registered by hardhat.config.ts; everything that needs compiled artifacts is imported only when
 * the task runs, so loading the config never depends on typechain output.
 */
import { task, types } from "hardhat/config";
import { DEFAULT_OPTIONS } from "./scenario";

task(
  "demo",
  "Deploys the system, crashes three markets and settles the crash end to end (liquidations, fund, ADL, socialized loss)",
)
  .addOptionalParam("seed", "seed of the scenario (same seed, same report)", DEFAULT_OPTIONS.seed, types.int)
  .addOptionalParam("traders", "number of traders", DEFAULT_OPTIONS.traders, types.int)
  .addOptionalParam("crashDepth", "total price drop in percent", DEFAULT_OPTIONS.crashDepth, types.int)
  .addOptionalParam("fundStake", "insurance-fund stake in dollars", DEFAULT_OPTIONS.fundStake, types.int)
  .addOptionalParam("rounds", "opening rounds of trading before the crash", DEFAULT_OPTIONS.rounds, types.int)
  .addOptionalParam(
    "driver",
    "keeper (the project's keeper) or direct (lib/adl.ts steps)",
    DEFAULT_OPTIONS.driver,
    types.string,
  )
  .addOptionalParam("json", "also write the report as JSON to this file", undefined, types.string)
  .setAction(async (args: Record<string, unknown>, hre) => {
    await hre.run("compile", { quiet: true });
    const { runDemoTask } = await import("./cli");
    await runDemoTask(hre, args);
  });
