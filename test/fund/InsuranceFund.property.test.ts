import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { USDC, VIRTUAL_SHARES, fundFixture } from "./fixture";

/**
 * Invariant, in words: whatever sequence of stakes, mints, donations, covers, reserves, unstake
 * requests, completions and cancellations happens,
 *  - the fund never pays out more than it holds: every payout is at most its balance (and at most
 *    what is not reserved), so the balance never goes negative, and it moves only by the documented
 *    paths (stakes, donations, covers, reserve payouts, unstake payouts);
 *  - the assets that price the shares are the balance minus every reserve: reserved money counts as
 *    spent until it is released, so no stake and no payout is ever priced with it;
 *  - while any reserve is out, stakes and mints are refused;
 *  - the value of all shares outstanding at the current price (holders' and those in custody
 *    under a request) never exceeds those assets; rounding only ever favours the fund, so
 *    totalSupply x price rounded up exceeds the assets by at most 1 wei;
 *  - shares in custody equal the sum of the open requests' shares (counted once);
 *  - a request records its value counting the reserves out at that time (as if they came back); a
 *    completion pays exactly min(value at request, value now), never more than is available, and a
 *    cancellation never hands back shares worth more than the value at request;
 *  - a reserve untouched for STALE_RESERVE_AGE can be released by anyone, and not before;
 *  - at the end, after reserves are released, every staker can leave and the fund can pay them all.
 */

const KEYS = [ethers.id("k0"), ethers.id("k1")];

type Cmd =
  | { k: "stake"; who: number; amount: bigint }
  | { k: "mint"; who: number; shares: bigint }
  | { k: "donate"; amount: bigint }
  | { k: "cover"; pct: number }
  | { k: "request"; who: number; pct: number }
  | { k: "complete"; pick: number }
  | { k: "cancel"; pick: number }
  | { k: "wait"; seconds: number }
  | { k: "reserve"; key: number; pct: number }
  | { k: "useReserve"; key: number; pct: number }
  | { k: "release"; key: number }
  | { k: "releaseStale"; key: number };

const amountArb = fc.oneof(fc.bigInt({ min: 1n, max: 1_000n }), fc.bigInt({ min: 1n, max: 1_000_000n * USDC }));
const who = fc.integer({ min: 0, max: 2 });
const pct = fc.integer({ min: 0, max: 120 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant("stake" as const), who, amount: amountArb }), weight: 4 },
  {
    arbitrary: fc.record({
      k: fc.constant("mint" as const),
      who,
      shares: fc.oneof(fc.bigInt({ min: 1n, max: 10n ** 6n }), fc.bigInt({ min: 1n, max: 10n ** 18n })),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ k: fc.constant("donate" as const), amount: amountArb }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("cover" as const), pct }), weight: 3 },
  {
    arbitrary: fc.record({ k: fc.constant("request" as const), who, pct: fc.integer({ min: 1, max: 100 }) }),
    weight: 4,
  },
  { arbitrary: fc.record({ k: fc.constant("complete" as const), pick: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ k: fc.constant("cancel" as const), pick: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({ k: fc.constant("wait" as const), seconds: fc.integer({ min: 1, max: 10 * 86_400 }) }),
    weight: 3,
  },
  { arbitrary: fc.record({ k: fc.constant("reserve" as const), key: fc.integer({ min: 0, max: 1 }), pct }), weight: 1 },
  {
    arbitrary: fc.record({ k: fc.constant("useReserve" as const), key: fc.integer({ min: 0, max: 1 }), pct }),
    weight: 1,
  },
  { arbitrary: fc.record({ k: fc.constant("release" as const), key: fc.integer({ min: 0, max: 1 }) }), weight: 1 },
  {
    arbitrary: fc.record({ k: fc.constant("releaseStale" as const), key: fc.integer({ min: 0, max: 1 }) }),
    weight: 1,
  },
);

interface OpenRequest {
  id: bigint;
  who: number;
  shares: bigint;
  assetsAtRequest: bigint;
  readyAt: bigint;
}

describe("InsuranceFund property", function () {
  it("never pays out more than it holds; shares x price never exceed assets beyond rounding", async function () {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 25 }), async (cmds) => {
        const { fund, token, coverer, stakers, outsider } = await loadFixture(fundFixture);
        const actors = stakers.slice(0, 3);
        const fundAddress = await fund.getAddress();
        let modelBalance = 0n;
        const open: OpenRequest[] = [];
        const cover = fund.connect(coverer);

        const payout = async (send: () => Promise<unknown>, receiver: string, expected: bigint) => {
          const before = await fund.balance();
          expect(expected).to.be.lte(before);
          const t0 = await token.balanceOf(receiver);
          await send();
          expect((await token.balanceOf(receiver)) - t0).to.equal(expected);
          modelBalance -= expected;
        };

        const checkInvariants = async () => {
          const bal = await fund.balance();
          expect(bal).to.equal(modelBalance);
          expect(bal).to.be.gte(0n);
          const assets = await fund.totalAssets();
          const reserved = await fund.totalReserved();
          expect(reserved).to.be.lte(bal);
          expect(assets).to.equal(bal - reserved);
          expect(await fund.available()).to.equal(bal - reserved);
          expect(await fund.maxDeposit(actors[0].address)).to.equal(reserved === 0n ? ethers.MaxUint256 : 0n);
          const supply = await fund.totalSupply();
          const custody = await fund.balanceOf(fundAddress);
          expect(custody).to.equal(await fund.totalPendingShares());
          expect(custody).to.equal(open.reduce((s, r) => s + r.shares, 0n));
          // all shares at the current price, rounded down and up
          expect(await fund.convertToAssets(supply)).to.be.lte(assets);
          const up = (supply * (assets + 1n) + supply + VIRTUAL_SHARES - 1n) / (supply + VIRTUAL_SHARES);
          expect(up).to.be.lte(assets + 1n);
          // every claim (holders at the current price, requests at their min rule) is covered
          let claims = 0n;
          for (const a of actors) claims += await fund.convertToAssets(await fund.balanceOf(a.address));
          for (const r of open) {
            const now = await fund.convertToAssets(r.shares);
            claims += now < r.assetsAtRequest ? now : r.assetsAtRequest;
          }
          expect(claims).to.be.lte(assets);
        };

        for (const c of cmds) {
          switch (c.k) {
            case "stake": {
              const reserved = await fund.totalReserved();
              if (reserved > 0n) {
                await expect(fund.connect(actors[c.who]).deposit(c.amount, actors[c.who].address))
                  .to.be.revertedWithCustomError(fund, "FundDepositDuringReserve")
                  .withArgs(reserved);
                break;
              }
              await fund.connect(actors[c.who]).deposit(c.amount, actors[c.who].address);
              modelBalance += c.amount;
              break;
            }
            case "mint": {
              const reserved = await fund.totalReserved();
              if (reserved > 0n) {
                await expect(fund.connect(actors[c.who]).mint(c.shares, actors[c.who].address))
                  .to.be.revertedWithCustomError(fund, "FundDepositDuringReserve")
                  .withArgs(reserved);
                break;
              }
              const cost = await fund.previewMint(c.shares);
              if (cost > (await token.balanceOf(actors[c.who].address))) break;
              await fund.connect(actors[c.who]).mint(c.shares, actors[c.who].address);
              modelBalance += cost;
              break;
            }
            case "donate": {
              await fund.connect(actors[0]).donate(c.amount);
              modelBalance += c.amount;
              break;
            }
            case "cover": {
              const avail = await fund.available();
              const amount = (avail * BigInt(c.pct)) / 100n + (c.pct > 100 ? 1n : 0n);
              if (amount > avail) {
                await expect(cover.cover(amount))
                  .to.be.revertedWithCustomError(fund, "FundInsufficient")
                  .withArgs(avail, amount);
              } else {
                await payout(() => cover.cover(amount), coverer.address, amount);
              }
              break;
            }
            case "request": {
              const signer = actors[c.who];
              const shares = ((await fund.balanceOf(signer.address)) * BigInt(c.pct)) / 100n;
              if (shares === 0n) break;
              // Counting the reserves out now as if they came back; previewRedeem when none is out.
              const supply = await fund.totalSupply();
              const expected = (shares * ((await fund.balance()) + 1n)) / (supply + VIRTUAL_SHARES);
              if ((await fund.totalReserved()) === 0n) expect(expected).to.equal(await fund.previewRedeem(shares));
              const id = await fund.nextRequestId();
              await fund.connect(signer).requestUnstake(shares);
              const r = await fund.getUnstakeRequest(id);
              expect(r.assetsAtRequest).to.equal(expected);
              open.push({ id, who: c.who, shares, assetsAtRequest: expected, readyAt: r.readyAt });
              break;
            }
            case "complete": {
              if (open.length === 0) break;
              const i = c.pick % open.length;
              const r = open[i];
              const signer = actors[r.who];
              const next = BigInt(await time.latest()) + 1n;
              if (next < r.readyAt) {
                await expect(fund.connect(signer).completeUnstake(r.id, signer.address))
                  .to.be.revertedWithCustomError(fund, "CooldownActive")
                  .withArgs(r.id, r.readyAt, next);
                break;
              }
              const expiredAt = r.readyAt + (await fund.COMPLETION_WINDOW());
              if (next > expiredAt) {
                // A lapsed request can only be cancelled (it stays open in the model).
                await expect(fund.connect(signer).completeUnstake(r.id, signer.address))
                  .to.be.revertedWithCustomError(fund, "UnstakeRequestExpired")
                  .withArgs(r.id, expiredAt, next);
                break;
              }
              const now = await fund.convertToAssets(r.shares);
              const expected = now < r.assetsAtRequest ? now : r.assetsAtRequest;
              const avail = await fund.available();
              // The value now is priced without the reserves, so it always fits in what is available.
              expect(expected).to.be.lte(avail);
              if (expected > avail) {
                await expect(fund.connect(signer).completeUnstake(r.id, signer.address))
                  .to.be.revertedWithCustomError(fund, "FundInsufficient")
                  .withArgs(avail, expected);
                break;
              }
              await payout(() => fund.connect(signer).completeUnstake(r.id, signer.address), signer.address, expected);
              open.splice(i, 1);
              break;
            }
            case "cancel": {
              if (open.length === 0) break;
              const i = c.pick % open.length;
              const r = open[i];
              const signer = actors[r.who];
              const before = await fund.balanceOf(signer.address);
              await fund.connect(signer).cancelUnstake(r.id);
              const back = (await fund.balanceOf(signer.address)) - before;
              expect(back).to.be.lte(r.shares);
              if (back < r.shares) expect(await fund.convertToAssets(back)).to.be.lte(r.assetsAtRequest);
              open.splice(i, 1);
              break;
            }
            case "wait": {
              await time.increase(c.seconds);
              break;
            }
            case "reserve": {
              const amount = ((await fund.available()) * BigInt(Math.min(c.pct, 100))) / 100n;
              await cover.reserve(KEYS[c.key], amount);
              break;
            }
            case "useReserve": {
              const reserved = await fund.reserveOf(KEYS[c.key]);
              const amount = (reserved * BigInt(c.pct)) / 100n + (c.pct > 100 ? 1n : 0n);
              if (amount > reserved) {
                await expect(cover.coverFromReserve(KEYS[c.key], amount))
                  .to.be.revertedWithCustomError(fund, "ReserveInsufficient")
                  .withArgs(KEYS[c.key], reserved, amount);
              } else {
                await payout(() => cover.coverFromReserve(KEYS[c.key], amount), coverer.address, amount);
              }
              break;
            }
            case "release": {
              await cover.release(KEYS[c.key]);
              break;
            }
            case "releaseStale": {
              const key = KEYS[c.key];
              const reserved = await fund.reserveOf(key);
              const next = BigInt(await time.latest()) + 1n;
              const staleAt = (await fund.reservedAt(key)) + (await fund.STALE_RESERVE_AGE());
              if (reserved === 0n) {
                await expect(fund.connect(outsider).releaseStale(key))
                  .to.be.revertedWithCustomError(fund, "FundReserveEmpty")
                  .withArgs(key);
              } else if (next < staleAt) {
                await expect(fund.connect(outsider).releaseStale(key))
                  .to.be.revertedWithCustomError(fund, "FundReserveNotStale")
                  .withArgs(key, staleAt, next);
              } else {
                await expect(fund.connect(outsider).releaseStale(key))
                  .to.emit(fund, "Released")
                  .withArgs(key, reserved);
              }
              break;
            }
          }
          await checkInvariants();
        }

        // Everyone leaves: release the reserves, cancel open (possibly lapsed) requests, request
        // everything, wait out the cooldown and complete all within the completion window.
        for (const key of KEYS) await cover.release(key);
        while (open.length > 0) {
          const r = open.shift()!;
          await fund.connect(actors[r.who]).cancelUnstake(r.id);
          await checkInvariants();
        }
        for (const [w, a] of actors.entries()) {
          const shares = await fund.balanceOf(a.address);
          if (shares === 0n) continue;
          const id = await fund.nextRequestId();
          const assetsAtRequest = await fund.previewRedeem(shares);
          await fund.connect(a).requestUnstake(shares);
          const { readyAt } = await fund.getUnstakeRequest(id);
          open.push({ id, who: w, shares, assetsAtRequest, readyAt });
        }
        const lastReady = open.reduce((m, r) => (r.readyAt > m ? r.readyAt : m), 0n);
        if (lastReady > BigInt(await time.latest())) await time.increaseTo(lastReady);
        while (open.length > 0) {
          const r = open.shift()!;
          const signer = actors[r.who];
          const now = await fund.convertToAssets(r.shares);
          const expected = now < r.assetsAtRequest ? now : r.assetsAtRequest;
          await payout(() => fund.connect(signer).completeUnstake(r.id, signer.address), signer.address, expected);
          await checkInvariants();
        }
        expect(await fund.totalSupply()).to.equal(0n);
        expect(await fund.balance()).to.equal(modelBalance);
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 40) },
    );
  });
});
