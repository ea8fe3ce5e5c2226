/**
 * ADL sessions on an adversarial book (docs/mechanism.md section 4): attackers park, in every leaf near the
 * head that admits it, an ineligible high scorer (so the leaf cannot be pruned) and many cheap eligible
 * low scorers (so every one of them must be listed when the leaf is opened). One deleverage call then
 * exceeds the per-transaction gas cap; a session settles it over several continue transactions within
 * the cap. Measured: the gas of each continue transaction, how many are needed, a linear fit of a
 * continue's gas (base + per opened member), and the margin an attacker locks per extra transaction
 * it forces. Called from scripts/bench-adl.ts; writes the `sessions` key of bench/adl-gas.json and
 * its own block of docs/gas.md.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { ethers } from "hardhat";
import type { Wallet } from "ethers";
import { deployLocalSystem, type LocalSystem } from "../../lib/local";
import { PositionBook, adlDelta, buildDeleverage, type ProofNode } from "../../lib/adl";
import { buildProofFrom, readSession, splitProof, type ContinueGasModel } from "../../lib/adl-session";
import { leafOf } from "../../lib/rank-tree";
import { isEligible, positionScore } from "../../lib/score";
import { leverageUp } from "../../lib/position";
import { WAD, mulDivUp } from "../../lib/math";
import {
  SCALE,
  TX_GAS_CAP,
  depositFor,
  estimate,
  fundAdmin,
  logUniform,
  prng,
  wad,
  openAgainstWhale,
  send,
  setPrice,
  traderWallet,
  type PositionSpec,
  type Venue,
} from "./chain";

/** The price at the calls. */
const PRICE = 2000n * WAD;
/** The bankrupt long: 50x from 2,170 (about 127 per unit at 2,000), so high scorers can be ineligible. */
const BANKRUPT_ENTRY = 2170n * WAD;
const BANKRUPT_LEVERAGE = 50n * WAD;
const PENDING = { blockTag: "pending" } as const;
export const SESSIONS_BEGIN = "<!-- adl-sessions:begin -->";
export const SESSIONS_END = "<!-- adl-sessions:end -->";

/** One continue transaction of the measured session. */
export interface ContinueTx {
  nodes: number;
  openedMembers: number;
  gas: number;
}

/** What the session benchmark measured. */
export interface SessionBench {
  attackerPositions: number;
  attackableLeaves: number;
  attackerMarginUsd: number;
  /** Margin of one cheap eligible low scorer (what each extra opened member costs the attacker). */
  marginPerMemberUsd: number;
  singleCallGas: number | null;
  singleCallStatus: "ok" | "over-cap";
  openGas: number;
  continues: ContinueTx[];
  finishGas: number;
  /** Linear fit over the continue transactions: gas = base + perMember * openedMembers. */
  fit: { base: number; perMember: number };
  /** Opened members one continue fits under the cap, by the fit. */
  membersPerTx: number;
  /** Attacker margin that forces one more continue transaction: membersPerTx * marginPerMember. */
  marginPerExtraTxUsd: number;
  gasBudget: number;
}

const log = (msg: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const usd = (v: bigint): number => Math.round(Number(v) / 1e16) / 100;

async function context(sys: LocalSystem, id: string, bankrupt: string) {
  const latest = await ethers.provider.getBlockNumber();
  const book = await PositionBook.fromEvents(sys.clearinghouse, sys.deleverager, 0, latest, 20_000);
  const [price] = await sys.oracle.getPrice(id, true, PENDING);
  const funding = await sys.lens.currentFunding(id, PENDING);
  const available = (await sys.insuranceFund.available()) * SCALE + (await sys.clearinghouse.pendingFundFees());
  const d = adlDelta(book, id, bankrupt, price, funding, available);
  return { book, price, funding, delta: d.delta };
}

/**
 * Builds the adversarial book on top of whatever `v` already holds, runs one session to the end and
 * reports. `attackers` low scorers are placed (default 3,000: about three continue transactions).
 */
export async function measureSessions(
  sys: LocalSystem,
  v: Venue,
  keeper: string,
  attackers = Number(process.env.ADL_BENCH_SESSION_ATTACKERS ?? 3000),
): Promise<SessionBench> {
  const id = v.marketId;
  const del = await sys.deleverager.getAddress();
  const b: Wallet = traderWallet("session-bankrupt", 0);
  await openAgainstWhale(
    v,
    [{ wallet: b, isLong: true, size: 100n * WAD, price: BANKRUPT_ENTRY, leverage: BANKRUPT_LEVERAGE }],
    0n,
  );
  await setPrice(v, PRICE);
  const ctx = await context(sys, id, b.address);
  const honest = buildDeleverage(ctx.book, id, b.address, ctx.price, ctx.funding, ctx.delta, 5);
  const lastScore = honest.scores[honest.scores.length - 1];
  const kRef = Number(await sys.deleverager.kRef(id));
  // Per leaf near the head: an ineligible scorer above the last entry and the cheapest eligible
  // scorer below it (entries on a 1-dollar grid above the price, leverage 5x-100x).
  type Cand = { price: bigint; leverage: bigint; size: bigint; score: bigint; margin: bigint };
  const leaves = new Map<number, { hi?: Cand; lo?: Cand }>();
  for (let dollars = 2001; dollars <= 2400; dollars++) {
    const price = BigInt(dollars) * WAD;
    const size = mulDivUp(12n * WAD, WAD, price);
    for (let l = 500; l <= 10_000; l += 50) {
      const leverage = (BigInt(l) * WAD) / 100n;
      const margin = mulDivUp(size, price, leverage);
      const a = leverageUp(size, margin);
      const s = positionScore(false, a, price, ctx.price, ctx.funding);
      if (s.minusInf) continue;
      const leaf = leafOf(a, price, kRef);
      const eligible = isEligible(false, a, price, ctx.price, ctx.funding, ctx.delta);
      const c: Cand = { price, leverage, size, score: s.value, margin };
      const slot = leaves.get(leaf) ?? {};
      if (!eligible && s.value > lastScore && (!slot.hi || c.score > slot.hi.score)) slot.hi = c;
      if (eligible && s.value < lastScore && (!slot.lo || c.margin < slot.lo.margin)) slot.lo = c;
      leaves.set(leaf, slot);
    }
  }
  const targets = [...leaves.values()].filter((s) => s.hi && s.lo);
  if (targets.length === 0) throw new Error("no leaf admits both an ineligible high scorer and an eligible low one");
  const specs: PositionSpec[] = [];
  let n = 0;
  for (const t of targets) specs.push({ wallet: traderWallet("session-attacker", n++), isLong: false, ...t.hi! });
  for (let j = 0; j < attackers; j++) {
    specs.push({ wallet: traderWallet("session-attacker", n++), isLong: false, ...targets[j % targets.length].lo! });
  }
  log(`sessions: ${targets.length} attackable leaves, opening ${specs.length} attacker positions`);
  await depositFor(
    v,
    v.whale.address,
    specs.reduce((t, s) => t + (s.size * s.price) / WAD, 0n),
  );
  await openAgainstWhale(v, specs, 0n, (done) => log(`sessions: ${done} / ${specs.length}`), 1000);
  await setPrice(v, PRICE);
  const c = await context(sys, id, b.address);
  const plan = buildDeleverage(c.book, id, b.address, c.price, c.funding, c.delta, 5);
  if (plan.counterparties.join() !== honest.counterparties.join()) throw new Error("attackers changed the head");
  const attackerSet = new Set(specs.map((s) => s.wallet.address));
  const attackerMargin = c.book
    .positions(id)
    .filter((p) => attackerSet.has(p.account))
    .reduce((t, p) => t + p.margin, 0n);
  // The low scorers' average margin: what each extra opened member costs the attacker.
  const lows = specs.slice(targets.length);
  const loMargin = lows.reduce((t, s) => t + mulDivUp(s.size, s.price, s.leverage), 0n) / BigInt(lows.length);

  // One deleverage call with the whole proof: estimated only.
  const single = await estimate(
    keeper,
    del,
    sys.deleverager.interface.encodeFunctionData("deleverage", [id, b.address, plan.counterparties, plan.proof]),
  );
  const singleCallGas = single.gas === undefined ? null : Number(single.gas);
  const singleCallStatus = single.gas !== undefined && single.gas <= TX_GAS_CAP ? "ok" : "over-cap";
  log(`sessions: one deleverage call ${singleCallGas ?? "over the block limit"} gas (${singleCallStatus})`);

  const tx = async (data: string): Promise<number> => {
    const r = await send(keeper, del, data, TX_GAS_CAP);
    if (r.status !== 1) throw new Error("session transaction failed");
    return Number(r.gasUsed);
  };
  const iface = sys.deleverager.interface;
  // A keeper reserve that pays every continue its memberPay (the market's fees are zero here).
  const reserveTokens = 100_000n * 10n ** 6n;
  await (await sys.token.mint(v.admin, reserveTokens)).wait();
  await (await sys.token.approve(await sys.clearinghouse.getAddress(), reserveTokens)).wait();
  await (await sys.clearinghouse.fundKeeperReserve(id, reserveTokens)).wait();
  // The opener posts the market's session bond (sessionTerms, in collateral tokens rounded up).
  const [bond] = await sys.deleverager.sessionTerms(id);
  const bondTokens = mulDivUp(bond, 1n, await sys.clearinghouse.collateralScale());
  await (await sys.token.mint(keeper, bondTokens)).wait();
  await send(
    keeper,
    await sys.token.getAddress(),
    sys.token.interface.encodeFunctionData("approve", [del, bondTokens]),
    TX_GAS_CAP,
  );
  const openGas = await tx(iface.encodeFunctionData("openAdlSession", [id, b.address, plan.counterparties]));
  const side = false;
  const bounds = {
    maxProofNodes: Number(await sys.deleverager.maxProofNodes()),
    maxOpenedMembers: Number(await sys.deleverager.maxOpenedMembers()),
  };
  // A conservative model for the split, then calibrated from the first transaction's receipt.
  let model: ContinueGasModel = { base: 120_000, perNode: 12_000, perMember: 14_000 };
  const continues: ContinueTx[] = [];
  for (;;) {
    const s = await readSession(sys.deleverager, id, side);
    if (s.cursor >= 1 << 14 && !s.held) break;
    const latest = await ethers.provider.getBlockNumber();
    const book = await PositionBook.fromEvents(sys.clearinghouse, sys.deleverager, 0, latest, 20_000);
    const proof = buildProofFrom(book, id, side, s, s.cursor, s.held ? s.heldLast : undefined);
    // 3% below the cap: the model is linear and calibrated on one receipt.
    const [first] = splitProof(proof, { gasBudget: Math.floor(Number(TX_GAS_CAP) * 0.97), ...bounds, model });
    const gas = await tx(iface.encodeFunctionData("continueAdlSession", [id, side, first as ProofNode[]]));
    const members = first.reduce((t, x) => t + x.members.length, 0);
    continues.push({ nodes: first.length, openedMembers: members, gas });
    log(`sessions: continue ${continues.length}: ${first.length} nodes, ${members} members, ${gas} gas`);
    if (gas > Number(TX_GAS_CAP)) throw new Error("a continue transaction exceeded the cap");
    if (continues.length === 1 && members > 0) {
      model = { ...model, perMember: Math.ceil(((gas - model.base - model.perNode * first.length) / members) * 1.02) };
    }
    if (continues.length > 50) throw new Error("session did not converge");
  }
  const finishGas = await tx(iface.encodeFunctionData("finishAdlSession", [id, side]));
  const after = await sys.clearinghouse.getPosition(id, b.address);
  log(`sessions: finish ${finishGas} gas; bankrupt size left ${after.size}`);

  // gas = base + perMember * members over the continue transactions (least squares).
  const xs = continues.map((t) => t.openedMembers);
  const ys = continues.map((t) => t.gas);
  const mean = (a: number[]): number => a.reduce((s, x) => s + x, 0) / a.length;
  const [mx, my] = [mean(xs), mean(ys)];
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const perMember =
    sxx === 0 ? (my - 100_000) / Math.max(mx, 1) : xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / sxx;
  const base = my - perMember * mx;
  const membersPerTx = Math.floor((Number(TX_GAS_CAP) - base) / perMember);
  return {
    attackerPositions: specs.length,
    attackableLeaves: targets.length,
    attackerMarginUsd: usd(attackerMargin),
    marginPerMemberUsd: usd(loMargin),
    singleCallGas,
    singleCallStatus,
    openGas,
    continues,
    finishGas,
    fit: { base: Math.round(base), perMember: Math.round(perMember) },
    membersPerTx,
    marginPerExtraTxUsd: Math.round(usd(loMargin) * membersPerTx),
    gasBudget: Number(TX_GAS_CAP),
  };
}

/** The docs/gas.md block for `r`. */
export function renderSessions(r: SessionBench): string {
  const lines = [
    "### ADL sessions on an adversarial book",
    "",
    `Attackers park, in each of the ${r.attackableLeaves} leaves near the head that admit it, one ineligible ` +
      `high scorer (the leaf cannot be pruned) and cheap eligible low scorers (each must be listed when the ` +
      `leaf is opened): ${r.attackerPositions} positions, ${r.attackerMarginUsd} quote units of margin in all. ` +
      `One deleverage call with the whole proof: ${r.singleCallGas === null ? "over the block gas limit" : `${r.singleCallGas.toLocaleString("en-US")} gas`} ` +
      `(${r.singleCallStatus === "over-cap" ? "over" : "within"} the ${r.gasBudget.toLocaleString("en-US")} per-transaction cap). ` +
      `A session settles it with every transaction within the cap:`,
    "",
    "| transaction | proof nodes | opened members | gas |",
    "| --- | ---: | ---: | ---: |",
    `| open (list of 5) | - | - | ${r.openGas.toLocaleString("en-US")} |`,
    ...r.continues.map(
      (t, i) => `| continue ${i + 1} | ${t.nodes} | ${t.openedMembers} | ${t.gas.toLocaleString("en-US")} |`,
    ),
    `| finish | - | - | ${r.finishGas.toLocaleString("en-US")} |`,
    "",
    `Fit over the continue transactions: gas = ${r.fit.base.toLocaleString("en-US")} + ` +
      `${r.fit.perMember.toLocaleString("en-US")} per opened member, so one continue verifies about ` +
      `${r.membersPerTx.toLocaleString("en-US")} members under the cap. Each extra member costs the attacker one ` +
      `low scorer's margin (${r.marginPerMemberUsd} quote units at the minimum notional), so **each extra ` +
      `transaction it forces costs it about ${r.marginPerExtraTxUsd.toLocaleString("en-US")} quote units of locked ` +
      `margin**, while it costs the keeper one transaction of at most the cap. The attack delays settlement by ` +
      `one transaction per ${r.membersPerTx.toLocaleString("en-US")} members and cannot prevent it; the session ` +
      `time T must leave room for that many transactions (docs/adl.md, "Choosing T").`,
  ];
  return lines.join("\n");
}

/** Adds `sessions` to the benchmark JSON and the sessions block to the gas doc (replaced if present). */
export function writeSessions(jsonPath: string, docPath: string, r: SessionBench): void {
  const json = JSON.parse(readFileSync(jsonPath, "utf8")) as Record<string, unknown>;
  json.sessions = r;
  writeFileSync(jsonPath, JSON.stringify(json, null, 2) + "\n");
  const doc = readFileSync(docPath, "utf8");
  const block = `${SESSIONS_BEGIN}\n${renderSessions(r)}\n${SESSIONS_END}`;
  const updated =
    doc.includes(SESSIONS_BEGIN) && doc.includes(SESSIONS_END)
      ? doc.slice(0, doc.indexOf(SESSIONS_BEGIN)) + block + doc.slice(doc.indexOf(SESSIONS_END) + SESSIONS_END.length)
      : doc.replace(/\s*$/, "\n\n") + block + "\n";
  writeFileSync(docPath, updated);
}

/**
 * Standalone: `npx hardhat run scripts/bench-adl/sessions.ts` deploys a fresh system with a 100-position
 * base book, measures and merges the result into ADL_SESSION_JSON / ADL_SESSION_DOC (default
 * bench/adl-gas.json, docs/gas.md). ADL_SESSION_FROM=<json> only re-renders another run's result.
 */
async function main(): Promise<void> {
  const jsonPath = process.env.ADL_SESSION_JSON ?? "bench/adl-gas.json";
  const docPath = process.env.ADL_SESSION_DOC ?? "docs/gas.md";
  if (process.env.ADL_SESSION_FROM) {
    // Re-render: take the sessions result of another run's JSON.
    const from = JSON.parse(readFileSync(process.env.ADL_SESSION_FROM, "utf8")) as { sessions: SessionBench };
    writeSessions(jsonPath, docPath, from.sessions);
    return;
  }
  const [adminSigner, keeperSigner] = await ethers.getSigners();
  const sys = await deployLocalSystem(adminSigner, [
    { symbol: "ETH-USD", price: PRICE, params: { imr: WAD / 100n, mmr: WAD / 200n, makerFee: 0n, takerFee: 0n } },
  ]);
  await (await sys.deleverager.setBounds(1000, 1_000_000, 1_000_000)).wait();
  const v: Venue = {
    clearinghouse: sys.clearinghouse,
    chAddress: await sys.clearinghouse.getAddress(),
    token: sys.token,
    aggregator: sys.markets.get("ETH-USD")!.aggregator,
    marketId: sys.markets.get("ETH-USD")!.id,
    chainId: (await ethers.provider.getNetwork()).chainId,
    admin: adminSigner.address,
    keeper: keeperSigner.address,
    whale: traderWallet("whale", 0),
  };
  await fundAdmin(v, 10n ** 12n * 10n ** 6n);
  // A base book like scripts/bench-adl.ts's N = 100: shorts against the whale, 1x-50x, entries within
  // 20% of 2,000, notional 100-10,000 (seed 7).
  const rand = prng(7);
  const base: PositionSpec[] = Array.from({ length: 100 }, (_, i) => {
    const price = BigInt(Math.round(2000 * (0.8 + 0.4 * rand()))) * WAD;
    const leverage = wad(logUniform(rand, 1, 50), 2);
    const size = wad(logUniform(rand, 100, 10_000) / Number(price / WAD), 6);
    return { wallet: traderWallet("book", i), isLong: false, size, price, leverage };
  });
  await depositFor(v, v.whale.address, base.reduce((t, p) => t + (p.size * p.price) / WAD, 0n) + 1_000_000n * WAD);
  await openAgainstWhale(v, base, 100n * WAD);
  const r = await measureSessions(sys, v, keeperSigner.address);
  writeSessions(jsonPath, docPath, r);
  console.log(JSON.stringify(r, null, 2));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
