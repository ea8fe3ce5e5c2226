/**
 * Property (fast-check, fixed seed): on random books (counterparties at random prices, leverages and
 * sizes, partial and full unwinds, late high-leverage entrants near the gap), a gap that leaves B
 * (long or short) bankrupt with the fund short: the list and proof lib/adl.ts builds from events are
 * accepted; the list is exactly the head of the eligible queue as ranked by an independent brute force written
 * here from docs/mechanism.md (the integer chain S_fin, eligibility floor(W*W/a) + x >= delta, higher score
 * first, lower address on ties), over positions read from the chain; afterwards open interest is
 * balanced, conservation holds, and no counterparty is below zero.
 */
import { expect } from "chai";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ETH, ETH_PRICE, systemFixture } from "../helpers/fixture";
import { deleverageExactly, everyone, keeperPlan, lev, pos, tradeAt, units, type Pos } from "../helpers/adl";

const SEED = 0x0ad1_2026;
const W = 10n ** 18n;
const USD = (n: number): bigint => BigInt(n) * W;

// ------------------------------------------------------------------ independent reference

/** S_fin(a, x, P) from docs/mechanism.md section 2, every step floored (x <= 0: truncation toward zero). */
function sFin(a: bigint, x: bigint, p: bigint): bigint {
  if (x > 0n) {
    const y = (a * x) / W;
    const g = (y * W) / (W + y);
    return (((p * a) / W) * g) / W;
  }
  return (x * W) / p; // bigint division truncates toward zero
}

/** x of a stored position at (P, F). */
const xAt = (p: Pos, price: bigint, funding: bigint): bigint =>
  p.isLong ? price - funding - p.entry : p.entry - (price - funding);

/** The head of the eligible queue covering q_B, as [account, take] pairs. */
function bruteForceHead(
  positions: Map<string, Pos>,
  bankrupt: string,
  price: bigint,
  funding: bigint,
  available: bigint,
): { head: [string, bigint][]; delta: bigint } {
  const b = positions.get(bankrupt)!;
  const xb = xAt(b, price, funding);
  const pnl = b.size * xb;
  const floorPnl = pnl >= 0n || pnl % W === 0n ? pnl / W : pnl / W - 1n;
  const deficit = -(b.margin + floorPnl);
  const covered = available < deficit ? available : deficit;
  const delta = (deficit * W + b.size - 1n) / b.size - (covered * W) / b.size;
  const ranked: { account: string; score: bigint; size: bigint }[] = [];
  for (const [account, p] of positions) {
    if (p.size === 0n || p.isLong === b.isLong || account === bankrupt) continue;
    const x = xAt(p, price, funding);
    if (x < 0n && p.leverage * -x >= W * W) continue; // minus infinity
    if ((W * W) / p.leverage + x < delta) continue; // cannot absorb the loss per unit
    ranked.push({ account, score: sFin(p.leverage, x, price), size: p.size });
  }
  ranked.sort((u, v) =>
    u.score !== v.score ? (u.score > v.score ? -1 : 1) : BigInt(u.account) < BigInt(v.account) ? -1 : 1,
  );
  const head: [string, bigint][] = [];
  let remaining = b.size;
  for (const r of ranked) {
    if (remaining === 0n) break;
    const take = remaining < r.size ? remaining : r.size;
    head.push([r.account, take]);
    remaining -= take;
  }
  return { head, delta };
}

// ------------------------------------------------------------------ random books

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
  late: fc.array(fc.record({ leverage: fc.integer({ min: 6, max: 10 }), above: fc.integer({ min: 1, max: 8 }) }), {
    maxLength: 2,
  }),
  gap: fc.integer({ min: 130, max: 170 }).map((n) => n * 10),
  bShort: fc.boolean(),
});

describe("ADL: deleverage property", function () {
  it("the builder's list is the brute-force head, the call is accepted and leaves nobody below zero", async function () {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const f = await loadFixture(systemFixture);
        const t = f.traders;
        const id = f.ethId;
        const [B, other] = [t[0], t[9]];
        // The counterparty side is the one opposite B; `other` (2x) takes the far side of their trades.
        type Signer = (typeof t)[number];
        const trade = (cp: Signer, o: Signer, size: number, price: bigint, cpLev?: bigint, oLev?: bigint) =>
          s.bShort
            ? tradeAt(f, cp, o, units(size), price, { long: cpLev, short: oLev })
            : tradeAt(f, o, cp, units(size), price, { long: oLev, short: cpLev });
        const unwind = (cp: Signer, o: Signer, size: number, price: bigint) =>
          s.bShort ? tradeAt(f, o, cp, units(size), price) : tradeAt(f, cp, o, units(size), price);
        // B at 2,000 with 10x against t1 (long B: the gap goes down; short B: up).
        await trade(t[1], B, s.bSize, ETH_PRICE, lev(s.t1Leverage), lev(10));
        // Counterparties t2.. at random prices and leverages, then partial or full unwinds.
        for (const [i, sh] of s.shorts.entries()) {
          const cp = t[2 + i];
          const price = USD(sh.price);
          await trade(cp, other, sh.size, price, lev(sh.leverage), lev(2));
          if (sh.buyBack === 1 && sh.size >= 1) await unwind(cp, other, sh.size / 2, price);
          if (sh.buyBack === 2) await unwind(cp, other, sh.size, price);
        }
        // Late high-leverage entrants a little before the gap.
        const gap = s.bShort ? 4000 - s.gap : s.gap;
        for (const [i, l] of s.late.entries()) {
          const price = USD(s.bShort ? gap - l.above * 10 : gap + l.above * 10);
          await trade(t[6 + i], t[8], 1, price, lev(l.leverage), lev(2));
        }
        await f.setPrice(ETH, USD(gap));
        const v = await keeperPlan(f, id, B.address);
        expect(v.delta.deficit, "B bankrupt").to.be.greaterThan(0n);
        expect(v.available, "fund short").to.be.lessThan(v.delta.deficit);
        // Independent reference over positions read from the chain.
        const positions = new Map<string, Pos>();
        for (const a of everyone(f)) positions.set(a, await pos(f, id, a));
        const ref = bruteForceHead(positions, B.address, v.price, v.funding, v.available);
        expect(v.delta.delta).to.equal(ref.delta);
        expect(v.plan.counterparties.map((a, i) => [a, v.plan.takes[i]])).to.deep.equal(ref.head);
        // Accepted, and exact to the wei (helper); then nobody below zero, open interest balanced.
        const freeBefore = new Map<string, bigint>();
        for (const a of v.plan.counterparties) freeBefore.set(a, await f.clearinghouse.freeCollateral(a));
        await deleverageExactly(f, id, B.address, v.plan.counterparties, v.plan.proof);
        for (const a of v.plan.counterparties) {
          expect(await f.clearinghouse.freeCollateral(a)).to.be.greaterThanOrEqual(freeBefore.get(a)!);
          const p = await pos(f, id, a);
          if (p.size !== 0n) expect(await f.lens.equity(id, a)).to.be.greaterThanOrEqual(0n);
        }
        const st = await f.clearinghouse.marketState(id);
        expect(st.longOpenInterest).to.equal(st.shortOpenInterest);
        runs++;
      }),
      { seed: SEED, numRuns: 10, endOnFailure: true },
    );
    expect(runs).to.equal(10);
  });
});
