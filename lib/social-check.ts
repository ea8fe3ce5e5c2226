/**
 * The checks that follow each socialized loss (docs/mechanism.md section 7.6, the final layer), read
 * from the chain after the fact like lib/adl-call-check.ts: the state at the block before the call
 * and at the call's block (one transaction per block, as on an automining node). B's deficit, the
 * fund's part, the loss-index step and its rounding are recomputed independently of the contracts
 * (lib/reference-ranking.ts for equity and eligibility, plain integer arithmetic for the rest); the
 * trigger is checked too: for the proof trigger the independent re-ranking of the opposite side
 * must hold no eligible position, for the deadline trigger B must have been listed for at least
 * `socialDelay`. Part of lib/invariants.ts, which re-exports it.
 */
import { getAddress, type TransactionReceipt } from "ethers";
import { OracleAdapter__factory } from "../typechain-types";
import {
  at,
  readFree,
  readPositions,
  type InvariantResult,
  type InvariantSystem,
  type LedgerPosition,
} from "./invariants";
import { fundingOf, rankOpposite, referenceDelta, sideFundings } from "./reference-ranking";

const W = 10n ** 18n;

/** ceil(a / b) for a >= 0, b > 0. */
const ceilDiv = (a: bigint, b: bigint): bigint => (a === 0n ? 0n : (a - 1n) / b + 1n);

/** A mined socializeLoss, what it was checked against, and the verdicts. */
export interface SocializationCheck {
  txHash: string;
  block: number;
  gasUsed: bigint;
  marketId: string;
  bankrupt: string;
  /** Who sent the call (LossSocializationTriggered.caller); it took B's position over. */
  caller: string;
  taker: string;
  /** The trigger: true for the deadline (B listed for socialDelay), false for the empty-list proof. */
  byDeadline: boolean;
  /** The side charged (the side opposite B's): true = longs. */
  chargedLong: boolean;
  /** B just before the call. */
  bankruptBefore: LedgerPosition;
  price: bigint;
  /** F of B's side at the call (B's deficit uses it). */
  bankruptFunding: bigint;
  /** F of the charged side at the call, before its loss index rose (the trigger's proof uses it). */
  chargedFunding: bigint;
  /** What the fund could pay just before the call (18 decimals). */
  fundAvailable: bigint;
  /** D as the reference recomputes it. */
  deficit: bigint;
  /** delta at the call (the loss per unit an eligible counterparty would have had to absorb). */
  delta: bigint;
  /** From the LossSocialized event. */
  fundPaid: bigint;
  /** D_rem: the part charged to the opposite side. */
  lossSocialized: bigint;
  /** Q_side: the charged side's open interest. */
  openInterest: bigint;
  lossIndexBefore: bigint;
  /** The charged side's new loss index L. */
  lossIndex: bigint;
  /** The rounding of the charge, credited to the fund. */
  toFund: bigint;
  keeperReward: bigint;
  /** The taker's position in the market just after the call (undefined: it ended flat). */
  takerAfter: LedgerPosition | undefined;
  /** Positions on the charged side just before the call, and how many of them were eligible. */
  oppositePositions: number;
  oppositeEligible: number;
  results: InvariantResult[];
  pass: boolean;
}

/** Decodes the events of one socializeLoss receipt. */
function socialEvents(sys: InvariantSystem, receipt: TransactionReceipt) {
  const del = sys.deleverager.interface;
  const ch = sys.clearinghouse.interface;
  let social: ReturnType<typeof ch.parseLog> = null;
  let trigger: ReturnType<typeof del.parseLog> = null;
  let reward = 0n;
  for (const log of receipt.logs) {
    const ev = del.parseLog(log) ?? ch.parseLog(log);
    if (!ev) continue;
    if (ev.name === "LossSocialized") social = ev;
    else if (ev.name === "LossSocializationTriggered") trigger = ev;
    else if (ev.name === "KeeperRewardPaid") reward += ev.args.amount as bigint;
  }
  return { social, trigger, reward };
}

/**
 * Checks one mined socializeLoss against the state of the block before it. `accounts` must include
 * every account with a position in the market (the trigger's re-ranking reads the whole opposite
 * side).
 */
export async function checkSocializedLoss(
  sys: InvariantSystem,
  receipt: TransactionReceipt,
  accounts: readonly string[],
): Promise<SocializationCheck> {
  const block = receipt.blockNumber;
  const { social, trigger, reward } = socialEvents(sys, receipt);
  if (!social || !trigger) throw new Error(`${receipt.hash} has no LossSocialized / LossSocializationTriggered event`);
  const marketId: string = social.args.marketId;
  const bankrupt = getAddress(social.args.bankrupt);
  const taker = getAddress(social.args.taker);
  const chargedLong: boolean = social.args.chargedLong;
  const ch = sys.clearinghouse;
  const del = sys.deleverager;
  const pre = await readPositions(sys, marketId, [...accounts, taker], block - 1);
  const post = await readPositions(sys, marketId, [bankrupt, taker], block);
  const freeBefore = await readFree(sys, [bankrupt, taker], block - 1);
  const freeAfter = await readFree(sys, [bankrupt, taker], block);
  const oracle = OracleAdapter__factory.connect(await ch.oracle(), ch.runner);
  const [price] = await oracle.getPrice(marketId, true, at(block));
  const stateBefore = await ch.marketState(marketId, at(block - 1));
  const stateAfter = await ch.marketState(marketId, at(block));
  // F as the call accrued it, with the loss indices as they stood when the trigger was checked.
  const sides = sideFundings(stateAfter.cumulativeFunding, stateBefore.lossIndexLong, stateBefore.lossIndexShort);
  const available =
    (await sys.insuranceFund.available(at(block - 1))) * (await ch.collateralScale()) +
    (await ch.pendingFundFees(at(block - 1)));
  const results: InvariantResult[] = [];
  const check = (name: string, pass: boolean, detail: string) => results.push({ name, pass, detail });

  const b = pre.get(bankrupt);
  if (!b) throw new Error(`${bankrupt} had no position before ${receipt.hash}`);
  const bankruptFunding = fundingOf(sides, b.isLong);
  const chargedFunding = fundingOf(sides, !b.isLong);
  const ref = referenceDelta(b, price, bankruptFunding, available);
  const fundPaid: bigint = social.args.fundPaid;
  const remaining: bigint = social.args.lossSocialized;
  const deficit = ref?.deficit ?? 0n;
  check(
    "socialized deficit recomputed",
    ref !== null && chargedLong === !b.isLong && fundPaid === ref.covered && fundPaid + remaining === ref.deficit,
    ref
      ? `D ${ref.deficit} = fund ${fundPaid} (min(A, D) ${ref.covered}) + D_rem ${remaining}`
      : "B was not bankrupt before the call",
  );

  // L_side += ceil(D_rem * W / Q_side); the rounding floor((Q * dL - D_rem * W) / W) goes to the fund.
  const q = chargedLong ? stateBefore.longOpenInterest : stateBefore.shortOpenInterest;
  const lBefore = chargedLong ? stateBefore.lossIndexLong : stateBefore.lossIndexShort;
  const lStored = chargedLong ? stateAfter.lossIndexLong : stateAfter.lossIndexShort;
  const step = remaining === 0n ? 0n : ceilDiv(remaining * W, q);
  const toFund = (step * q - remaining * W) / W;
  const otherBefore = chargedLong ? stateBefore.lossIndexShort : stateBefore.lossIndexLong;
  const otherAfter = chargedLong ? stateAfter.lossIndexShort : stateAfter.lossIndexLong;
  const eventL: bigint = social.args.lossIndex;
  check(
    "loss index raised exactly",
    social.args.openInterest === q &&
      eventL === lBefore + step &&
      lStored === eventL &&
      social.args.toFund === toFund &&
      otherAfter === otherBefore,
    `Q_side ${q} (event ${social.args.openInterest}), L ${lBefore} + ceil(D_rem * W / Q) ${step} = ${lBefore + step} (event ${eventL}, stored ${lStored}), to the fund ${toFund} (event ${social.args.toFund})`,
  );

  // B closes at exactly zero and its free collateral does not move; the taker holds B's size at P.
  const takerBefore = pre.get(taker);
  const takerAfter = post.get(taker);
  const params = await ch.marketParams(marketId, at(block - 1));
  const notional = ceilDiv(b.size * price, W);
  const initial = ceilDiv(notional * params.imr, W);
  let takerOk: boolean;
  let takerDetail: string;
  if (takerBefore === undefined) {
    takerOk =
      takerAfter !== undefined &&
      takerAfter.isLong === b.isLong &&
      takerAfter.size === b.size &&
      takerAfter.entry === price - bankruptFunding &&
      takerAfter.margin === initial &&
      freeAfter.get(taker)! === freeBefore.get(taker)! - initial + reward;
    takerDetail = `taker ${taker} holds ${takerAfter?.size ?? 0n} at K ${takerAfter?.entry ?? 0n} with margin ${takerAfter?.margin ?? 0n} (initial margin ${initial})`;
  } else {
    // A taker holding a position already: sizes add on B's side and net against the other side.
    const signed = (p: LedgerPosition | undefined) => (p === undefined ? 0n : p.isLong ? p.size : -p.size);
    const moved = b.isLong ? b.size : -b.size;
    takerOk = signed(takerAfter) === signed(takerBefore) + moved;
    takerDetail = `taker ${taker} from ${signed(takerBefore)} to ${signed(takerAfter)} (B's ${moved})`;
  }
  const bFree = freeAfter.get(bankrupt) === freeBefore.get(bankrupt);
  check(
    "bankrupt taken over at zero",
    post.get(bankrupt) === undefined && bFree && takerOk && social.args.size === b.size && social.args.price === price,
    `B ${bankrupt} closed ${b.size} at P ${price}${bFree ? "" : "; B's free collateral moved"}; ${takerDetail}`,
  );

  // The trigger: no eligible counterparty at the call's (P, F, delta), or B listed for socialDelay.
  const delta = ref?.delta ?? 0n;
  const ranking = rankOpposite([...pre.values()], b, price, chargedFunding, delta);
  const oppositePositions = ranking.queue.length + ranking.excluded.length;
  const byDeadline: boolean = trigger.args.byDeadline;
  if (byDeadline) {
    const since = await del.unsettledSince(marketId, bankrupt, at(block - 1));
    const delay = await del.socialDelay(marketId, at(block - 1));
    const now = BigInt((await ch.runner!.provider!.getBlock(block))!.timestamp);
    check(
      "final layer trigger valid",
      since !== 0n && now >= since + delay,
      `deadline: listed since ${since}, socialDelay ${delay}, call at ${now}`,
    );
  } else {
    check(
      "final layer trigger valid",
      ranking.queue.length === 0,
      `empty-list proof: ${ranking.queue.length} of ${oppositePositions} opposite positions eligible at delta ${delta}`,
    );
  }

  return {
    txHash: receipt.hash,
    block,
    gasUsed: receipt.gasUsed,
    marketId,
    bankrupt,
    caller: getAddress(trigger.args.caller),
    taker,
    byDeadline,
    chargedLong,
    bankruptBefore: b,
    price,
    bankruptFunding,
    chargedFunding,
    fundAvailable: available,
    deficit,
    delta,
    fundPaid,
    lossSocialized: remaining,
    openInterest: social.args.openInterest,
    lossIndexBefore: lBefore,
    lossIndex: eventL,
    toFund: social.args.toFund,
    keeperReward: reward,
    takerAfter,
    oppositePositions,
    oppositeEligible: ranking.queue.length,
    results,
    pass: results.every((r) => r.pass),
  };
}
