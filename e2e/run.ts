/**
 * End-to-end test (npm run test:e2e): a real `hardhat node` on a free loopback port, the system
 * deployed to it with the same task and Ignition modules as a testnet, the keeper as a separate
 * process (`hardhat keeper --network localhost`), and a market crash driven from this process.
 * The keeper is killed (SIGKILL) right after its first action of the bankruptcy step and started
 * again on the same checkpoint. Asserts: every bad debt settled (the BTC-USD long no eligible
 * counterparty can absorb through the final layer, socialized), every ADL call equal to an
 * independent re-ranking, every socialized loss exact, the docs/mechanism.md section 5 invariants
 * after each step, and no keeper transaction reverted or sent twice. Every process started is stopped, also on
 * failure. Exit code 0 on success, 1 on any failed check.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { JsonRpcProvider, getAddress, type TransactionReceipt } from "ethers";
import { AutoDeleverager__factory, Clearinghouse__factory } from "../typechain-types";
import { MARKETS } from "../deploy/markets";
import { marketId } from "../lib/local";
import { loadDeployment, type Deployment } from "../lib/deployment";
import type { Ledger } from "../lib/invariants";
import {
  adlCalls,
  ledgerInvariants,
  liquidationStats,
  settlementStatus,
  socializedLosses,
  transactionsFrom,
  type SettlementStatus,
} from "./checks";
import {
  BTC_GAP_USD,
  BTC_LONG,
  BTC_SYMBOL,
  CRASH_STEPS_USD,
  btcGapWithLateEntrant,
  connect,
  openBook,
  setEthPrice,
  type CrashContext,
} from "./crash";
import {
  REPO_ROOT,
  freePort,
  runHardhat,
  sleep,
  startHardhat,
  stopAll,
  stopAllOnSignals,
  waitForRpc,
  type Managed,
} from "./processes";

const STEP_TIMEOUT_MS = 90_000;
/** The step whose first keeper action is followed by a SIGKILL and a restart: the bankruptcies. */
const KILL_AT_STEP = 0;
/** The keeper's journal events that carry a transaction it sent. */
const SENT_EVENTS = new Set([
  "liquidation.sent",
  "adl.sent",
  "socialize.sent",
  "keeper.margin_added",
  "unsettled.sent",
  "maintenance.sent",
  "tx.sent",
]);

interface Failure {
  what: string;
  detail: string;
}

const failures: Failure[] = [];
const fail = (what: string, detail: string) => {
  failures.push({ what, detail });
  console.log(`  FAIL ${what}: ${detail}`);
};
const pass = (what: string) => console.log(`  ok   ${what}`);
const expectThat = (ok: boolean, what: string, detail = "") => (ok ? pass(what) : fail(what, detail));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const started = Date.now();
  const work = mkdtempSync(path.join(os.tmpdir(), "adl-e2e-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const deploymentId = `e2e-${port}`;
  const env = { LOCALHOST_RPC_URL: url };
  console.log(`e2e: node at ${url}, logs in ${work}`);
  stopAllOnSignals();
  try {
    const node = startHardhat(
      "node",
      ["node", "--hostname", "127.0.0.1", "--port", String(port)],
      env,
      log(work, "node"),
    );
    await waitForRpc(url, 120_000, node);
    const tNode = Date.now();
    console.log(`e2e: node up in ${seconds(tNode - started)}`);

    await runHardhat(
      "deploy",
      ["deploy-system", "--network", "localhost", "--deployment-id", deploymentId, "--reset"],
      env,
      log(work, "deploy"),
      240_000,
    );
    const deployment = loadDeployment(31337, { deploymentId });
    const tDeploy = Date.now();
    console.log(
      `e2e: deployed and checked in ${seconds(tDeploy - tNode)} (clearinghouse ${deployment.clearinghouse}, from block ${deployment.startBlock})`,
    );

    const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 100, cacheTimeout: -1 });
    const ctx = await connect(provider, deployment);
    await openBook(ctx);
    const booked = await provider.getBlockNumber();
    console.log(`e2e: book opened at block ${booked}`);

    const keeperArgs = [
      "keeper",
      "--network",
      "localhost",
      "--signer-index",
      "1",
      "--checkpoint-path",
      path.join(work, "keeper-checkpoint.json"),
      "--poll-interval-ms",
      "200",
      "--start-block",
      String(deployment.startBlock),
      "--clearinghouse",
      deployment.clearinghouse,
      "--deleverager",
      deployment.deleverager,
      "--insurance-fund",
      deployment.insuranceFund,
      "--lens",
      deployment.lens,
      "--log-level",
      "info",
    ];
    const keepers: Managed[] = [startHardhat("keeper#1", keeperArgs, env, log(work, "keeper-1"))];
    await waitForLine(keepers[0], "keeper.started", 120_000);
    const tKeeper = Date.now();
    console.log(`e2e: keeper up in ${seconds(tKeeper - tDeploy)}`);

    let previous: Ledger | undefined;
    let killedAtBlock = 0;
    const steps = [
      ...CRASH_STEPS_USD.map((usd) => ({ market: "ETH-USD", usd })),
      { market: BTC_SYMBOL, usd: BTC_GAP_USD },
    ];
    for (const [i, step] of steps.entries()) {
      const stepStart = Date.now();
      const before = await provider.getBlockNumber();
      if (step.market === BTC_SYMBOL) {
        await btcGapWithLateEntrant(ctx);
        console.log(`e2e: step ${i + 1}: BTC-USD index ${step.usd}, the old short closed against a late 10x short`);
      } else {
        await setEthPrice(ctx, step.usd);
        console.log(`e2e: step ${i + 1}: ETH-USD index ${step.usd}`);
      }
      // Kill the keeper mid-run once: right after its first action of the step that creates bad debt.
      if (i === KILL_AT_STEP) {
        await waitForKeeperTx(provider, ctx, before + 1, STEP_TIMEOUT_MS);
        await keepers[0].stop("SIGKILL");
        killedAtBlock = await provider.getBlockNumber();
        console.log(`e2e: keeper killed (SIGKILL) at block ${killedAtBlock}; starting it again on its checkpoint`);
        keepers.push(startHardhat("keeper#2", keeperArgs, env, log(work, "keeper-2")));
      }
      const status = await waitSettled(provider, deployment, ctx, STEP_TIMEOUT_MS);
      console.log(
        `e2e: step ${i + 1} settled at block ${status.block} in ${seconds(Date.now() - stepStart)}` +
          ` (${status.unsettled.length} reported unsettled)`,
      );
      for (const r of await ledgerInvariants(provider, deployment, status.ledger, previous)) {
        expectThat(r.pass, `step ${i + 1}: ${r.name}`, r.detail);
      }
      previous = status.ledger;
    }
    const end = await provider.getBlockNumber();

    // ---------------------------------------------------------------- bad debt and ADL
    const final = await settlementStatus(provider, deployment, deployment.startBlock, ctx.keeper);
    expectThat(final.outstanding.length === 0, "every bad debt settled", json(final.outstanding));
    for (const u of final.unsettled) {
      pass(`unsettled ${u.market} ${u.account}: deficit ${u.deficit}, the keeper's own, listed`);
    }
    const social = await socializedLosses(provider, deployment, booked, end);
    const btcLong = getAddress(ctx.traders[BTC_LONG]);
    const btcSocial = social.filter((x) => x.bankrupt === btcLong);
    expectThat(
      btcSocial.length === 1 && !btcSocial[0].byDeadline && btcSocial[0].oppositeEligible === 0,
      "the BTC-USD long without an eligible counterparty is socialized with the empty-list proof",
      json(social.map((x) => [x.marketId, x.bankrupt, x.byDeadline, x.oppositeEligible])),
    );
    for (const x of social) {
      const bad = x.results.filter((r) => !r.pass);
      expectThat(
        x.pass && getAddress(x.taker) === getAddress(ctx.keeper),
        `socialized ${x.txHash.slice(0, 10)} on ${x.bankrupt}: fund ${x.fundPaid} + D_rem ${x.lossSocialized} over Q ${x.openInterest}, taken over by the keeper`,
        bad.map((r) => `${r.name}: ${r.detail}`).join("; "),
      );
    }
    const listed = await listedUnsettled(provider, deployment);
    const truly = new Set(final.unsettled.map((u) => `${u.market}:${u.account}`));
    const stale = listed.filter((l) => !truly.has(l));
    expectThat(
      stale.length === 0,
      "the on-chain unsettled list holds only unsettleable bankrupt positions",
      json(stale),
    );
    const adl = await adlCalls(provider, deployment, booked, end);
    expectThat(adl.length > 0, "the crash needed ADL", `${adl.length} deleverage calls`);
    for (const call of adl) {
      const bad = call.results.filter((r) => !r.pass);
      expectThat(
        call.pass,
        `ADL ${call.txHash.slice(0, 10)} on ${call.bankrupt}: ${call.legs.length} counterparties equal the re-ranked head`,
        bad.map((r) => `${r.name}: ${r.detail}`).join("; "),
      );
    }
    const liq = await liquidationStats(provider, deployment, booked, end);
    expectThat(liq.coveredByFund > 0, "liquidations drew on the fund", json(liq));
    console.log(
      `e2e: ${liq.liquidations} liquidations (${liq.coveredByFund} covered by the fund, ${liq.fundPaid} paid)`,
    );

    // ---------------------------------------------------------------- the keeper across its restart
    const receipts = await transactionsFrom(provider, ctx.keeper, booked, end);
    const reverted = receipts.filter((r) => r.status !== 1);
    expectThat(reverted.length === 0, "no keeper transaction reverted", reverted.map((r) => r.hash).join(", "));
    // A repeated action that does not revert (a second reportUnsettled is a no-op) emits nothing.
    const idle = receipts.filter((r) => actionEvents(deployment, r).length === 0);
    expectThat(idle.length === 0, "every keeper transaction had an effect", idle.map((r) => r.hash).join(", "));
    const afterRestart = receipts.filter((r) => r.blockNumber > killedAtBlock);
    expectThat(afterRestart.length > 0, "the restarted keeper acted", `${afterRestart.length} transactions`);
    const sent = keepers.flatMap((k) => sentHashes(k.lines));
    const unique = new Set(sent);
    expectThat(unique.size === sent.length, "no transaction logged as sent twice", `${sent.length} sent`);
    const mined = new Set(receipts.map((r) => r.hash.toLowerCase()));
    const unmined = [...unique].filter((h) => !mined.has(h));
    expectThat(unmined.length === 0, "every transaction the keeper logged as sent was mined", unmined.join(", "));
    console.log(`e2e: keeper sent ${receipts.length} transactions (${afterRestart.length} after the restart)`);
    await Promise.all(keepers.map((k) => k.stop()));
    console.log(`e2e: total ${seconds(Date.now() - started)}`);
    if (failures.length === 0) rmSync(work, { recursive: true, force: true });
  } finally {
    await stopAll();
    rmSync(path.join(REPO_ROOT, "deploy", "deployments", deploymentId), { recursive: true, force: true });
  }
}

const log = (dir: string, name: string) => path.join(dir, `${name}.log`);

const ACTION_EVENTS = new Set([
  "PositionLiquidated",
  "DeleverageExecuted",
  "LossSocialized",
  "MarginMoved",
  "UnsettledAdded",
  "UnsettledRemoved",
  "NodeRefreshed",
]);

/** The names of the action events (liquidation, ADL, socialized loss, margin, unsettled list, refresh) a receipt emitted. */
function actionEvents(d: Deployment, receipt: TransactionReceipt): string[] {
  const ch = Clearinghouse__factory.createInterface();
  const adl = AutoDeleverager__factory.createInterface();
  const names: string[] = [];
  for (const entry of receipt.logs) {
    const own = [getAddress(d.clearinghouse), getAddress(d.deleverager)].includes(getAddress(entry.address));
    const parsed = own ? (ch.parseLog(entry) ?? adl.parseLog(entry)) : null;
    if (parsed && ACTION_EVENTS.has(parsed.name)) names.push(parsed.name);
  }
  return names;
}

/** `market:account` of every position the deleverager lists as unsettled. */
async function listedUnsettled(provider: JsonRpcProvider, d: Deployment): Promise<string[]> {
  const adl = AutoDeleverager__factory.connect(d.deleverager, provider);
  const out: string[] = [];
  for (const m of MARKETS) {
    const [accounts] = await adl.unsettled(marketId(m.symbol));
    out.push(...accounts.map((a) => `${m.symbol}:${getAddress(a)}`));
  }
  return out;
}
const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));

/** Waits until a JSON log line of `p` has `event` (its `msg` equals the event name). */
async function waitForLine(p: Managed, event: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!p.lines.some((l) => l.includes(`"event":"${event}"`))) {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited: ${p.lines.slice(-20).join("\n")}`);
    if (Date.now() > deadline) throw new Error(`${p.name} did not log ${event} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Waits for the first transaction of the keeper's account mined at or after `fromBlock`. */
async function waitForKeeperTx(
  provider: JsonRpcProvider,
  ctx: CrashContext,
  fromBlock: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const latest = await provider.getBlockNumber();
    if ((await transactionsFrom(provider, ctx.keeper, fromBlock, latest)).length > 0) return;
    if (Date.now() > deadline) throw new Error("the keeper sent nothing after the price step");
    await sleep(50);
  }
}

/** Waits until nothing is outstanding and the chain has been quiet for a moment. */
async function waitSettled(
  provider: JsonRpcProvider,
  d: Deployment,
  ctx: CrashContext,
  timeoutMs: number,
): Promise<SettlementStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: SettlementStatus | undefined;
  for (;;) {
    const status = await settlementStatus(provider, d, d.startBlock, ctx.keeper);
    // Settled twice in a row with no block in between: the keeper has nothing more to do.
    if (status.outstanding.length === 0 && last?.outstanding.length === 0 && last.block === status.block) {
      return status;
    }
    if (Date.now() > deadline) {
      throw new Error(`the keeper left work undone: ${json(status.outstanding)}`);
    }
    last = status;
    await sleep(1_000);
  }
}

/** Transaction hashes in the keeper's "sent" log lines. */
function sentHashes(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { event?: string; txHash?: string };
      if (entry.event && SENT_EVENTS.has(entry.event) && entry.txHash) out.push(entry.txHash.toLowerCase());
    } catch {
      // Not a JSON log line.
    }
  }
  return out;
}

main()
  .catch((err: unknown) => {
    fail("run", err instanceof Error ? (err.stack ?? err.message) : String(err));
  })
  .finally(() => {
    if (failures.length > 0) {
      console.log(`e2e: FAILED (${failures.length} check${failures.length === 1 ? "" : "s"})`);
      process.exitCode = 1;
    } else {
      console.log("e2e: passed");
    }
  });
