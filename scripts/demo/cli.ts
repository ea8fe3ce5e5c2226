/** The task's body: validate the flags once, run, print the step log and the report, write JSON. */
import { HardhatPluginError } from "hardhat/plugins";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { writeJson } from "./json";
import { formatReport } from "./report";
import { runDemo } from "./run";
import { parseOptions } from "./scenario";

export async function runDemoTask(hre: HardhatRuntimeEnvironment, args: Record<string, unknown>): Promise<void> {
  let options;
  try {
    options = parseOptions({
      seed: args.seed,
      traders: args.traders,
      crashDepth: args.crashDepth,
      fundStake: args.fundStake,
      rounds: args.rounds,
      driver: args.driver,
    });
  } catch (e) {
    // A bad flag is the user's mistake: a one-line message, no stack trace.
    throw new HardhatPluginError("demo", (e as Error).message);
  }
  const { report, timing } = await runDemo(hre, options, (line) => console.log(line));
  console.log("");
  console.log(formatReport(report));
  if (typeof args.json === "string") {
    await writeJson(args.json, report);
    console.log(`JSON report written to ${args.json}`);
  }
  // Wall-clock time is the one thing that differs between runs: it stays out of the report.
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  console.log(`timing: ${s(timing.totalMs)} (setup ${s(timing.setupMs)}, crash and checks ${s(timing.crashMs)})`);
  if (!report.pass) process.exitCode = 1;
}
