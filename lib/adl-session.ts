/**
 * Multi-transaction ADL sessions (docs/mechanism.md section 4), keeper side: a completeness proof that tiles
 * the leaves from any cursor, its split into continue transactions within a gas budget (a big leaf
 * split across transactions in ascending address chunks), a pure decision of the next session step,
 * and a driver that opens, continues and finishes a session and restarts it when it expires or is
 * challenged. Amounts are bigints; gas figures are plain numbers (they never hold money).
 */
import type { AutoDeleverager } from "../typechain-types";
import { type PositionBook, type ProofNode, planDeleverage } from "./adl";
import { HEIGHT, LEAVES } from "./rank-tree";
import { keyCovers, nodeBound } from "./score";

/** An open session as the `adlSession` view returns it (id 0n: none). */
export interface SessionState {
  id: bigint;
  bankrupt: string;
  openedAt: bigint;
  deadline: bigint;
  cursor: number;
  held: boolean;
  heldLast: string;
  heldTally: bigint;
  /** The account holding the split leaf: alone allowed to continue or restart it until `holdUntil`. */
  holder: string;
  holdUntil: bigint;
  price: bigint;
  funding: bigint;
  sigma: bigint;
  delta: bigint;
  lastScore: bigint;
  lastAccount: string;
  reserveTokens: bigint;
  /** The account that opened the session and posted its bond (zero address: no bond). */
  opener: string;
  /** Collateral tokens posted as the bond: back to the opener at finish or expiry, to a challenger. */
  bondTokens: bigint;
  entries: string[];
}

/** Reads the session on (marketId, side) through the deleverager's view. */
export async function readSession(
  deleverager: AutoDeleverager,
  marketId: string,
  side: boolean,
  blockTag?: string,
): Promise<SessionState> {
  const s = await deleverager.adlSession(marketId, side, blockTag ? { blockTag } : {});
  return {
    id: s.id,
    bankrupt: s.bankrupt,
    openedAt: s.openedAt,
    deadline: s.deadline,
    cursor: Number(s.cursor),
    held: s.held,
    heldLast: s.heldLast,
    heldTally: s.heldTally,
    holder: s.holder,
    holdUntil: s.holdUntil,
    price: s.price,
    funding: s.funding,
    sigma: s.sigma,
    delta: s.delta,
    lastScore: s.lastScore,
    lastAccount: s.lastAccount,
    reserveTokens: s.reserveTokens,
    opener: s.opener,
    bondTokens: s.bondTokens,
    entries: [...s.listed],
  };
}

const above = (a: string, b: string): boolean => BigInt(a) > BigInt(b);

/**
 * Pass as `heldLast` to list a held leaf from its first member: the contract restarts a held leaf
 * whose first listed member is at or below its last address (its holder at any time, anyone once the
 * hold lapsed), which recovers from a chunk that skipped a member.
 */
export const RESTART_HELD = "0x0000000000000000000000000000000000000000";

/**
 * The proof nodes that tile leaves [cursor, LEAVES) at the session's pinned values, top-down and left
 * to right like buildProof: a node wholly at or after the cursor is pruned (empty, wholly ineligible,
 * or bounded strictly below `lastScore`) or split, a leaf opened with its members ascending; a node
 * straddling the cursor is split. With `heldLast`, the leaf at the cursor lists only the members above
 * it (the rest of a leaf split across calls); `heldLast` = the zero address lists the whole held leaf
 * again, which the contract takes as a restart of it (see RESTART_HELD).
 */
export function buildProofFrom(
  book: PositionBook,
  marketId: string,
  side: boolean,
  pinned: { price: bigint; funding: bigint; delta: bigint; lastScore: bigint },
  cursor: number,
  heldLast?: string,
): ProofNode[] {
  const tree = book.tree(marketId, side);
  const proof: ProofNode[] = [];
  const visit = (level: number, position: number): void => {
    const first = position << level;
    const end = (position + 1) << level;
    if (end <= cursor) return;
    if (first < cursor) {
      visit(level - 1, 2 * position);
      visit(level - 1, 2 * position + 1);
      return;
    }
    const n = tree.nodeAt(level, position);
    const resuming = heldLast !== undefined && level === 0 && position === cursor;
    const prunable =
      n.maxA === 0n ||
      !keyCovers(side, n.maxE, pinned.price, pinned.funding, pinned.delta) ||
      nodeBound(n.maxA, n.bestK, side, pinned.price, pinned.funding) < pinned.lastScore;
    if (prunable && !resuming) {
      proof.push({ level, position, open: false, members: [] });
    } else if (level === 0) {
      let members = book.leafMembers(marketId, side, position).map((p) => p.account);
      if (resuming) members = members.filter((m) => above(m, heldLast!));
      proof.push({ level, position, open: true, members });
    } else {
      visit(level - 1, 2 * position);
      visit(level - 1, 2 * position + 1);
    }
  };
  if (cursor < LEAVES) visit(HEIGHT, 0);
  return proof;
}

/** Gas of one continueAdlSession call: base + per node + per opened member (see docs/gas.md). */
export interface ContinueGasModel {
  base: number;
  perNode: number;
  perMember: number;
}

/**
 * From `npm run bench:adl` (sessions block of docs/gas.md: gas = 210,129 + 13,190 per opened member
 * over three continue transactions of 667 to 1,202 members, each paying its members from the keeper
 * reserve), rounded up: intrinsic cost, session bookkeeping and the pay, one cold node read and
 * check, one opened member (calldata, a cold position read, the score and a mark lookup).
 */
export const DEFAULT_CONTINUE_GAS: ContinueGasModel = { base: 215_000, perNode: 10_000, perMember: 13_500 };

/** What one continue transaction may hold: a gas budget and the contract's work bounds. */
export interface SplitLimits {
  gasBudget: number;
  maxProofNodes: number;
  maxOpenedMembers: number;
  model?: ContinueGasModel;
}

/**
 * Splits a proof (tiles in order) into continue transactions, each within the gas budget and the
 * contract's bounds. A leaf whose members do not fit is split into ascending chunks: a chunk is the
 * last node of its transaction and the next transaction resumes the same leaf with the members after
 * it (the contract holds the leaf and its tally in between). A first chunk that would list fewer than
 * a quarter of maxOpenedMembers moves to the next transaction when a transaction of its own can list
 * that many, so the keeper's chunks that leave a leaf held earn it the hold whenever the bounds allow.
 */
export function splitProof(proof: ProofNode[], limits: SplitLimits): ProofNode[][] {
  const model = limits.model ?? DEFAULT_CONTINUE_GAS;
  const txs: ProofNode[][] = [];
  let cur: ProofNode[] = [];
  let gas = model.base;
  let members = 0;
  const close = (): void => {
    if (cur.length > 0) txs.push(cur);
    cur = [];
    gas = model.base;
    members = 0;
  };
  const roomNodes = (): boolean => cur.length < limits.maxProofNodes && gas + model.perNode <= limits.gasBudget;
  const roomMembers = (): number =>
    Math.max(
      0,
      Math.min(
        limits.maxOpenedMembers - members,
        Math.floor((limits.gasBudget - gas - model.perNode) / model.perMember),
      ),
    );
  if (model.base + model.perNode + model.perMember > limits.gasBudget) {
    throw new RangeError(`gas budget ${limits.gasBudget} below one node with one member`);
  }
  /** Members one node opened alone in a transaction may list. */
  const freshFit = Math.min(
    limits.maxOpenedMembers,
    Math.floor((limits.gasBudget - model.base - model.perNode) / model.perMember),
  );
  for (const node of proof) {
    if (!node.open) {
      if (!roomNodes()) close();
      cur.push(node);
      gas += model.perNode;
      continue;
    }
    let rest = node.members;
    for (;;) {
      if (!roomNodes()) close();
      const fit = roomMembers();
      if (fit >= rest.length) {
        cur.push({ ...node, members: rest });
        gas += model.perNode + model.perMember * rest.length;
        members += rest.length;
        break;
      }
      if (fit === 0) {
        close();
        continue;
      }
      // A chunk that leaves its leaf held reserves it for its sender only if it lists at least a
      // quarter of maxOpenedMembers (the contract's progress rule): when a transaction of its own
      // would reach that and this one does not, the leaf starts the next transaction instead.
      if (fit * 4 < limits.maxOpenedMembers && freshFit * 4 >= limits.maxOpenedMembers && cur.length > 0) {
        close();
        continue;
      }
      cur.push({ ...node, members: rest.slice(0, fit) });
      rest = rest.slice(fit);
      close();
    }
  }
  close();
  return txs;
}

/** The next step of a session for a keeper that wants `bankrupt` settled. */
export type SessionStep =
  | { kind: "open" }
  | { kind: "continue"; restart?: boolean }
  | { kind: "hold"; holder: string; until: bigint }
  | { kind: "finish" }
  | { kind: "expire" }
  | { kind: "wait"; reason: string };

/**
 * Pure decision: open when no session is open on the side; expire one past its deadline; wait while
 * another position's session holds the side; continue until the cursor reaches the last leaf with no
 * leaf held; then finish. A leaf held by another account (`me` is the sender) is waited for until its
 * hold lapses, then restarted from its first member (the other holder may have skipped one).
 */
export function nextSessionStep(s: SessionState, bankrupt: string, now: bigint, me?: string): SessionStep {
  if (s.id === 0n) return { kind: "open" };
  if (now > s.deadline) return { kind: "expire" };
  if (s.bankrupt.toLowerCase() !== bankrupt.toLowerCase()) {
    return { kind: "wait", reason: `side held by a session for ${s.bankrupt}` };
  }
  if (s.held) {
    const holder = s.holder ?? RESTART_HELD;
    const foreign = holder !== RESTART_HELD && holder.toLowerCase() !== (me ?? "").toLowerCase();
    if (foreign && now <= (s.holdUntil ?? 0n)) return { kind: "hold", holder, until: s.holdUntil };
    return foreign ? { kind: "continue", restart: true } : { kind: "continue" };
  }
  if (s.cursor < LEAVES) return { kind: "continue" };
  return { kind: "finish" };
}

/** Swappable parts of the driver: the book, the clock, and how a transaction is sent. */
export interface SessionDriverDeps {
  deleverager: AutoDeleverager;
  /** The book synced to the latest block. */
  book(): Promise<PositionBook>;
  /** (P, F, what the fund can pay) for the block the next transaction lands in. */
  market(): Promise<{ price: bigint; funding: bigint; delta: bigint }>;
  /** Timestamp of the block the next transaction lands in. */
  now(): Promise<bigint>;
  /** Simulates, then sends; resolves with the gas used, rejects on revert. */
  send(method: "open" | "continue" | "finish" | "expire", args: unknown[]): Promise<bigint>;
  /** Structured log line with a stable event name. */
  log?(event: string, fields: Record<string, unknown>): void;
  /** The sending account (default: the deleverager's signer), to tell its own held leaf from another's. */
  account?: string;
  /** Waits until the chain's time passes `timestamp` (a leaf held by another account); without it the
   * driver stops with an error instead of waiting. */
  waitUntil?(timestamp: bigint): Promise<void>;
}

/** What a driver run did. */
export interface SessionRunReport {
  settled: boolean;
  sessions: number;
  transactions: { method: string; gasUsed: bigint }[];
  restarts: { reason: string }[];
}

/** Driver options: per-transaction limits, retry and restart caps. */
export interface SessionDriverOptions {
  limits: SplitLimits;
  maxEntries?: number;
  maxRestarts?: number;
  maxRebuilds?: number;
}

/**
 * Drives one bankrupt position's session from open to finish: opens with the queue head at the
 * next block's (P, F), continues from the stored cursor with proofs rebuilt against the latest book
 * (a failed continue means the book moved: rebuild and retry, up to `maxRebuilds`), finishes, and
 * opens again after an expiry or a challenge (up to `maxRestarts`).
 */
export async function driveSession(
  deps: SessionDriverDeps,
  marketId: string,
  bankrupt: string,
  opts: SessionDriverOptions,
): Promise<SessionRunReport> {
  const report: SessionRunReport = { settled: false, sessions: 0, transactions: [], restarts: [] };
  const log = deps.log ?? ((): void => undefined);
  const maxRestarts = opts.maxRestarts ?? 3;
  const maxRebuilds = opts.maxRebuilds ?? 5;
  const b = (await deps.book()).position(marketId, bankrupt);
  if (b.size === 0n) throw new Error(`${bankrupt} has no position in ${marketId}`);
  const side = !b.isLong;
  let sessionId = 0n;
  let rebuilds = 0;
  let restartHeld = false; // the last resume of a held leaf failed: list it from its first member
  const runner = deps.deleverager.runner as { getAddress?: () => Promise<string> } | null;
  const me = deps.account ?? (typeof runner?.getAddress === "function" ? await runner.getAddress() : undefined);
  const send = async (method: "open" | "continue" | "finish" | "expire", args: unknown[]): Promise<void> => {
    const gasUsed = await deps.send(method, args);
    report.transactions.push({ method, gasUsed });
    log(`adl_session_${method}`, { marketId, bankrupt, gasUsed: gasUsed.toString() });
  };
  for (;;) {
    const s = await readSession(deps.deleverager, marketId, side);
    if (sessionId !== 0n && s.id !== sessionId) {
      // Ours ended without our finish: challenged (or expired and cleared by someone else).
      report.restarts.push({ reason: `session ${sessionId} ended early` });
      log("adl_session_restart", { marketId, bankrupt, sessionId: sessionId.toString() });
      sessionId = 0n;
      if (report.restarts.length > maxRestarts) return report;
      continue;
    }
    const step = nextSessionStep(s, bankrupt, await deps.now(), me);
    if (step.kind === "wait") throw new Error(step.reason);
    if (step.kind === "hold") {
      log("adl_session_hold_wait", { marketId, bankrupt, holder: step.holder, until: step.until.toString() });
      if (!deps.waitUntil) throw new Error(`leaf ${s.cursor} held by ${step.holder} until ${step.until}`);
      await deps.waitUntil(step.until);
      continue;
    }
    if (step.kind === "expire") {
      await send("expire", [marketId, side]);
      if (s.id === sessionId) {
        report.restarts.push({ reason: `session ${sessionId} expired` });
        sessionId = 0n;
        if (report.restarts.length > maxRestarts) return report;
      }
      continue;
    }
    if (step.kind === "open") {
      const book = await deps.book();
      const { price, funding, delta } = await deps.market();
      if (book.position(marketId, bankrupt).size === 0n || delta === 0n) {
        report.settled = true;
        return report;
      }
      const plan = planDeleverage(book, marketId, bankrupt, price, funding, delta, opts.maxEntries ?? 64);
      if (!plan) throw new Error(`no eligible counterparty for ${bankrupt}`);
      await send("open", [marketId, bankrupt, plan.counterparties]);
      sessionId = (await readSession(deps.deleverager, marketId, side)).id;
      report.sessions += 1;
      continue;
    }
    if (step.kind === "finish") {
      await send("finish", [marketId, side]);
      const after = (await deps.book()).position(marketId, bankrupt);
      report.settled = after.size === 0n;
      if (report.settled) return report;
      sessionId = 0n; // partly settled (a short list): the next session takes the rest
      continue;
    }
    // continue: rebuild from the stored cursor against the latest book, send the first chunk.
    const book = await deps.book();
    const restart = s.held && (step.restart === true || restartHeld);
    const heldLast = s.held ? (restart ? RESTART_HELD : s.heldLast) : undefined;
    const proof = buildProofFrom(book, marketId, side, s, s.cursor, heldLast);
    const [first] = splitProof(proof, opts.limits);
    try {
      await send("continue", [marketId, side, first ?? []]);
      rebuilds = 0;
      restartHeld = false;
    } catch (err) {
      rebuilds += 1;
      restartHeld = s.held;
      log("adl_session_rebuild", { marketId, bankrupt, cursor: s.cursor, error: String(err) });
      if (rebuilds > maxRebuilds) throw err;
    }
  }
}

/** SessionDriverDeps.send over the deleverager with a signer: staticCall first, then the transaction. */
export function contractSender(deleverager: AutoDeleverager): SessionDriverDeps["send"] {
  return async (method, args) => {
    const fn = {
      open: deleverager.openAdlSession,
      continue: deleverager.continueAdlSession,
      finish: deleverager.finishAdlSession,
      expire: deleverager.expireAdlSession,
    }[method] as unknown as {
      staticCall(...a: unknown[]): Promise<unknown>;
      send(...a: unknown[]): Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>;
    };
    await fn.staticCall(...args);
    const receipt = await (await fn.send(...args)).wait();
    return receipt?.gasUsed ?? 0n;
  };
}

/**
 * The member lists of a leaf refresh split across calls (`refreshLeafChunk`): the leaf's current
 * members from the book, ascending, in chunks of at most `maxMembers`. Send them in order; if one
 * reports a count the book does not expect (a member below the last address changed, which cancels
 * the refresh), rebuild from a fresh book and start again.
 */
export function refreshChunks(
  book: PositionBook,
  marketId: string,
  side: boolean,
  leaf: number,
  maxMembers: number,
): string[][] {
  if (maxMembers < 1) throw new RangeError("maxMembers must be positive");
  const members = book.leafMembers(marketId, side, leaf).map((p) => p.account);
  const chunks: string[][] = [];
  for (let i = 0; i < members.length; i += maxMembers) chunks.push(members.slice(i, i + maxMembers));
  return chunks.length > 0 ? chunks : [[]];
}
