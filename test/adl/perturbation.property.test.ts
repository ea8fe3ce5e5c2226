/**
 * Property (fast-check, fixed seed): `deleverage` accepts a (list, proof) pair if and only if the
 * pair's claim is true, and a false claim is rejected with the custom error its one fault calls for.
 *
 * The claim of a pair (docs/mechanism.md section 3 step 2, section 4), judged here by an independent
 * reference over positions and node records read from the chain:
 *   list:  the bankrupt account B is not named; entries without a position are skipped; every live
 *          entry is on B's opposite side, named once, has a finite score, is eligible
 *          (floor(W*W/a) + x >= delta), ranks below the previous live entry (higher score first,
 *          lower address on ties) and takes a non-zero amount (no padding); there is a live entry;
 *   proof: its nodes tile the 2^14 leaves left to right; each is pruned and its stored record says
 *          so (empty, wholly ineligible, or bound S_fin(max a, best K) strictly below the last live
 *          entry's score), or is an opened leaf whose members ascend strictly, whose live members
 *          (stored side and leaf) number exactly its count and are each listed, ranked below the
 *          last live entry, or ineligible.
 *
 * Invariant checked: on random books (built as in deleverage.property.test.ts) with a bankrupt B and
 * the fund short, the pair lib/adl.ts builds is true (and is sent as is in some calls); ONE
 * perturbation is applied to it per call; the contract accepts iff the perturbed claim is true. An accepted call settles exactly as the
 * spec predicts (deleverageExactly, to the wei) and its live list is the exact head of the eligible
 * queue by brute force (soundness); a rejected call reverts with the expected error and arguments
 * and leaves positions, free collateral, market state, fund, treasury, rounding reserves, the
 * unsettled list and both tree roots unchanged.
 *
 * Perturbations and their expected outcome (derived case by case below; the reference judge must
 * agree with each derivation, and the chain with both):
 *   rejected: drop a non-last entry (its leaf is opened: AdlMemberOutranks); swap two entries
 *     (AdlListOrder); repeat an entry later (AdlEntryDuplicate); insert an ineligible or
 *     minus-infinity opposite position (AdlEntryIneligible / AdlEntryNotFinite); insert an eligible
 *     lower-ranked position before an entry it ranks below (AdlListOrder); insert a same-side position
 *     (AdlEntrySameSide); insert B (AdlEntryIsBankrupt); append an eligible entry after B is covered
 *     (AdlListPadded); drop / repeat / swap proof nodes, shift a node's position, lower or raise a
 *     node's level (AdlProofGap, AdlProofIncomplete, AdlNodeNotPrunable, AdlOpenedNotLeaf); prune an
 *     opened leaf; hide an entry by dropping it and pruning its leaf, which then holds a higher-ranked
 *     unlisted member; prune an internal node the builder split, i.e. whose bound reaches the last
 *     score (AdlNodeNotPrunable); open an internal node (AdlOpenedNotLeaf); drop a member of an
 *     opened leaf (AdlLeafCountMismatch); swap or repeat members (AdlMembersNotAscending); name a
 *     node outside the tree (RankTreeLevelOutOfRange / RankTreePositionOutOfRange).
 *   accepted (the claim stays true): none (the builder's pair itself); truncate the list after a live entry (the list may stop before B
 *     is covered, and a proof for a lower last score also proves a higher one); insert an account
 *     without a position (closed entries are skipped); split a pruned node into its two children
 *     (every node dominates its children, so both stay prunable); open a prunable leaf with its
 *     members, pruning the siblings on the way down; add a non-member (another leaf's member, a
 *     same-side or a flat account) to an opened leaf in ascending place (membership is read from the
 *     stored side and leaf, non-members are skipped as moved, and the count still binds every
 *     member); give a pruned node members (a pruned node's claim is about its stored record only).
 *   either, by the data: open a prunable leaf listing no members (true iff its count is 0).
 */
import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, takeSnapshot } from "@nomicfoundation/hardhat-network-helpers";
import type { ProofNode } from "../../lib/adl";
import { HEIGHT, LEAVES } from "../../lib/rank-tree";
import { ETH, ETH_PRICE, systemFixture, type Fixture } from "../helpers/fixture";
import { deleverageExactly, fundAvailable, keeperPlan, lev, pos, tradeAt, units, type Pos } from "../helpers/adl";

const SEED = 0x9e27_2026;
const BOOKS = 16;
/** Perturbations tried per book, each on the honest pair (one per call). */
const PER_BOOK = 11;
const W = 10n ** 18n;
const USD = (n: number): bigint => BigInt(n) * W;

// ------------------------------------------------------------------ independent reference

/** x of a position (or node bound) on `isLong`'s side with entry k at (P, F). */
const xOf = (isLong: boolean, k: bigint, price: bigint, funding: bigint): bigint =>
  isLong ? price - funding - k : k - (price - funding);

/** S_fin(a, x, P) of docs/mechanism.md section 2, every step floored (x <= 0: truncation toward zero). */
function sFin(a: bigint, x: bigint, p: bigint): bigint {
  if (x > 0n) {
    const y = (a * x) / W;
    const g = (y * W) / (W + y);
    return (((p * a) / W) * g) / W;
  }
  return (x * W) / p;
}

/** A position's place in the queue. */
interface Rank {
  account: string;
  inf: boolean;
  score: bigint;
}

/** Strictly below in queue order: minus infinity below every finite score, ties by higher address. */
function ranksBelow(a: Rank, b: Rank): boolean {
  if (a.inf !== b.inf) return a.inf;
  if (!a.inf && a.score !== b.score) return a.score < b.score;
  return BigInt(a.account) > BigInt(b.account);
}

/** A node record as the chain stores it. */
interface ChainNode {
  maxA: bigint;
  bestK: bigint;
  maxE: bigint;
  count: bigint;
}

/** What one call is judged against: chain state read once per book (the calls do not change it). */
interface Ctx {
  f: Fixture;
  id: string;
  bankrupt: string;
  b: Pos;
  /** The counterparties' side: true for longs. */
  side: boolean;
  price: bigint;
  funding: bigint;
  delta: bigint;
  /** Every account the book uses (the traders and the keeper), read from the chain. */
  positions: Map<string, Pos>;
  nodes: Map<string, ChainNode>;
}

const FLAT: Pos = { isLong: false, size: 0n, entry: 0n, margin: 0n, leverage: 0n, leaf: 0n };
const positionOf = (ctx: Ctx, account: string): Pos => ctx.positions.get(account) ?? FLAT;

function rankOf(ctx: Ctx, account: string): Rank {
  const p = positionOf(ctx, account);
  const x = xOf(p.isLong, p.entry, ctx.price, ctx.funding);
  if (x < 0n && p.leverage * -x >= W * W) return { account, inf: true, score: 0n };
  return { account, inf: false, score: sFin(p.leverage, x, ctx.price) };
}

const eligible = (ctx: Ctx, p: Pos): boolean =>
  (W * W) / p.leverage + xOf(p.isLong, p.entry, ctx.price, ctx.funding) >= ctx.delta;

async function nodeOf(ctx: Ctx, level: number, position: number): Promise<ChainNode> {
  const key = `${level}/${position}`;
  let n = ctx.nodes.get(key);
  if (!n) {
    const r = await ctx.f.deleverager.nodeAt(ctx.id, ctx.side, level, position);
    n = { maxA: r.maxA, bestK: r.bestK, maxE: r.maxE, count: r.count };
    ctx.nodes.set(key, n);
  }
  return n;
}

/** Empty, wholly ineligible (max E +/- (P - F) < delta), or bounded strictly below `last`. */
function prunable(ctx: Ctx, n: ChainNode, last: Rank): boolean {
  if (n.maxA === 0n) return true;
  const adjusted = ctx.price - ctx.funding;
  if ((ctx.side ? n.maxE + adjusted : n.maxE - adjusted) < ctx.delta) return true;
  return sFin(n.maxA, xOf(ctx.side, n.bestK, ctx.price, ctx.funding), ctx.price) < last.score;
}

const prunableAt = async (ctx: Ctx, level: number, position: number, last: Rank): Promise<boolean> =>
  prunable(ctx, await nodeOf(ctx, level, position), last);

/** Live members of a leaf (stored side and leaf), ascending by address. */
function leafMembers(ctx: Ctx, leaf: number): string[] {
  return [...ctx.positions.entries()]
    .filter(([, p]) => p.size !== 0n && p.isLong === ctx.side && p.leaf === BigInt(leaf))
    .map(([a]) => a)
    .sort(byAddress);
}

const byAddress = (a: string, b: string): number => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

interface Verdict {
  holds: boolean;
  reason: string;
  live: string[];
  last?: Rank;
}

/** Whether the claim of (list, proof) is true, with the first false statement as the reason. */
async function judge(ctx: Ctx, list: string[], proof: ProofNode[]): Promise<Verdict> {
  const live: string[] = [];
  const no = (reason: string): Verdict => ({ holds: false, reason, live });
  let remaining = ctx.b.size;
  let last: Rank | undefined;
  for (const a of list) {
    if (a === ctx.bankrupt) return no(`names the bankrupt position ${a}`);
    const p = positionOf(ctx, a);
    if (p.size === 0n) continue;
    if (p.isLong !== ctx.side) return no(`${a} is on the bankrupt side`);
    if (live.includes(a)) return no(`${a} named twice`);
    const r = rankOf(ctx, a);
    if (r.inf) return no(`${a} scores minus infinity`);
    if (!eligible(ctx, p)) return no(`${a} is ineligible`);
    if (last && !ranksBelow(r, last)) return no(`${a} does not rank below ${last.account}`);
    if (remaining === 0n) return no(`${a} pads a covered list`);
    remaining -= remaining < p.size ? remaining : p.size;
    live.push(a);
    last = r;
  }
  if (!last) return no("no live entry");
  let cursor = 0;
  for (const n of proof) {
    const at = `node ${n.level}/${n.position}`;
    if (n.level > HEIGHT || n.position >= LEAVES >> n.level) return no(`${at} does not exist`);
    if (n.position * 2 ** n.level !== cursor) return no(`${at} does not start at leaf ${cursor}`);
    const node = await nodeOf(ctx, n.level, n.position);
    if (n.open) {
      if (n.level !== 0) return no(`${at} opened but not a leaf`);
      for (let j = 1; j < n.members.length; j++) {
        if (byAddress(n.members[j - 1], n.members[j]) >= 0) return no(`${at} members not ascending`);
      }
      const members = n.members.filter((m) => {
        const p = positionOf(ctx, m);
        return p.size !== 0n && p.isLong === ctx.side && p.leaf === BigInt(n.position);
      });
      if (BigInt(members.length) !== node.count) return no(`${at} lists ${members.length} of ${node.count}`);
      for (const m of members) {
        if (!live.includes(m) && eligible(ctx, positionOf(ctx, m)) && !ranksBelow(rankOf(ctx, m), last)) {
          return no(`${at} member ${m} outranks the last entry`);
        }
      }
    } else if (!prunable(ctx, node, last)) {
      return no(`${at} is not prunable`);
    }
    cursor += 2 ** n.level;
  }
  if (cursor !== LEAVES) return no(`the proof ends at leaf ${cursor}`);
  return { holds: true, reason: "", live, last };
}

/**
 * Soundness of a true claim, by brute force over every position: the live list is the exact head of
 * the eligible queue (ordered, eligible, and every unlisted eligible finite position ranks below its
 * last entry).
 */
function expectHead(ctx: Ctx, v: Verdict, what: string): void {
  expect(v.holds && v.last !== undefined, what).to.equal(true);
  for (const [a, p] of ctx.positions) {
    if (p.size === 0n || p.isLong !== ctx.side || v.live.includes(a) || !finiteEligible(ctx, a)) continue;
    expect(ranksBelow(rankOf(ctx, a), v.last!), `${what}: ${a} outranks the list`).to.equal(true);
  }
}

// ------------------------------------------------------------------ perturbations

type Expectation = { accept: true } | { accept: false; error: string; args: unknown[] };
const ACCEPT: Expectation = { accept: true };
const reject = (error: string, ...args: unknown[]): Expectation => ({ accept: false, error, args });

/** The honest pair the builder made, with its takes and the last entry's rank. */
interface Honest {
  list: string[];
  proof: ProofNode[];
  takes: bigint[];
  last: Rank;
}

interface Perturbed {
  list: string[];
  proof: ProofNode[];
  expect: Expectation;
}

/** A random integer in [0, n). */
type Pick = (n: number) => number;

interface Kind {
  name: string;
  applies: (ctx: Ctx, h: Honest) => boolean;
  build: (ctx: Ctx, h: Honest, pick: Pick) => Promise<Perturbed>;
}

const start = (n: ProofNode): number => n.position * 2 ** n.level;
const end = (n: ProofNode): number => (n.position + 1) * 2 ** n.level;
const pruned = (level: number, position: number): ProofNode => ({ level, position, open: false, members: [] });
const insertAt = <T>(xs: T[], i: number, x: T): T[] => [...xs.slice(0, i), x, ...xs.slice(i)];
const removeAt = <T>(xs: T[], i: number): T[] => [...xs.slice(0, i), ...xs.slice(i + 1)];
const replaceAt = <T>(xs: T[], i: number, ...ys: T[]): T[] => [...xs.slice(0, i), ...ys, ...xs.slice(i + 1)];
const oneOf = <T>(xs: T[], pick: Pick): T => xs[pick(xs.length)];
/** Two indices i < j below n (n >= 2). */
function twoOf(n: number, pick: Pick): [number, number] {
  const i = pick(n - 1);
  return [i, i + 1 + pick(n - 1 - i)];
}
const swapped = <T>(xs: T[], i: number, j: number): T[] => {
  const ys = [...xs];
  [ys[i], ys[j]] = [ys[j], ys[i]];
  return ys;
};

/** Open opposite-side positions other than the listed ones. */
const unlisted = (ctx: Ctx, h: Honest): string[] =>
  [...ctx.positions.entries()]
    .filter(([a, p]) => p.size !== 0n && p.isLong === ctx.side && !h.list.includes(a))
    .map(([a]) => a);
const finiteEligible = (ctx: Ctx, a: string): boolean => !rankOf(ctx, a).inf && eligible(ctx, positionOf(ctx, a));
const lowerRanked = (ctx: Ctx, h: Honest): string[] => unlisted(ctx, h).filter((a) => finiteEligible(ctx, a));
const ineligibles = (ctx: Ctx, h: Honest): string[] => unlisted(ctx, h).filter((a) => !finiteEligible(ctx, a));
const sameSide = (ctx: Ctx): string[] =>
  [...ctx.positions.entries()]
    .filter(([a, p]) => p.size !== 0n && p.isLong !== ctx.side && a !== ctx.bankrupt)
    .map(([a]) => a);
const flat = (ctx: Ctx): string[] => [...ctx.positions.entries()].filter(([, p]) => p.size === 0n).map(([a]) => a);
const covered = (ctx: Ctx, h: Honest): boolean => h.takes.reduce((s, t) => s + t, 0n) === ctx.b.size;
const indicesWhere = (proof: ProofNode[], ok: (n: ProofNode) => boolean): number[] =>
  proof.flatMap((n, i) => (ok(n) ? [i] : []));
const openedWith = (h: Honest, min: number): number[] =>
  indicesWhere(h.proof, (n) => n.open && n.members.length >= min);
const prunedAbove = (h: Honest, level: number): number[] => indicesWhere(h.proof, (n) => !n.open && n.level >= level);

/** Internal nodes the builder split: strict ancestors of its proof nodes, as [level, position]. */
function splitNodes(h: Honest): [number, number][] {
  const seen = new Set<string>();
  const out: [number, number][] = [];
  for (const n of h.proof) {
    for (let l = n.level + 1; l <= HEIGHT; l++) {
      const p = n.position >> (l - n.level);
      if (!seen.has(`${l}/${p}`)) {
        seen.add(`${l}/${p}`);
        out.push([l, p]);
      }
    }
  }
  return out;
}

/**
 * A pruned node of the honest proof and a leaf below it: if `withMembers`, preferably a node and a
 * leaf that hold a counterparty-side position; otherwise any leaf of any pruned node.
 */
function leafInPrunedNode(
  ctx: Ctx,
  h: Honest,
  pick: Pick,
  withMembers = true,
): { i: number; n: ProofNode; leaf: number } {
  const leavesIn = (n: ProofNode): number[] =>
    [...ctx.positions.values()]
      .filter((p) => p.size !== 0n && p.isLong === ctx.side && Number(p.leaf) >= start(n) && Number(p.leaf) < end(n))
      .map((p) => Number(p.leaf));
  const holding = prunedAbove(h, 0).filter((i) => leavesIn(h.proof[i]).length > 0);
  const i = oneOf(withMembers && holding.length > 0 ? holding : prunedAbove(h, 0), pick);
  const n = h.proof[i];
  const leaves = withMembers ? leavesIn(n) : [];
  return { i, n, leaf: leaves.length > 0 ? oneOf(leaves, pick) : start(n) + pick(end(n) - start(n)) };
}

/** Tiles of node (level, position) with `leaf` opened and every other part pruned, left to right. */
function expandTo(ctx: Ctx, level: number, position: number, leaf: number): ProofNode[] {
  if (level === 0) return [{ level: 0, position, open: true, members: leafMembers(ctx, position) }];
  const left = 2 * position;
  const inLeft = leaf < (left + 1) * 2 ** (level - 1);
  return inLeft
    ? [...expandTo(ctx, level - 1, left, leaf), pruned(level - 1, left + 1)]
    : [pruned(level - 1, left), ...expandTo(ctx, level - 1, left + 1, leaf)];
}

const KINDS: Kind[] = [
  {
    name: "none: the builder's pair (accepted)",
    applies: () => true,
    build: async (_, h) => ({ list: h.list, proof: h.proof, expect: ACCEPT }),
  },
  // ---------------------------------------------------------------- list, rejected
  {
    name: "list: drop an entry that is not the last",
    applies: (_, h) => h.list.length >= 2,
    build: async (_, h, pick) => {
      // The dropped entry outranks the last one, so its leaf's bound does too: the builder opened
      // that leaf, and the entry is now an unlisted, eligible member above the last live entry.
      const i = pick(h.list.length - 1);
      return { list: removeAt(h.list, i), proof: h.proof, expect: reject("AdlMemberOutranks", h.list[i]) };
    },
  },
  {
    name: "list: swap two entries",
    applies: (_, h) => h.list.length >= 2,
    build: async (_, h, pick) => {
      // Entry j moves up to i (it ranks below entry i - 1, so that passes); the entry after it,
      // which the honest order ranks above entry j, is out of order.
      const [i, j] = twoOf(h.list.length, pick);
      const list = swapped(h.list, i, j);
      return { list, proof: h.proof, expect: reject("AdlListOrder", list[i], list[i + 1]) };
    },
  },
  {
    name: "list: repeat an entry later",
    applies: () => true,
    build: async (_, h, pick) => {
      const i = pick(h.list.length);
      const j = i + 1 + pick(h.list.length - i);
      return { list: insertAt(h.list, j, h.list[i]), proof: h.proof, expect: reject("AdlEntryDuplicate", h.list[i]) };
    },
  },
  {
    name: "list: insert an ineligible opposite position (finite score)",
    applies: (ctx, h) => ineligibles(ctx, h).some((a) => !rankOf(ctx, a).inf),
    build: async (ctx, h, pick) => {
      const x = oneOf(
        ineligibles(ctx, h).filter((a) => !rankOf(ctx, a).inf),
        pick,
      );
      const list = insertAt(h.list, pick(h.list.length + 1), x);
      return { list, proof: h.proof, expect: reject("AdlEntryIneligible", x) };
    },
  },
  {
    name: "list: insert a minus-infinity opposite position",
    applies: (ctx, h) => ineligibles(ctx, h).some((a) => rankOf(ctx, a).inf),
    build: async (ctx, h, pick) => {
      const x = oneOf(
        ineligibles(ctx, h).filter((a) => rankOf(ctx, a).inf),
        pick,
      );
      const list = insertAt(h.list, pick(h.list.length + 1), x);
      return { list, proof: h.proof, expect: reject("AdlEntryNotFinite", x) };
    },
  },
  {
    name: "list: insert a lower-ranked eligible position before an entry",
    applies: (ctx, h) => lowerRanked(ctx, h).length > 0,
    build: async (ctx, h, pick) => {
      const x = oneOf(lowerRanked(ctx, h), pick);
      expect(ranksBelow(rankOf(ctx, x), h.last), "an unlisted eligible position ranks below the head").to.equal(true);
      const j = pick(h.list.length);
      return { list: insertAt(h.list, j, x), proof: h.proof, expect: reject("AdlListOrder", x, h.list[j]) };
    },
  },
  {
    name: "list: insert a same-side position",
    applies: (ctx) => sameSide(ctx).length > 0,
    build: async (ctx, h, pick) => {
      const x = oneOf(sameSide(ctx), pick);
      const list = insertAt(h.list, pick(h.list.length + 1), x);
      return { list, proof: h.proof, expect: reject("AdlEntrySameSide", x) };
    },
  },
  {
    name: "list: insert the bankrupt account",
    applies: () => true,
    build: async (ctx, h, pick) => {
      const list = insertAt(h.list, pick(h.list.length + 1), ctx.bankrupt);
      return { list, proof: h.proof, expect: reject("AdlEntryIsBankrupt", ctx.bankrupt) };
    },
  },
  {
    name: "list: append an eligible entry after the position is covered",
    applies: (ctx, h) => covered(ctx, h) && lowerRanked(ctx, h).length > 0,
    build: async (ctx, h, pick) => {
      const x = oneOf(lowerRanked(ctx, h), pick);
      return { list: [...h.list, x], proof: h.proof, expect: reject("AdlListPadded", x) };
    },
  },
  // ---------------------------------------------------------------- list, accepted
  {
    name: "list: truncate after a live entry (accepted)",
    applies: (_, h) => h.list.length >= 2,
    build: async (_, h, pick) => ({
      list: h.list.slice(0, 1 + pick(h.list.length - 1)),
      proof: h.proof,
      expect: ACCEPT,
    }),
  },
  {
    name: "list: insert an account without a position (accepted)",
    applies: (ctx) => flat(ctx).length > 0,
    build: async (ctx, h, pick) => {
      const list = insertAt(h.list, pick(h.list.length + 1), oneOf(flat(ctx), pick));
      return { list, proof: h.proof, expect: ACCEPT };
    },
  },
  // ---------------------------------------------------------------- proof, rejected
  {
    name: "proof: drop a node",
    applies: () => true,
    build: async (_, h, pick) => {
      // The last node a quarter of the time, so that both outcomes occur.
      const i = pick(4) === 0 ? h.proof.length - 1 : pick(h.proof.length);
      const next = h.proof[i + 1];
      const expectation = next
        ? reject("AdlProofGap", next.level, next.position, start(h.proof[i]))
        : reject("AdlProofIncomplete", start(h.proof[i]));
      return { list: h.list, proof: removeAt(h.proof, i), expect: expectation };
    },
  },
  {
    name: "proof: repeat a node",
    applies: () => true,
    build: async (_, h, pick) => {
      const i = pick(h.proof.length);
      const n = h.proof[i];
      return {
        list: h.list,
        proof: insertAt(h.proof, i + 1, n),
        expect: reject("AdlProofGap", n.level, n.position, end(n)),
      };
    },
  },
  {
    name: "proof: swap two nodes",
    applies: (_, h) => h.proof.length >= 2,
    build: async (_, h, pick) => {
      const [i, j] = twoOf(h.proof.length, pick);
      const b = h.proof[j];
      const proof = swapped(h.proof, i, j);
      return { list: h.list, proof, expect: reject("AdlProofGap", b.level, b.position, start(h.proof[i])) };
    },
  },
  {
    name: "proof: shift a node's position",
    applies: (_, h) => h.proof.some((n) => n.level < HEIGHT),
    build: async (_, h, pick) => {
      const i = oneOf(
        indicesWhere(h.proof, (n) => n.level < HEIGHT),
        pick,
      );
      const n = h.proof[i];
      const shifts = [n.position - 1, n.position + 1].filter((p) => p >= 0 && p < LEAVES >> n.level);
      const position = oneOf(shifts, pick);
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, { ...n, position }),
        expect: reject("AdlProofGap", n.level, position, start(n)),
      };
    },
  },
  {
    name: "proof: lower a pruned node's level (a gap)",
    applies: (_, h) => prunedAbove(h, 1).length > 0,
    build: async (ctx, h, pick) => {
      const candidates = prunedAbove(h, 1);
      const lastOne = candidates[candidates.length - 1] === h.proof.length - 1 && pick(4) === 0;
      const i = lastOne ? h.proof.length - 1 : oneOf(candidates, pick);
      const n = h.proof[i];
      const child = pruned(n.level - 1, 2 * n.position);
      const cursor = start(n) + 2 ** (n.level - 1);
      const next = h.proof[i + 1];
      const expectation = !(await prunableAt(ctx, child.level, child.position, h.last))
        ? reject("AdlNodeNotPrunable", child.level, child.position)
        : next
          ? reject("AdlProofGap", next.level, next.position, cursor)
          : reject("AdlProofIncomplete", cursor);
      return { list: h.list, proof: replaceAt(h.proof, i, child), expect: expectation };
    },
  },
  {
    name: "proof: raise a node's level (an overlap)",
    applies: (_, h) => h.proof.some((n) => n.level < HEIGHT),
    build: async (ctx, h, pick) => {
      // An opened leaf half of the time when there is one.
      const leaves = openedWith(h, 0);
      const i =
        leaves.length > 0 && pick(2) === 0
          ? oneOf(leaves, pick)
          : oneOf(
              indicesWhere(h.proof, (n) => n.level < HEIGHT),
              pick,
            );
      const n = h.proof[i];
      const up: ProofNode = { ...n, level: n.level + 1, position: n.position >> 1 };
      let expectation: Expectation;
      if (start(up) !== start(n)) expectation = reject("AdlProofGap", up.level, up.position, start(n));
      else if (up.open) expectation = reject("AdlOpenedNotLeaf", up.level, up.position);
      else if (!(await prunableAt(ctx, up.level, up.position, h.last))) {
        expectation = reject("AdlNodeNotPrunable", up.level, up.position);
      } else {
        const next = h.proof[i + 1]; // n is a left child, so its sibling's tiles follow
        expectation = reject("AdlProofGap", next.level, next.position, end(up));
      }
      return { list: h.list, proof: replaceAt(h.proof, i, up), expect: expectation };
    },
  },
  {
    name: "proof: prune an opened leaf",
    applies: (_, h) => openedWith(h, 0).length > 0,
    build: async (ctx, h, pick) => {
      const i = oneOf(openedWith(h, 0), pick);
      const n = h.proof[i];
      const ok = await prunableAt(ctx, 0, n.position, h.last);
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, pruned(0, n.position)),
        expect: ok ? ACCEPT : reject("AdlNodeNotPrunable", 0, n.position),
      };
    },
  },
  {
    name: "proof: hide an entry (drop it, prune its leaf)",
    applies: (_, h) => h.list.length >= 2,
    build: async (ctx, h, pick) => {
      // The leaf now holds a higher-ranked unlisted member: its bound reaches that member's score.
      const e = h.list[pick(h.list.length - 1)];
      const leaf = Number(positionOf(ctx, e).leaf);
      const i = h.proof.findIndex((n) => n.level === 0 && n.position === leaf);
      expect(i, "the builder opened the leaf of every listed entry").to.be.greaterThanOrEqual(0);
      expect(h.proof[i].open).to.equal(true);
      return {
        list: h.list.filter((a) => a !== e),
        proof: replaceAt(h.proof, i, pruned(0, leaf)),
        expect: reject("AdlNodeNotPrunable", 0, leaf),
      };
    },
  },
  {
    name: "proof: prune a node the builder split",
    applies: (_, h) => splitNodes(h).length > 0,
    build: async (ctx, h, pick) => {
      const [level, position] = oneOf(splitNodes(h), pick);
      const lo = position * 2 ** level;
      const hi = (position + 1) * 2 ** level;
      const first = h.proof.findIndex((n) => start(n) >= lo);
      const inside = h.proof.filter((n) => start(n) >= lo && end(n) <= hi).length;
      const proof = [...h.proof.slice(0, first), pruned(level, position), ...h.proof.slice(first + inside)];
      const ok = await prunableAt(ctx, level, position, h.last);
      return { list: h.list, proof, expect: ok ? ACCEPT : reject("AdlNodeNotPrunable", level, position) };
    },
  },
  {
    name: "proof: open an internal node",
    applies: (_, h) => prunedAbove(h, 1).length > 0,
    build: async (_, h, pick) => {
      const i = oneOf(prunedAbove(h, 1), pick);
      const n = h.proof[i];
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, { ...n, open: true }),
        expect: reject("AdlOpenedNotLeaf", n.level, n.position),
      };
    },
  },
  {
    name: "proof: name a node outside the tree",
    applies: () => true,
    build: async (_, h, pick) => {
      // The node is looked up before the cursor is compared, so the tree's range error comes first.
      const i = pick(h.proof.length);
      const n = h.proof[i];
      const beyond = pick(2) === 0;
      const node = beyond
        ? { ...n, position: (LEAVES >> n.level) + pick(4) }
        : { ...n, level: HEIGHT + 1 + pick(255 - HEIGHT) };
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, node),
        expect: beyond
          ? reject("RankTreePositionOutOfRange", node.level, node.position)
          : reject("RankTreeLevelOutOfRange", node.level),
      };
    },
  },
  {
    name: "proof: drop a member of an opened leaf",
    applies: (_, h) => openedWith(h, 1).length > 0,
    build: async (ctx, h, pick) => {
      const i = oneOf(openedWith(h, 1), pick);
      const n = h.proof[i];
      const count = (await nodeOf(ctx, 0, n.position)).count;
      expect(BigInt(n.members.length), "the builder lists every member").to.equal(count);
      const members = removeAt(n.members, pick(n.members.length));
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, { ...n, members }),
        expect: reject("AdlLeafCountMismatch", n.position, count - 1n, count),
      };
    },
  },
  {
    name: "proof: swap two members of an opened leaf",
    applies: (_, h) => openedWith(h, 2).length > 0,
    build: async (_, h, pick) => {
      const i = oneOf(openedWith(h, 2), pick);
      const n = h.proof[i];
      const [j, k] = twoOf(n.members.length, pick);
      const members = swapped(n.members, j, k);
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, { ...n, members }),
        expect: reject("AdlMembersNotAscending", members[j], members[j + 1]),
      };
    },
  },
  {
    name: "proof: repeat a member",
    applies: (_, h) => openedWith(h, 1).length > 0,
    build: async (_, h, pick) => {
      const i = oneOf(openedWith(h, 1), pick);
      const n = h.proof[i];
      const j = pick(n.members.length);
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, { ...n, members: insertAt(n.members, j + 1, n.members[j]) }),
        expect: reject("AdlMembersNotAscending", n.members[j], n.members[j]),
      };
    },
  },
  // ---------------------------------------------------------------- proof, accepted
  {
    name: "proof: split a pruned node into its children (accepted)",
    applies: (_, h) => prunedAbove(h, 1).length > 0,
    build: async (ctx, h, pick) => {
      const i = oneOf(prunedAbove(h, 1), pick);
      const n = h.proof[i];
      const [l, r] = [pruned(n.level - 1, 2 * n.position), pruned(n.level - 1, 2 * n.position + 1)];
      const [lOk, rOk] = [
        await prunableAt(ctx, l.level, l.position, h.last),
        await prunableAt(ctx, r.level, r.position, h.last),
      ];
      expect([lOk, rOk], "every node dominates its children").to.deep.equal([true, true]);
      return { list: h.list, proof: replaceAt(h.proof, i, l, r), expect: ACCEPT };
    },
  },
  {
    name: "proof: open a prunable leaf with its members (accepted)",
    applies: (_, h) => prunedAbove(h, 0).length > 0,
    build: async (ctx, h, pick) => {
      const { i, n, leaf } = leafInPrunedNode(ctx, h, pick);
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, ...expandTo(ctx, n.level, n.position, leaf)),
        expect: ACCEPT,
      };
    },
  },
  {
    name: "proof: open a prunable leaf listing no members",
    applies: (_, h) => prunedAbove(h, 0).length > 0,
    build: async (ctx, h, pick) => {
      // True only if the leaf has no member now (count 0: empty, or stale aggregates).
      const { i, n, leaf } = leafInPrunedNode(ctx, h, pick, pick(2) === 0);
      const tiles = expandTo(ctx, n.level, n.position, leaf).map((t) => (t.open ? { ...t, members: [] } : t));
      const count = (await nodeOf(ctx, 0, leaf)).count;
      return {
        list: h.list,
        proof: replaceAt(h.proof, i, ...tiles),
        expect: count === 0n ? ACCEPT : reject("AdlLeafCountMismatch", leaf, 0, count),
      };
    },
  },
  {
    name: "proof: give a pruned node members (ignored; accepted)",
    applies: (_, h) => prunedAbove(h, 0).length > 0,
    build: async (ctx, h, pick) => {
      // A pruned node's claim is about its stored record; members carry no claim there.
      const i = oneOf(prunedAbove(h, 0), pick);
      const members = [oneOf([...ctx.positions.keys()], pick)];
      return { list: h.list, proof: replaceAt(h.proof, i, { ...h.proof[i], members }), expect: ACCEPT };
    },
  },
  {
    name: "proof: add a non-member to an opened leaf, ascending (accepted)",
    applies: (_, h) => openedWith(h, 0).length > 0,
    build: async (ctx, h, pick) => {
      const i = oneOf(openedWith(h, 0), pick);
      const n = h.proof[i];
      const outsider = oneOf(
        [...ctx.positions.keys()].filter((a) => !n.members.includes(a)),
        pick,
      );
      const members = [...n.members, outsider].sort(byAddress);
      return { list: h.list, proof: replaceAt(h.proof, i, { ...n, members }), expect: ACCEPT };
    },
  },
];

// ------------------------------------------------------------------ random books (as deleverage.property.test.ts)

const shortSpec = fc.record({
  size: fc.integer({ min: 1, max: 8 }).map((n) => n / 2),
  leverage: fc.integer({ min: 2, max: 20 }).map((n) => n / 2),
  price: fc.integer({ min: 190, max: 210 }).map((n) => n * 10),
  buyBack: fc.integer({ min: 0, max: 2 }),
});

const scenario = fc.record({
  bSize: fc.integer({ min: 2, max: 8 }),
  t1Leverage: fc.integer({ min: 2, max: 10 }).map((n) => n / 2),
  shorts: fc.array(shortSpec, { minLength: 1, maxLength: 4 }),
  /**
   * Late high-leverage counterparties, entered `above` * 10 USD from the gap price on the side where
   * the gap is a gain for them, or, if `losing`, more than their margin per unit past it on the other
   * side (bankrupt at the gap: minus infinity).
   */
  late: fc.array(
    fc.record({
      leverage: fc.integer({ min: 6, max: 10 }),
      above: fc.integer({ min: 1, max: 8 }),
      losing: fc.boolean(),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  gap: fc.integer({ min: 130, max: 170 }).map((n) => n * 10),
  bShort: fc.boolean(),
  /** A twin of one counterparty (same size, price, leverage: same leaf, equal score), instead of a 2nd late entrant. */
  twin: fc.option(fc.nat({ max: 3 })),
  /** The builder's cap on entries (64: the whole head; 1 to 3: a list that may stop before B is covered). */
  maxEntries: fc.oneof(fc.constant(64), fc.integer({ min: 1, max: 3 })),
  /** Whether B is on the unsettled list before the calls. */
  reported: fc.boolean(),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

/**
 * The book of deleverage.property.test.ts (B at 10x, counterparties, unwinds, late entrants, a gap),
 * plus an optional twin so that opened leaves with several members occur.
 */
async function buildBook(s: Scenario): Promise<Fixture> {
  const f = await loadFixture(systemFixture);
  const t = f.traders;
  const [B, other] = [t[0], t[9]];
  type Signer = (typeof t)[number];
  const trade = (cp: Signer, o: Signer, size: number, price: bigint, cpLev?: bigint, oLev?: bigint) =>
    s.bShort
      ? tradeAt(f, cp, o, units(size), price, { long: cpLev, short: oLev })
      : tradeAt(f, o, cp, units(size), price, { long: oLev, short: cpLev });
  const unwind = (cp: Signer, o: Signer, size: number, price: bigint) =>
    s.bShort ? tradeAt(f, o, cp, units(size), price) : tradeAt(f, cp, o, units(size), price);
  await trade(t[1], B, s.bSize, ETH_PRICE, lev(s.t1Leverage), lev(10));
  for (const [i, sh] of s.shorts.entries()) {
    const cp = t[2 + i];
    const price = USD(sh.price);
    await trade(cp, other, sh.size, price, lev(sh.leverage), lev(2));
    if (sh.buyBack === 1 && sh.size >= 1) await unwind(cp, other, sh.size / 2, price);
    if (sh.buyBack === 2) await unwind(cp, other, sh.size, price);
  }
  if (s.twin !== null) {
    const sh = s.shorts[s.twin % s.shorts.length];
    await trade(t[7], other, sh.size, USD(sh.price), lev(sh.leverage), lev(2));
  }
  const gap = s.bShort ? 4000 - s.gap : s.gap;
  for (const [i, l] of s.late.slice(0, s.twin === null ? 2 : 1).entries()) {
    // Losing: a short below gap * lev / (lev + 1) (a long above gap * lev / (lev - 1)) loses more than
    // its margin per unit, entry / lev, at the gap.
    const past = Math.ceil(gap / (10 * (s.bShort ? l.leverage - 1 : l.leverage + 1))) + l.above;
    const away = l.losing ? -past : l.above;
    const price = USD(s.bShort ? gap - away * 10 : gap + away * 10);
    await trade(t[6 + i], t[8], 1, price, lev(l.leverage), lev(2));
  }
  await f.setPrice(ETH, USD(gap));
  if (s.reported) await f.deleverager.reportUnsettled(f.ethId, B.address);
  return f;
}

/**
 * Everything a rejected call must leave as it was: the market's positions, everyone's free
 * collateral, the market state, the fund (tokens, shares, unswept fees), the treasury and rounding
 * reserve, the tokens held, the unsettled list and both tree roots.
 */
async function stateOf(f: Fixture, id: string, accounts: string[]): Promise<unknown> {
  const [ch, del] = [f.clearinghouse, f.deleverager];
  const [unsettledAccounts, deficits] = await del.unsettled(id);
  return {
    positions: await Promise.all(accounts.map(async (a) => Array.from(await ch.getPosition(id, a)))),
    free: await Promise.all(accounts.map((a) => ch.freeCollateral(a))),
    market: Array.from(await ch.marketState(id)),
    reserve: await ch.roundingReserve(id),
    pendingFundFees: await ch.pendingFundFees(),
    treasury: await ch.treasuryBalance(),
    chTokens: await f.token.balanceOf(await ch.getAddress()),
    fundTokens: await f.token.balanceOf(await f.insuranceFund.getAddress()),
    fundShares: await f.insuranceFund.totalSupply(),
    unsettled: [Array.from(unsettledAccounts), Array.from(deficits)],
    roots: [Array.from(await del.nodeAt(id, true, HEIGHT, 0)), Array.from(await del.nodeAt(id, false, HEIGHT, 0))],
  };
}

// ------------------------------------------------------------------ the property

/** Every outcome the perturbations can have; each must occur in the run. */
const OUTCOMES = [
  "accepted",
  "AdlEntryIsBankrupt",
  "AdlEntrySameSide",
  "AdlEntryDuplicate",
  "AdlEntryNotFinite",
  "AdlEntryIneligible",
  "AdlListOrder",
  "AdlListPadded",
  "AdlProofGap",
  "AdlProofIncomplete",
  "AdlOpenedNotLeaf",
  "AdlNodeNotPrunable",
  "AdlMembersNotAscending",
  "AdlMemberOutranks",
  "AdlLeafCountMismatch",
  "RankTreeLevelOutOfRange",
  "RankTreePositionOutOfRange",
];

describe("ADL: every single perturbation of list or proof", function () {
  it("is accepted iff its claim is true; a false claim reverts with its error and moves nothing", async function () {
    // Calls per kind and outcome ("accepted" or the error name), and the shapes of the honest pairs.
    const tally = new Map<string, Map<string, number>>(KINDS.map((k) => [k.name, new Map()]));
    const count = (kind: string, outcome: string): void => {
      const t = tally.get(kind)!;
      t.set(outcome, (t.get(outcome) ?? 0) + 1);
    };
    const used = (k: Kind): number => [...tally.get(k.name)!.values()].reduce((x, y) => x + y, 0);
    const shapes = { entries: [] as number[], nodes: [] as number[], members: [] as number[], infinite: 0 };
    let books = 0;
    await fc.assert(
      fc.asyncProperty(scenario, fc.gen(), async (s, g) => {
        const pick: Pick = (n) => {
          expect(n, "a choice among none").to.be.greaterThan(0);
          return g(fc.nat, { max: n - 1 });
        };
        const f = await buildBook(s);
        const id = f.ethId;
        const bankrupt = f.traders[0].address;
        const v = await keeperPlan(f, id, bankrupt, s.maxEntries);
        expect(v.delta.deficit, "B bankrupt").to.be.greaterThan(0n);
        expect(v.available, "fund short").to.be.lessThan(v.delta.deficit);
        expect(v.available).to.equal(await fundAvailable(f));
        const accounts = [...f.traders.map((t) => t.address), f.keeper.address];
        const positions = new Map<string, Pos>();
        for (const a of accounts) positions.set(a, await pos(f, id, a));
        const b = positions.get(bankrupt)!;
        // delta from docs/mechanism.md section 3 step 1, independently of lib/adl.ts.
        const xb = xOf(b.isLong, b.entry, v.price, v.funding);
        const pnl = b.size * xb;
        const deficit = -(b.margin + (pnl >= 0n || pnl % W === 0n ? pnl / W : pnl / W - 1n));
        const cover = v.available < deficit ? v.available : deficit;
        const delta = (deficit * W + b.size - 1n) / b.size - (cover * W) / b.size;
        expect(delta).to.equal(v.delta.delta);
        const ctx: Ctx = {
          f,
          id,
          bankrupt,
          b,
          side: !b.isLong,
          price: v.price,
          funding: v.funding,
          delta,
          positions,
          nodes: new Map(),
        };
        const { counterparties: list, proof, takes } = v.plan;
        const honest: Honest = { list, proof, takes, last: rankOf(ctx, list[list.length - 1]) };
        const baseline = await stateOf(f, id, accounts);
        const verdict = await judge(ctx, list, proof);
        expect(verdict.holds, `the builder's pair is true (${verdict.reason})`).to.equal(true);
        expectHead(ctx, verdict, "the builder's pair");
        shapes.entries.push(list.length);
        shapes.nodes.push(proof.length);
        shapes.members.push(Math.max(0, ...proof.map((n) => n.members.length)));
        shapes.infinite += ineligibles(ctx, honest).some((a) => rankOf(ctx, a).inf) ? 1 : 0;

        // PER_BOOK applicable kinds, the least exercised so far first (ties in random order), each
        // applied alone to the honest pair.
        const kinds = KINDS.filter((k) => k.applies(ctx, honest))
          .map((k) => ({ k, key: g(fc.nat) }))
          .sort((x, y) => used(x.k) - used(y.k) || x.key - y.key)
          .slice(0, PER_BOOK)
          .map((x) => x.k);
        for (const kind of kinds) {
          const p = await kind.build(ctx, honest, pick);
          const claim = await judge(ctx, p.list, p.proof);
          const what = `${kind.name}: list ${JSON.stringify(p.list)}`;
          expect(claim.holds, `${what}: the claim (${claim.reason || "true"}) against the derivation`).to.equal(
            p.expect.accept,
          );
          if (p.expect.accept) {
            expectHead(ctx, claim, what);
            const snap = await takeSnapshot();
            await deleverageExactly(f, id, bankrupt, p.list, p.proof);
            await snap.restore();
            expect(await stateOf(f, id, accounts), `${what}: restored`).to.deep.equal(baseline);
            count(kind.name, "accepted");
          } else {
            await expect(f.deleverager.connect(f.keeper).deleverage(id, bankrupt, p.list, p.proof), what)
              .to.be.revertedWithCustomError(f.deleverager, p.expect.error)
              .withArgs(...p.expect.args);
            expect(await stateOf(f, id, accounts), `${what}: state unchanged`).to.deep.equal(baseline);
            count(kind.name, p.expect.error);
          }
        }
        books++;
      }),
      { seed: SEED, numRuns: BOOKS, endOnFailure: true },
    );
    expect(books).to.equal(BOOKS);
    for (const k of KINDS) expect(used(k), `${k.name} was exercised`).to.be.greaterThan(0);
    const seen = new Set([...tally.values()].flatMap((t) => [...t.keys()]));
    for (const outcome of OUTCOMES) expect(seen.has(outcome), `${outcome} occurred`).to.equal(true);
    // The hard shapes the generator is built to reach must occur, or the kinds above ran on easy books only.
    expect(shapes.infinite, "a book with a minus-infinity counterparty").to.be.greaterThan(0);
    expect(Math.max(...shapes.members), "an opened leaf with two or more members").to.be.at.least(2);
    const calls = KINDS.reduce((n, k) => n + used(k), 0);
    const range = (xs: number[]): string => `${Math.min(...xs)}-${Math.max(...xs)}`;
    console.log(
      `      seed ${SEED}: ${books} books (entries ${range(shapes.entries)}, proof nodes ${range(shapes.nodes)}, ` +
        `members per opened leaf up to ${Math.max(...shapes.members)}, ${shapes.infinite} with a minus-infinity ` +
        `counterparty), ${calls} calls`,
    );
    for (const [name, t] of tally) {
      console.log(`        ${name}: ${[...t.entries()].map(([o, n]) => `${o} ${n}`).join(", ")}`);
    }
  });
});
