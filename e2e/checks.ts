/**
 * What the end-to-end run asserts, all read from the chain:
 * - settlement status: every open position is healthy, or the keeper's own (which only another
 *   account may liquidate or socialize) and listed as unsettled; anything else is work the keeper
 *   still owes: a liquidation, a fund-covered liquidation, an ADL call, or the final layer when the
 *   independent re-ranking (lib/reference-ranking.ts) finds no eligible counterparty;
 * - every ADL call checked by lib/invariants.ts checkAdlCall (exact head of the re-ranked queue,
 *   B's closed part at zero, nobody below zero, charges adding up), and every socialized loss by
 *   checkSocializedLoss (amounts, loss-index step, takeover, trigger);
 * - the docs/mechanism.md section 5 ledger invariants at the end of each step (checkLedger);
 * - the keeper's transactions: none reverted, none sent twice.
 */
import { getAddress, type JsonRpcProvider, type TransactionReceipt } from "ethers";
import {
  AutoDeleverager__factory,
  Clearinghouse__factory,
  ClearinghouseLens__factory,
  InsuranceFund__factory,
  OracleAdapter__factory,
} from "../typechain-types";
import type { Deployment } from "../lib/deployment";
import {
  checkAdlCall,
  checkLedger,
  checkSocializedLoss,
  discoverAccounts,
  fundAvailable,
  fundFlows,
  readLedger,
  type AdlCallCheck,
  type InvariantResult,
  type InvariantSystem,
  type Ledger,
  type SocializationCheck,
} from "../lib/invariants";
import { MARKETS } from "../deploy/markets";
import { marketId } from "../lib/local";
import { fundingOf, rankOpposite, referenceDelta, sideFundings, type RefPosition } from "../lib/reference-ranking";

export function invariantSystem(provider: JsonRpcProvider, d: Deployment): InvariantSystem {
  return {
    clearinghouse: Clearinghouse__factory.connect(d.clearinghouse, provider),
    insuranceFund: InsuranceFund__factory.connect(d.insuranceFund, provider),
    deleverager: AutoDeleverager__factory.connect(d.deleverager, provider),
  };
}

/** A position the keeper still has to act on, and why. */
export interface Outstanding {
  market: string;
  account: string;
  reason:
    | "liquidatable"
    | "bankrupt, fund covers"
    | "bankrupt, ADL possible"
    | "bankrupt, no eligible counterparty: final layer"
    | "bankrupt, not reported";
}

export interface SettlementStatus {
  block: number;
  outstanding: Outstanding[];
  /** The keeper's own bankrupt positions, listed and left to another account, with their deficits. */
  unsettled: { market: string; account: string; deficit: bigint }[];
  ledger: Ledger;
}

/** The ids of every market the deployment lists. */
export const MARKET_IDS: readonly string[] = MARKETS.map((m) => marketId(m.symbol));

/** Reads every market at the latest block and classifies every open position. */
export async function settlementStatus(
  provider: JsonRpcProvider,
  d: Deployment,
  fromBlock: number,
  keeper: string,
): Promise<SettlementStatus> {
  const sys = invariantSystem(provider, d);
  const block = await provider.getBlockNumber();
  const accounts = await discoverAccounts(sys, block, fromBlock);
  // Every market: the clearinghouse holds all their margins and rounding reserves.
  const ledger = await readLedger(sys, MARKET_IDS, accounts, block);
  const status: SettlementStatus = { block, outstanding: [], unsettled: [], ledger };
  for (const id of MARKET_IDS) await classify(provider, d, sys, ledger, id, getAddress(keeper), status);
  return status;
}

async function classify(
  provider: JsonRpcProvider,
  d: Deployment,
  sys: InvariantSystem,
  ledger: Ledger,
  id: string,
  keeper: string,
  status: SettlementStatus,
): Promise<void> {
  const at = { blockTag: ledger.block };
  const market = MARKETS.find((m) => marketId(m.symbol) === id)?.symbol ?? id;
  const positions = [...(ledger.positions.get(id) ?? new Map()).values()];
  const oracle = OracleAdapter__factory.connect(d.oracle, provider);
  const lens = ClearinghouseLens__factory.connect(d.lens, provider);
  const [price] = await oracle.getPrice(id, true, at);
  // Each side is valued at its own F (loss index folded in): B's deficit at B's, the queue at the other's.
  const m = ledger.markets.get(id)!;
  const sides = sideFundings(await lens.currentFunding(id, at), m.lossIndexLong, m.lossIndexShort);
  const [listed] = await sys.deleverager.unsettled(id, at);
  const listedSet = new Set(listed.map((a) => getAddress(a)));
  const available = fundAvailable(ledger);
  const { outstanding, unsettled } = status;
  for (const p of positions) {
    if (!(await lens.isLiquidatable(id, p.account, at))) continue;
    const ref: RefPosition = p;
    const own = p.account === keeper;
    const delta = referenceDelta(ref, price, fundingOf(sides, p.isLong), available);
    if (delta === null) {
      // Under maintenance but solvent: only another account may liquidate the keeper's own.
      if (!own) outstanding.push({ market, account: p.account, reason: "liquidatable" });
    } else if (available >= delta.deficit) {
      if (!own) outstanding.push({ market, account: p.account, reason: "bankrupt, fund covers" });
      else unsettled.push({ market, account: p.account, deficit: delta.deficit });
    } else if (rankOpposite(positions, ref, price, fundingOf(sides, !p.isLong), delta.delta).queue.length > 0) {
      outstanding.push({ market, account: p.account, reason: "bankrupt, ADL possible" });
    } else if (!own) {
      outstanding.push({ market, account: p.account, reason: "bankrupt, no eligible counterparty: final layer" });
    } else if (!listedSet.has(p.account)) {
      outstanding.push({ market, account: p.account, reason: "bankrupt, not reported" });
    } else {
      unsettled.push({ market, account: p.account, deficit: delta.deficit });
    }
  }
}

/** Checks the ledger invariants of `now` against `previous` (dust only grows, fund flows documented). */
export async function ledgerInvariants(
  provider: JsonRpcProvider,
  d: Deployment,
  now: Ledger,
  previous: Ledger | undefined,
): Promise<InvariantResult[]> {
  const sys = invariantSystem(provider, d);
  const fundFlow = previous ? await fundFlows(sys, previous.block + 1, now.block) : undefined;
  return checkLedger(now, { previous, fundFlow }).results;
}

/** Every ADL call mined in [fromBlock, toBlock], each checked against the re-ranking. */
export async function adlCalls(
  provider: JsonRpcProvider,
  d: Deployment,
  fromBlock: number,
  toBlock: number,
): Promise<AdlCallCheck[]> {
  const sys = invariantSystem(provider, d);
  const events = await sys.deleverager.queryFilter(sys.deleverager.filters.DeleverageExecuted(), fromBlock, toBlock);
  const accounts = await discoverAccounts(sys, toBlock, d.startBlock);
  const checks: AdlCallCheck[] = [];
  for (const e of events) {
    const receipt = await provider.getTransactionReceipt(e.transactionHash);
    if (receipt === null) throw new Error(`no receipt for ${e.transactionHash}`);
    checks.push(await checkAdlCall(sys, receipt, accounts));
  }
  return checks;
}

/** Every socialized loss mined in [fromBlock, toBlock], each checked against the chain. */
export async function socializedLosses(
  provider: JsonRpcProvider,
  d: Deployment,
  fromBlock: number,
  toBlock: number,
): Promise<SocializationCheck[]> {
  const sys = invariantSystem(provider, d);
  const ch = sys.clearinghouse;
  const events = await ch.queryFilter(ch.filters.LossSocialized(), fromBlock, toBlock);
  const accounts = await discoverAccounts(sys, toBlock, d.startBlock);
  const checks: SocializationCheck[] = [];
  for (const e of events) {
    const receipt = await provider.getTransactionReceipt(e.transactionHash);
    if (receipt === null) throw new Error(`no receipt for ${e.transactionHash}`);
    checks.push(await checkSocializedLoss(sys, receipt, accounts));
  }
  return checks;
}

/** Every transaction `from` sent in [fromBlock, toBlock], with its receipt. */
export async function transactionsFrom(
  provider: JsonRpcProvider,
  from: string,
  fromBlock: number,
  toBlock: number,
): Promise<TransactionReceipt[]> {
  const out: TransactionReceipt[] = [];
  for (let n = fromBlock; n <= toBlock; n++) {
    const block = await provider.getBlock(n, true);
    for (const tx of block?.prefetchedTransactions ?? []) {
      if (getAddress(tx.from) !== getAddress(from)) continue;
      const receipt = await provider.getTransactionReceipt(tx.hash);
      if (receipt !== null) out.push(receipt);
    }
  }
  return out;
}

/** Event counts of a block range: liquidations, those the fund covered, and what the fund paid. */
export async function liquidationStats(provider: JsonRpcProvider, d: Deployment, fromBlock: number, toBlock: number) {
  const ch = Clearinghouse__factory.connect(d.clearinghouse, provider);
  const liquidations = await ch.queryFilter(ch.filters.PositionLiquidated(), fromBlock, toBlock);
  const covered = await ch.queryFilter(ch.filters.BadDebtCovered(), fromBlock, toBlock);
  return {
    liquidations: liquidations.length,
    coveredByFund: covered.filter((e) => e.args.fundPaid > 0n).length,
    fundPaid: covered.reduce((s, e) => s + e.args.fundPaid, 0n),
  };
}
