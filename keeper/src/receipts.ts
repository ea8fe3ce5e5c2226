/** What a mined liquidation, deleverage or socialized loss did, read from its events. */
import { getAddress } from "ethers";
import { AutoDeleverager__factory, Clearinghouse__factory } from "../../typechain-types";
import type { TxOutcome } from "./interfaces";

const ch = Clearinghouse__factory.createInterface();
const del = AutoDeleverager__factory.createInterface();

export interface LiquidationEvent {
  size: bigint;
  price: bigint;
  feeToLiquidator: bigint;
  deficitCovered: bigint;
}

export interface DeleverageEvents {
  counterparties: string[];
  takes: bigint[];
  scores: bigint[];
  queuePositions: bigint[];
  charges: bigint[];
  price: bigint;
  closedSize: bigint;
  remainingSize: bigint;
  fundContribution: bigint;
  deficitAbsorbed: bigint;
  delta: bigint;
}

const parse = (iface: typeof ch | typeof del, address: string, outcome: TxOutcome) =>
  outcome.logs
    .filter((l) => l.address.toLowerCase() === address.toLowerCase())
    .map((l) => {
      try {
        return iface.parseLog({ topics: [...l.topics], data: l.data });
      } catch {
        return null;
      }
    })
    .filter((e) => e !== null);

/** The PositionLiquidated event of `account` in a receipt. */
export function liquidationEvent(
  clearinghouse: string,
  account: string,
  outcome: TxOutcome,
): LiquidationEvent | undefined {
  const e = parse(ch, clearinghouse, outcome).find(
    (x) => x.name === "PositionLiquidated" && getAddress(x.args.account) === getAddress(account),
  );
  if (!e) return undefined;
  return {
    size: e.args.size,
    price: e.args.price,
    feeToLiquidator: e.args.feeToLiquidator,
    deficitCovered: e.args.deficitCovered,
  };
}

/** The CounterpartyDeleveraged events (in order) and the DeleverageExecuted event of a receipt. */
export function deleverageEvents(deleverager: string, outcome: TxOutcome): DeleverageEvents | undefined {
  const events = parse(del, deleverager, outcome);
  const done = events.find((e) => e.name === "DeleverageExecuted");
  if (!done) return undefined;
  const legs = events.filter((e) => e.name === "CounterpartyDeleveraged");
  return {
    counterparties: legs.map((e) => getAddress(e.args.counterparty)),
    takes: legs.map((e) => e.args.size as bigint),
    scores: legs.map((e) => e.args.score as bigint),
    queuePositions: legs.map((e) => e.args.queuePosition as bigint),
    charges: legs.map((e) => e.args.charged as bigint),
    price: legs.length > 0 ? (legs[0].args.price as bigint) : 0n,
    closedSize: done.args.closedSize,
    remainingSize: done.args.remainingSize,
    fundContribution: done.args.fundContribution,
    deficitAbsorbed: done.args.deficitAbsorbed,
    delta: done.args.delta,
  };
}

export interface SocializationEvents {
  byDeadline: boolean;
  chargedLong: boolean;
  size: bigint;
  price: bigint;
  fundPaid: bigint;
  lossSocialized: bigint;
  openInterest: bigint;
  lossIndex: bigint;
  toFund: bigint;
  keeperReward: bigint;
}

/** The LossSocialized (clearinghouse) and LossSocializationTriggered (deleverager) events of a receipt. */
export function socializationEvents(
  clearinghouse: string,
  deleverager: string,
  outcome: TxOutcome,
): SocializationEvents | undefined {
  const chEvents = parse(ch, clearinghouse, outcome);
  const social = chEvents.find((e) => e.name === "LossSocialized");
  const trigger = parse(del, deleverager, outcome).find((e) => e.name === "LossSocializationTriggered");
  if (!social || !trigger) return undefined;
  const keeperReward = chEvents
    .filter((e) => e.name === "KeeperRewardPaid")
    .reduce((sum, e) => sum + (e.args.amount as bigint), 0n);
  return {
    byDeadline: trigger.args.byDeadline,
    chargedLong: social.args.chargedLong,
    size: social.args.size,
    price: social.args.price,
    fundPaid: social.args.fundPaid,
    lossSocialized: social.args.lossSocialized,
    openInterest: social.args.openInterest,
    lossIndex: social.args.lossIndex,
    toFund: social.args.toFund,
    keeperReward,
  };
}
