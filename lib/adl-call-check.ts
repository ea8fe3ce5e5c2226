/**
 * The checks of docs/mechanism.md section 5 that follow each ADL call ("After a successful ADL call"), read
 * from the chain after the fact: the state at the block before the call and at the call's block
 * (one transaction per block, as on an automining node). Part of lib/invariants.ts, which
 * re-exports it.
 */
import { getAddress, type Log, type TransactionReceipt } from "ethers";
import { OracleAdapter__factory } from "../typechain-types";
import {
  at,
  readFree,
  readPositions,
  type InvariantResult,
  type InvariantSystem,
  type LedgerPosition,
} from "./invariants";
import {
  compareWithHead,
  equityAt,
  fundingOf,
  headOfQueue,
  rankOpposite,
  referenceDelta,
  sideFundings,
  type HeadEntry,
  type RankedPosition,
} from "./reference-ranking";

const W = 10n ** 18n;

/** One counterparty leg of an executed call, from its CounterpartyDeleveraged event. */
export interface AdlLeg {
  account: string;
  take: bigint;
  price: bigint;
  score: bigint;
  queuePosition: bigint;
  charged: bigint;
}

/** An opposite-side position just before a call, as the reference ranked it. */
export interface OppositePosition {
  account: string;
  size: bigint;
  entry: bigint;
  margin: bigint;
  leverage: bigint;
  leaf: number;
  /** Profit per unit at the call's (P, F of the counterparties' side). */
  x: bigint;
  minusInfinity: boolean;
  score: bigint;
  eligible: boolean;
  /** 0-based position in the reference queue, or null when ineligible or minus infinity. */
  queuePosition: number | null;
}

/** An executed ADL call, what it was checked against, and the verdicts. */
export interface AdlCallCheck {
  txHash: string;
  block: number;
  gasUsed: bigint;
  marketId: string;
  bankrupt: string;
  keeper: string;
  price: bigint;
  /**
   * F of the counterparties' side (the side opposite B's) at the call: cumulative funding with that
   * side's socialized-loss index folded in, the F the list, scores and eligibility use.
   */
  funding: bigint;
  /** F of B's own side at the call (B's deficit and delta use it). */
  bankruptFunding: bigint;
  /** What the fund could pay just before the call (18 decimals). */
  fundAvailable: bigint;
  /** B just before the call. */
  bankruptBefore: LedgerPosition;
  deficit: bigint;
  sigma: bigint;
  /** delta as the call emitted it (the reference recomputes it and compares). */
  delta: bigint;
  closedSize: bigint;
  remainingSize: bigint;
  fundContribution: bigint;
  deficitAbsorbed: bigint;
  keeperReward: bigint;
  legs: AdlLeg[];
  referenceHead: HeadEntry[];
  /** Whole opposite side just before the call, ascending by address. */
  opposite: OppositePosition[];
  /** Adjacent queue pairs exact real scores order the other way / tie only in integers. */
  roundingSwaps: number;
  roundingTies: number;
  results: InvariantResult[];
  pass: boolean;
}

/** Decodes the deleverager's and clearinghouse's events of one ADL receipt. */
function adlEvents(sys: InvariantSystem, logs: readonly Log[]) {
  const del = sys.deleverager.interface;
  const ch = sys.clearinghouse.interface;
  const legs: AdlLeg[] = [];
  let executed: ReturnType<typeof del.parseLog> = null;
  let reward = 0n;
  for (const log of logs) {
    const ev = del.parseLog(log) ?? ch.parseLog(log);
    if (!ev) continue;
    if (ev.name === "CounterpartyDeleveraged") {
      legs.push({
        account: getAddress(ev.args.counterparty),
        take: ev.args.size,
        price: ev.args.price,
        score: ev.args.score,
        queuePosition: ev.args.queuePosition,
        charged: ev.args.charged,
      });
    } else if (ev.name === "DeleverageExecuted") executed = ev;
    else if (ev.name === "KeeperRewardPaid") reward += ev.args.amount as bigint;
  }
  return { legs, executed, reward };
}

/**
 * Checks one mined deleverage call against the state of the block before it (docs/mechanism.md section 5,
 * "After a successful ADL call"): the list is exactly the head of the eligible queue as
 * lib/reference-ranking.ts computes it from positions read from the chain at the call's
 * (P, F, delta), with delta recomputed from B and the fund; B's closed part ends at exactly zero
 * (the fund's payment plus what the counterparties absorbed equals minus its booked equity, B's
 * free collateral does not move, its remainder keeps K and a); no counterparty ends below zero
 * or loses free collateral; the charges add up to the absorbed deficit within one wei per entry.
 * `accounts` must include every account with a position in the market.
 */
export async function checkAdlCall(
  sys: InvariantSystem,
  receipt: TransactionReceipt,
  accounts: readonly string[],
): Promise<AdlCallCheck> {
  const block = receipt.blockNumber;
  const { legs, executed, reward } = adlEvents(sys, receipt.logs);
  if (!executed) throw new Error(`${receipt.hash} has no DeleverageExecuted event`);
  const marketId: string = executed.args.marketId;
  const bankrupt = getAddress(executed.args.bankrupt);
  const ch = sys.clearinghouse;
  // The whole market just before the call; after it, only the accounts the call touched.
  const touched = [bankrupt, ...legs.map((l) => l.account)];
  const pre = await readPositions(sys, marketId, accounts, block - 1);
  const post = await readPositions(sys, marketId, touched, block);
  const freeBefore = await readFree(sys, touched, block - 1);
  const freeAfter = await readFree(sys, touched, block);
  const oracle = OracleAdapter__factory.connect(await ch.oracle(), ch.runner);
  // The call reads the oracle strictly at its own block and accrues F first: read both there. Each
  // side is valued at its own F (loss index folded in; ADL does not move the indices).
  const [price] = await oracle.getPrice(marketId, true, at(block));
  const state = await ch.marketState(marketId, at(block));
  const sides = sideFundings(state.cumulativeFunding, state.lossIndexLong, state.lossIndexShort);
  const available =
    (await sys.insuranceFund.available(at(block - 1))) * (await ch.collateralScale()) +
    (await ch.pendingFundFees(at(block - 1)));
  const results: InvariantResult[] = [];
  const check = (name: string, pass: boolean, detail: string) => results.push({ name, pass, detail });

  const b = pre.get(bankrupt);
  if (!b) throw new Error(`${bankrupt} had no position before ${receipt.hash}`);
  const funding = fundingOf(sides, !b.isLong);
  const bankruptFunding = fundingOf(sides, b.isLong);
  const ref = referenceDelta(b, price, bankruptFunding, available);
  const eventDelta: bigint = executed.args.delta;
  check(
    "delta recomputed",
    ref !== null && ref.delta === eventDelta && legs.every((l) => l.price === price),
    ref
      ? `D ${ref.deficit}, min(A, D) ${ref.covered}, sigma ${ref.sigma}, delta ${ref.delta} (event ${eventDelta})`
      : "B was not bankrupt before the call",
  );

  // The list is the head of the reference queue at (P, F, delta).
  const delta = ref?.delta ?? eventDelta;
  const ranking = rankOpposite([...pre.values()], b, price, funding, delta);
  const head = headOfQueue(ranking.queue, b.size, legs.length);
  const diffs = compareWithHead(legs, head);
  const fullHead = headOfQueue(ranking.queue, b.size, Number.MAX_SAFE_INTEGER);
  check(
    "list == independent re-ranking",
    legs.length > 0 && diffs.length === 0,
    diffs.length
      ? diffs.join("; ")
      : `${legs.length} entries equal the reference head` +
          (fullHead.length > legs.length ? ` (the call stopped before the ${fullHead.length} needed)` : "") +
          `; ${ranking.queue.length} eligible, ${ranking.excluded.length} excluded`,
  );

  // B's closed part ends at exactly zero: payments equal minus its booked equity; nothing else moves.
  const d: bigint = executed.args.closedSize;
  const fundPays: bigint = executed.args.fundContribution;
  const absorbed: bigint = executed.args.deficitAbsorbed;
  const xB = b.isLong ? price - bankruptFunding - b.entry : b.entry - (price - bankruptFunding);
  const released = (b.margin * d) / b.size;
  const pnl = d * xB;
  const closedEquity = released + (pnl >= 0n || pnl % W === 0n ? pnl / W : pnl / W - 1n);
  const bAfter = post.get(bankrupt);
  const remainderOk =
    d === b.size
      ? bAfter === undefined
      : bAfter !== undefined &&
        bAfter.size === b.size - d &&
        bAfter.margin === b.margin - released &&
        bAfter.entry === b.entry &&
        bAfter.leverage === b.leverage;
  const bFreeOk = freeAfter.get(bankrupt) === freeBefore.get(bankrupt);
  const sumTakes = legs.reduce((s, l) => s + l.take, 0n);
  check(
    "bankrupt closed part at zero",
    closedEquity <= 0n && fundPays + absorbed === -closedEquity && remainderOk && bFreeOk && sumTakes === d,
    `closed ${d} of ${b.size}: booked equity ${closedEquity}, fund ${fundPays} + counterparties ${absorbed}` +
      `${remainderOk ? "" : "; remainder changed K, a or margin"}${bFreeOk ? "" : "; B's free collateral moved"}`,
  );

  // No counterparty below zero: remaining equity >= 0 at (P, F), free collateral never debited.
  const below: string[] = [];
  for (const l of legs) {
    const p = post.get(l.account);
    if (p && equityAt(p, price, funding) < 0n) below.push(`${l.account} equity ${equityAt(p, price, funding)}`);
    const f0 = freeBefore.get(l.account) ?? 0n;
    const f1 = freeAfter.get(l.account) ?? 0n;
    if (f1 < f0) below.push(`${l.account} free ${f0} -> ${f1}`);
  }
  const charged = legs.reduce((s, l) => s + l.charged, 0n);
  const chargeOk = charged >= absorbed && charged - absorbed <= BigInt(legs.length);
  check(
    "no counterparty below zero",
    below.length === 0 && chargeOk,
    below.length
      ? below.join("; ")
      : `${legs.length} counterparties >= 0; charged ${charged} for ${absorbed} absorbed (ceil rounding ${charged - absorbed} wei)`,
  );

  const rankOf = new Map<string, number>();
  ranking.queue.forEach((r, i) => rankOf.set(r.account, i));
  const describe = (r: RankedPosition): OppositePosition => {
    const p = pre.get(getAddress(r.account))!;
    return {
      account: p.account,
      size: p.size,
      entry: p.entry,
      margin: p.margin,
      leverage: p.leverage,
      leaf: p.leaf,
      x: r.x,
      minusInfinity: r.score.minusInfinity,
      score: r.score.value,
      eligible: r.eligible,
      queuePosition: rankOf.get(r.account) ?? null,
    };
  };
  const opposite = [...ranking.queue, ...ranking.excluded]
    .map(describe)
    .sort((u, v) => (BigInt(u.account) < BigInt(v.account) ? -1 : 1));

  return {
    txHash: receipt.hash,
    block,
    gasUsed: receipt.gasUsed,
    marketId,
    bankrupt,
    keeper: getAddress(receipt.from),
    price,
    funding,
    bankruptFunding,
    fundAvailable: available,
    bankruptBefore: b,
    deficit: ref?.deficit ?? 0n,
    sigma: ref?.sigma ?? 0n,
    delta: eventDelta,
    closedSize: d,
    remainingSize: executed.args.remainingSize,
    fundContribution: fundPays,
    deficitAbsorbed: absorbed,
    keeperReward: reward,
    legs,
    referenceHead: head,
    opposite,
    roundingSwaps: ranking.roundingSwaps,
    roundingTies: ranking.roundingTies,
    results,
    pass: results.every((r) => r.pass),
  };
}
