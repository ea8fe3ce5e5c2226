/**
 * The keeper side of verifiable ADL (docs/mechanism.md sections 3 and 4): an off-chain copy of every
 * position and of the rank index, rebuilt from events exactly as contracts/adl/AutoDeleverager.sol
 * maintains it, the call's loss per unit, the eligible queue and a (counterparty list, completeness
 * proof) pair the contract accepts. Every amount is a bigint; nothing here rounds differently from
 * the Solidity.
 */
import { getAddress, type Log } from "ethers";
import {
  AutoDeleverager__factory,
  Clearinghouse__factory,
  type AutoDeleverager,
  type Clearinghouse,
} from "../typechain-types";
import { WAD, mulDivDown, mulDivUp } from "./math";
import { equityOf, leverageUp, pnlPerUnit } from "./position";
import { RankTree, HEIGHT, leafOf } from "./rank-tree";
import { WAD_SQUARED, isEligible, keyCovers, nodeBound, positionScore, type QueueEntry } from "./score";

/** A position as the clearinghouse stores it, with its rank-index leaf. */
export interface IndexedPosition {
  account: string;
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  leverage: bigint;
  /** The stored leaf (0 when closed); membership is read from it, never recomputed. */
  leaf: number;
}

/** The fields of a PositionChanged event the book needs. */
export interface PositionChangedArgs {
  marketId: string;
  account: string;
  isLong: boolean;
  size: bigint;
  entry: bigint;
  margin: bigint;
  leverage: bigint;
  leaf: bigint | number;
}

/** The fields of a NodeRefreshed event. */
export interface NodeRefreshedArgs {
  marketId: string;
  isLong: boolean;
  level: bigint | number;
  position: bigint | number;
}

/** One node of a completeness proof (IAutoDeleverager.ProofNode). */
export interface ProofNode {
  level: number;
  position: number;
  open: boolean;
  members: string[];
}

const clearinghouseInterface = Clearinghouse__factory.createInterface();
const deleveragerInterface = AutoDeleverager__factory.createInterface();
const POSITION_CHANGED = clearinghouseInterface.getEvent("PositionChanged")!.topicHash;
const NODE_REFRESHED = deleveragerInterface.getEvent("NodeRefreshed")!.topicHash;

const addressValue = (a: string): bigint => BigInt(a);

/**
 * getAddress with a memo: the checksum costs a keccak, and a book of 100,000 positions replays
 * hundreds of thousands of events over the same accounts.
 */
const CHECKSUMS = new Map<string, string>();
function checksummed(account: string): string {
  let c = CHECKSUMS.get(account);
  if (c === undefined) {
    c = getAddress(account);
    if (CHECKSUMS.size >= 1_000_000) CHECKSUMS.clear();
    CHECKSUMS.set(account, c);
  }
  return c;
}
const byAddress = (a: string, b: string): number => {
  const [x, y] = [addressValue(a), addressValue(b)];
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Both trees of one market. */
interface MarketIndex {
  positions: Map<string, IndexedPosition>;
  trees: { long: RankTree; short: RankTree };
  /** Members per `${isLong}:${leaf}` of open positions. */
  members: Map<string, Set<string>>;
}

const memberKey = (isLong: boolean, leaf: number): string => `${isLong}:${leaf}`;

/** A position in a BookSnapshot: bigints as decimal strings. */
export interface PositionSnapshot {
  account: string;
  isLong: boolean;
  size: string;
  entry: string;
  margin: string;
  leverage: string;
  leaf: number;
}

/** A PositionBook as plain JSON: positions and the packed node words of both trees, per market. */
export interface BookSnapshot {
  markets: {
    marketId: string;
    positions: PositionSnapshot[];
    /** [heap index, packed word as a decimal string] of every non-empty node. */
    long: [number, string][];
    short: [number, string][];
  }[];
}

/**
 * Every position of every market and the replayed rank index. Apply PositionChanged (from the
 * clearinghouse) and NodeRefreshed (from the deleverager) events in chain order.
 */
export class PositionBook {
  private readonly markets = new Map<string, MarketIndex>();

  private market(marketId: string): MarketIndex {
    const id = marketId.toLowerCase();
    let m = this.markets.get(id);
    if (!m) {
      m = {
        positions: new Map(),
        trees: { long: new RankTree(true), short: new RankTree(false) },
        members: new Map(),
      };
      this.markets.set(id, m);
    }
    return m;
  }

  /** The replayed tree of (market, side). */
  tree(marketId: string, isLong: boolean): RankTree {
    const t = this.market(marketId).trees;
    return isLong ? t.long : t.short;
  }

  /** The stored position of `account` (size 0 if none). */
  position(marketId: string, account: string): IndexedPosition {
    const acct = checksummed(account);
    return (
      this.market(marketId).positions.get(acct) ?? {
        account: acct,
        isLong: false,
        size: 0n,
        entry: 0n,
        margin: 0n,
        leverage: 0n,
        leaf: 0,
      }
    );
  }

  /** Open positions of a market (any order). */
  positions(marketId: string): IndexedPosition[] {
    return [...this.market(marketId).positions.values()];
  }

  /** Open positions whose stored (side, leaf) is (isLong, leaf), ascending by address. */
  leafMembers(marketId: string, isLong: boolean, leaf: number): IndexedPosition[] {
    const m = this.market(marketId);
    const set = m.members.get(memberKey(isLong, leaf));
    if (!set) return [];
    return [...set].sort(byAddress).map((a) => m.positions.get(a)!);
  }

  /**
   * Records an open position of `size` at funding-adjusted entry `entry` with margin `margin` as the
   * clearinghouse would store it: a = ceil(q*W/c) and the leaf of (a, K) under band reference `kRef`.
   * For hand-built and benchmark books; books of a real chain come from its events.
   */
  putPosition(
    marketId: string,
    account: string,
    isLong: boolean,
    size: bigint,
    entry: bigint,
    margin: bigint,
    kRef: number,
  ): void {
    const leverage = leverageUp(size, margin);
    const leaf = leafOf(leverage, entry, kRef);
    this.applyPositionChanged({ marketId, account, isLong, size, entry, margin, leverage, leaf });
  }

  /**
   * Applies one PositionChanged: mirrors Clearinghouse._store (reindex is skipped for a change that
   * keeps the position open with the same side, a and K) and AutoDeleverager.reindex (update in place
   * when the leaf and side stay, otherwise remove from the old leaf if open and insert if open).
   */
  applyPositionChanged(ev: PositionChangedArgs): void {
    const m = this.market(ev.marketId);
    const account = checksummed(ev.account);
    const old = m.positions.get(account);
    const wasOpen = old !== undefined;
    const isOpen = ev.size !== 0n;
    const leaf = Number(ev.leaf);
    const reindexed =
      !wasOpen || !isOpen || old.isLong !== ev.isLong || old.leverage !== ev.leverage || old.entry !== ev.entry;
    if (reindexed) {
      const tree = (isLong: boolean): RankTree => (isLong ? m.trees.long : m.trees.short);
      if (wasOpen && isOpen && old.isLong === ev.isLong && old.leaf === leaf) {
        tree(ev.isLong).update(leaf, ev.leverage, ev.entry);
      } else {
        if (wasOpen) tree(old.isLong).remove(old.leaf);
        if (isOpen) tree(ev.isLong).insert(leaf, ev.leverage, ev.entry);
      }
    } else if (old.leaf !== leaf) {
      throw new Error(`PositionChanged of ${account} moved leaf ${old.leaf} -> ${leaf} without a reindex`);
    }
    if (wasOpen) m.members.get(memberKey(old.isLong, old.leaf))?.delete(account);
    if (!isOpen) {
      m.positions.delete(account);
      return;
    }
    m.positions.set(account, {
      account,
      isLong: ev.isLong,
      size: ev.size,
      entry: ev.entry,
      margin: ev.margin,
      leverage: ev.leverage,
      leaf,
    });
    const key = memberKey(ev.isLong, leaf);
    if (!m.members.has(key)) m.members.set(key, new Set());
    m.members.get(key)!.add(account);
  }

  /** Market ids (lower case) the book has seen. */
  marketIds(): string[] {
    return [...this.markets.keys()];
  }

  /** The whole book as JSON-safe data (see restore). */
  snapshot(): BookSnapshot {
    const words = (t: RankTree): [number, string][] => [...t.words].map(([i, w]) => [i, w.toString()]);
    return {
      markets: [...this.markets].map(([marketId, m]) => ({
        marketId,
        positions: [...m.positions.values()].map((p) => ({
          account: p.account,
          isLong: p.isLong,
          size: p.size.toString(),
          entry: p.entry.toString(),
          margin: p.margin.toString(),
          leverage: p.leverage.toString(),
          leaf: p.leaf,
        })),
        long: words(m.trees.long),
        short: words(m.trees.short),
      })),
    };
  }

  /** A book equal to the one `snapshot` was taken of. */
  static restore(s: BookSnapshot): PositionBook {
    const book = new PositionBook();
    for (const ms of s.markets) {
      const m = book.market(ms.marketId);
      for (const [i, w] of ms.long) m.trees.long.words.set(i, BigInt(w));
      for (const [i, w] of ms.short) m.trees.short.words.set(i, BigInt(w));
      for (const p of ms.positions) {
        const account = checksummed(p.account);
        m.positions.set(account, {
          account,
          isLong: p.isLong,
          size: BigInt(p.size),
          entry: BigInt(p.entry),
          margin: BigInt(p.margin),
          leverage: BigInt(p.leverage),
          leaf: p.leaf,
        });
        const key = memberKey(p.isLong, p.leaf);
        if (!m.members.has(key)) m.members.set(key, new Set());
        m.members.get(key)!.add(account);
      }
    }
    return book;
  }

  /** Applies one NodeRefreshed: a leaf from its current members, an internal node from its children. */
  applyNodeRefreshed(ev: NodeRefreshedArgs): void {
    const level = Number(ev.level);
    const position = Number(ev.position);
    const tree = this.tree(ev.marketId, ev.isLong);
    if (level === 0) {
      const members = this.leafMembers(ev.marketId, ev.isLong, position);
      tree.refreshLeaf(
        position,
        members.map((p) => p.leverage),
        members.map((p) => p.entry),
      );
    } else {
      tree.refreshInternal((1 << (HEIGHT - level)) + position);
    }
  }

  /** Applies a raw log of either contract (others are ignored); logs must come in chain order. */
  applyLog(log: Log): void {
    if (log.topics[0] === POSITION_CHANGED) {
      const ev = clearinghouseInterface.parseLog(log)!;
      this.applyPositionChanged(ev.args as unknown as PositionChangedArgs);
    } else if (log.topics[0] === NODE_REFRESHED) {
      const ev = deleveragerInterface.parseLog(log)!;
      this.applyNodeRefreshed(ev.args as unknown as NodeRefreshedArgs);
    }
  }

  /**
   * Rebuilds the book from the logs of `clearinghouse` and `deleverager` in [fromBlock, toBlock],
   * queried in pages of `pageSize` blocks and applied in (block, log index) order. Start at the
   * deleverager's deployment (or earlier) so the index is complete.
   */
  static async fromEvents(
    clearinghouse: Clearinghouse,
    deleverager: AutoDeleverager,
    fromBlock: number,
    toBlock: number,
    pageSize = 5000,
  ): Promise<PositionBook> {
    const book = new PositionBook();
    await book.sync(clearinghouse, deleverager, fromBlock, toBlock, pageSize);
    return book;
  }

  /** Applies the logs of [fromBlock, toBlock] (see fromEvents). */
  async sync(
    clearinghouse: Clearinghouse,
    deleverager: AutoDeleverager,
    fromBlock: number,
    toBlock: number,
    pageSize = 5000,
  ): Promise<void> {
    if (pageSize < 1) throw new RangeError("pageSize must be positive");
    const provider = clearinghouse.runner?.provider;
    if (!provider) throw new Error("clearinghouse has no provider");
    const [ch, del] = [await clearinghouse.getAddress(), await deleverager.getAddress()];
    for (let start = fromBlock; start <= toBlock; start += pageSize) {
      const end = Math.min(start + pageSize - 1, toBlock);
      const logs = [
        ...(await provider.getLogs({ address: ch, topics: [POSITION_CHANGED], fromBlock: start, toBlock: end })),
        ...(await provider.getLogs({ address: del, topics: [NODE_REFRESHED], fromBlock: start, toBlock: end })),
      ];
      logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
      for (const log of logs) this.applyLog(log);
    }
  }
}

/** The call's deficit D, the fund's cover min(A, D), sigma and delta. */
export interface AdlDelta {
  deficit: bigint;
  covered: bigint;
  sigma: bigint;
  delta: bigint;
}

/**
 * D = -(equity of B at (P, F)), covered = min(A, D), sigma = floor(covered * W / q_B) and
 * delta = ceil(D * W / q_B) - sigma, as AutoDeleverager computes them. All zero when B has no
 * position or is not bankrupt (the contract reverts then; its adlDelta view returns zeros).
 */
export function adlDelta(
  book: PositionBook,
  marketId: string,
  bankrupt: string,
  price: bigint,
  funding: bigint,
  fundAvailable: bigint,
): AdlDelta {
  const b = book.position(marketId, bankrupt);
  const zero = { deficit: 0n, covered: 0n, sigma: 0n, delta: 0n };
  if (b.size === 0n) return zero;
  const eq = equityOf(b.margin, b.size, pnlPerUnit(b.isLong, b.entry, price, funding));
  if (eq >= 0n) return zero;
  const deficit = -eq;
  const covered = fundAvailable < deficit ? fundAvailable : deficit;
  const sigma = mulDivDown(covered, WAD, b.size);
  return { deficit, covered, sigma, delta: mulDivUp(deficit, WAD, b.size) - sigma };
}

/** A queue entry with the position behind it. */
export interface QueuedPosition extends QueueEntry {
  position: IndexedPosition;
}

/**
 * The eligible, finite-score positions on the side opposite `bankrupt`'s, in queue order (head
 * first): the only positions a deleverage list may name, in the only order it may name them.
 */
export function buildQueue(
  book: PositionBook,
  marketId: string,
  bankrupt: string,
  price: bigint,
  funding: bigint,
  delta: bigint,
): QueuedPosition[] {
  const b = book.position(marketId, bankrupt);
  if (b.size === 0n) throw new Error(`${bankrupt} has no position in ${marketId}`);
  const side = !b.isLong;
  const keyed: { entry: QueuedPosition; approx: number; addr: bigint }[] = [];
  const adjusted = price - funding;
  for (const p of book.positions(marketId)) {
    if (p.isLong !== side || p.account === b.account) continue;
    // Eligibility first (isEligible inlined: E -/+ (P - F) >= max(delta, 0), with E = floor(W^2/a) -/+ K);
    // it is cheaper than the score and rules most of a book out.
    const perUnitMargin = WAD_SQUARED / p.leverage;
    const equityPerUnit = side ? perUnitMargin - p.entry + adjusted : perUnitMargin + p.entry - adjusted;
    if (equityPerUnit < 0n || equityPerUnit < delta) continue;
    const s = positionScore(p.isLong, p.leverage, p.entry, price, funding);
    if (s.minusInf) continue;
    keyed.push({
      entry: { ...s, account: p.account, position: p },
      approx: Number(s.value),
      addr: addressValue(p.account),
    });
  }
  // compareQueue on finite scores: higher score, then lower address. Number() is monotone, so
  // comparing the float first and the exact bigint only on equal floats keeps the order exact.
  keyed.sort((x, y) => {
    if (x.approx !== y.approx) return y.approx - x.approx;
    if (x.entry.value !== y.entry.value) return x.entry.value > y.entry.value ? -1 : 1;
    return x.addr < y.addr ? -1 : x.addr > y.addr ? 1 : 0;
  });
  return keyed.map((k) => k.entry);
}

/** A max-heap item of headOfQueue: a tree node (by its bound) or a scored member. */
interface HeadItem {
  value: bigint;
  /** 0 for a node, 1 for a member: on equal values a node is expanded before any member is taken. */
  kind: 0 | 1;
  addr: bigint;
  level: number;
  position: number;
  entry?: QueuedPosition;
}

/** True iff `a` comes out of the heap before `b`. */
const headFirst = (a: HeadItem, b: HeadItem): boolean =>
  a.value !== b.value ? a.value > b.value : a.kind !== b.kind ? a.kind < b.kind : a.addr < b.addr;

/**
 * The queue of buildQueue, lazily, head first: a best-first walk of the opposite side's replayed
 * rank tree. Node bounds S_fin(max a, best K) are upper bounds on every member's score (the
 * soundness the on-chain proof relies on), so a member taken from the heap ranks above everything
 * still unexpanded; empty and wholly ineligible nodes are skipped. Only leaves whose bound reaches
 * the head are ever scored, so the cost follows the proof's size rather than the book's.
 */
export function* headOfQueue(
  book: PositionBook,
  marketId: string,
  bankrupt: string,
  price: bigint,
  funding: bigint,
  delta: bigint,
): Generator<QueuedPosition> {
  const b = book.position(marketId, bankrupt);
  if (b.size === 0n) throw new Error(`${bankrupt} has no position in ${marketId}`);
  const side = !b.isLong;
  const tree = book.tree(marketId, side);
  const heap: HeadItem[] = [];
  const push = (item: HeadItem): void => {
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!headFirst(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  };
  const pop = (): HeadItem => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < heap.length && headFirst(heap[l], heap[best])) best = l;
        if (r < heap.length && headFirst(heap[r], heap[best])) best = r;
        if (best === i) break;
        [heap[i], heap[best]] = [heap[best], heap[i]];
        i = best;
      }
    }
    return top;
  };
  const pushNode = (level: number, position: number): void => {
    const n = tree.nodeAt(level, position);
    if (n.maxA === 0n || !keyCovers(side, n.maxE, price, funding, delta)) return;
    push({ value: nodeBound(n.maxA, n.bestK, side, price, funding), kind: 0, addr: 0n, level, position });
  };
  pushNode(HEIGHT, 0);
  while (heap.length > 0) {
    const item = pop();
    if (item.kind === 1) {
      yield item.entry!;
    } else if (item.level > 0) {
      pushNode(item.level - 1, 2 * item.position);
      pushNode(item.level - 1, 2 * item.position + 1);
    } else {
      for (const p of book.leafMembers(marketId, side, item.position)) {
        if (p.account === b.account) continue;
        const s = positionScore(p.isLong, p.leverage, p.entry, price, funding);
        if (s.minusInf || !isEligible(p.isLong, p.leverage, p.entry, price, funding, delta)) continue;
        const entry: QueuedPosition = { ...s, account: p.account, position: p };
        push({ value: s.value, kind: 1, addr: addressValue(p.account), level: 0, position: item.position, entry });
      }
    }
  }
}

/**
 * A completeness proof for a list whose last live entry has score `lastScore`, over the replayed
 * tree of (market, side): top-down from the root, left to right; a node is pruned if empty, wholly
 * ineligible or bounded strictly below `lastScore`; otherwise a leaf is opened (all its members,
 * ascending) and an internal node split into its children.
 */
export function buildProof(
  book: PositionBook,
  marketId: string,
  side: boolean,
  price: bigint,
  funding: bigint,
  delta: bigint,
  lastScore: bigint,
): ProofNode[] {
  const tree = book.tree(marketId, side);
  const proof: ProofNode[] = [];
  const visit = (level: number, position: number): void => {
    const n = tree.nodeAt(level, position);
    const prunable =
      n.maxA === 0n ||
      !keyCovers(side, n.maxE, price, funding, delta) ||
      nodeBound(n.maxA, n.bestK, side, price, funding) < lastScore;
    if (prunable) {
      proof.push({ level, position, open: false, members: [] });
    } else if (level === 0) {
      const members = book.leafMembers(marketId, side, position).map((p) => p.account);
      proof.push({ level, position, open: true, members });
    } else {
      visit(level - 1, 2 * position);
      visit(level - 1, 2 * position + 1);
    }
  };
  visit(HEIGHT, 0);
  return proof;
}

/** Below every finite score: a proof for an empty list prunes no node by its bound. */
const NO_LAST_ENTRY = -(1n << 255n);

/**
 * The proof of `socializeLoss`'s first trigger (docs/mechanism.md section 7.6): the whole tree of
 * `side` tiled for an empty list, so that only empty or wholly ineligible nodes are pruned and every
 * opened leaf lists all its members. The contract accepts it only if none of them is eligible at
 * `delta`, that is, when ADL is impossible now (planDeleverage returns undefined).
 */
export function buildNoEligibleProof(
  book: PositionBook,
  marketId: string,
  side: boolean,
  price: bigint,
  funding: bigint,
  delta: bigint,
): ProofNode[] {
  return buildProof(book, marketId, side, price, funding, delta, NO_LAST_ENTRY);
}

/** A deleverage call's arguments and what it will do. */
export interface DeleveragePlan {
  counterparties: string[];
  proof: ProofNode[];
  /** Each counterparty's take, in list order. */
  takes: bigint[];
  /** Each counterparty's score, in list order. */
  scores: bigint[];
}

/**
 * The head of the queue covering `bankrupt`'s size (or its first `maxEntries` entries) and the
 * proof that it is the head. Throws if no eligible counterparty exists (ADL cannot settle then).
 */
export function buildDeleverage(
  book: PositionBook,
  marketId: string,
  bankrupt: string,
  price: bigint,
  funding: bigint,
  delta: bigint,
  maxEntries = 64,
): DeleveragePlan {
  const plan = planDeleverage(book, marketId, bankrupt, price, funding, delta, maxEntries);
  if (!plan) throw new Error(`no eligible counterparty for ${bankrupt}`);
  return plan;
}

/** buildDeleverage, or undefined when no eligible counterparty exists (ADL cannot settle `bankrupt`). */
export function planDeleverage(
  book: PositionBook,
  marketId: string,
  bankrupt: string,
  price: bigint,
  funding: bigint,
  delta: bigint,
  maxEntries = 64,
): DeleveragePlan | undefined {
  const b = book.position(marketId, bankrupt);
  const plan: DeleveragePlan = { counterparties: [], proof: [], takes: [], scores: [] };
  let remaining = b.size;
  for (const q of headOfQueue(book, marketId, bankrupt, price, funding, delta)) {
    if (remaining === 0n || plan.counterparties.length >= maxEntries) break;
    const take = remaining < q.position.size ? remaining : q.position.size;
    remaining -= take;
    plan.counterparties.push(q.account);
    plan.takes.push(take);
    plan.scores.push(q.value);
  }
  if (plan.counterparties.length === 0) return undefined;
  plan.proof = buildProof(book, marketId, !b.isLong, price, funding, delta, plan.scores[plan.scores.length - 1]);
  return plan;
}

/** PositionBook.fromEvents as a free function. */
export function fromEvents(
  clearinghouse: Clearinghouse,
  deleverager: AutoDeleverager,
  fromBlock: number,
  toBlock: number,
  pageSize = 5000,
): Promise<PositionBook> {
  return PositionBook.fromEvents(clearinghouse, deleverager, fromBlock, toBlock, pageSize);
}
