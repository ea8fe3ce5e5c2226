import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH_PRICE, USDC, type Fixture } from "../helpers/fixture";
import {
  signed,
  submit,
  matchExactly,
  expectRejected,
  feeOf,
  positionOf,
  type SignedOrder,
} from "../helpers/clearinghouse";
import type { OrderSpec } from "../../lib/matching";
import { ORDER_TYPES, orderDomain, signOrder } from "../../lib/orders";
import { WAD } from "../../lib/math";
import { MockERC1271Wallet__factory } from "../../typechain-types";

const P = ETH_PRICE;

describe("Clearinghouse orders", function () {
  /** A buy by alice (maker) and a sell by bob (taker) at the index unless overridden. */
  async function pair(f: Fixture, maker: Partial<OrderSpec> = {}, taker: Partial<OrderSpec> = {}) {
    const [alice, bob] = f.traders;
    const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: P, ...maker });
    const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -WAD, limitPrice: P, ...taker });
    return { m, t, hashes: [await f.clearinghouse.hashOrder(m.order), await f.clearinghouse.hashOrder(t.order)] };
  }
  const scopeOf = (f: Fixture, hashes: string[], extra: string[] = []) => ({
    ids: [f.ethId, f.btcId],
    accounts: [f.traders[0].address, f.traders[1].address, ...extra],
    hashes,
  });

  it("hashes orders as the EIP-712 digest of the Clearinghouse domain", async function () {
    const f = await loadFixture(systemFixture);
    const { m } = await pair(f);
    const { chainId } = await ethers.provider.getNetwork();
    const domain = orderDomain(chainId, await f.clearinghouse.getAddress());
    expect(await f.clearinghouse.hashOrder(m.order)).to.equal(
      ethers.TypedDataEncoder.hash(domain, ORDER_TYPES, m.order),
    );
    expect((await f.clearinghouse.eip712Domain()).verifyingContract).to.equal(domain.verifyingContract);
  });

  it("fills at the maker's price and emits OrdersMatched with both fees", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const { m, t, hashes } = await pair(f, { limitPrice: 2010n * WAD }, { limitPrice: 1990n * WAD });
    const fees = [feeOf(WAD, 2010n * WAD, 2n * 10n ** 14n), feeOf(WAD, 2010n * WAD, 5n * 10n ** 14n)];
    await expect(submit(f.clearinghouse, f.keeper, m, t, WAD))
      .to.emit(f.clearinghouse, "OrdersMatched")
      .withArgs(f.ethId, hashes[0], hashes[1], alice.address, bob.address, false, WAD, 2010n * WAD, fees[0], fees[1]);
    expect((await positionOf(f.clearinghouse, f.ethId, alice.address)).entry).to.equal(2010n * WAD);
    expect((await positionOf(f.clearinghouse, f.ethId, bob.address)).entry).to.equal(2010n * WAD);
  });

  it("lets any keeper match, and every position and balance follows lib applyFill to the wei", async function () {
    const f = await loadFixture(systemFixture);
    const { m, t } = await pair(f, { limitPrice: 1995n * WAD, size: 3n * WAD }, { limitPrice: 1980n * WAD });
    await matchExactly(f, m, t, WAD, P);
    // Someone unrelated to either order submits the next pair.
    const next = await pair(f, { limitPrice: 2003n * WAD, size: -WAD / 3n }, { size: WAD, limitPrice: 2010n * WAD });
    await matchExactly({ ...f, keeper: f.traders[9] }, next.m, next.t, WAD / 3n, P);
  });

  it("tracks partial fills in filled(hash) and rejects the fill that would overfill", async function () {
    const f = await loadFixture(systemFixture);
    const { m, t, hashes } = await pair(f, { size: 3n * WAD }, { size: -10n * WAD });
    await submit(f.clearinghouse, f.keeper, m, t, WAD);
    expect(await f.clearinghouse.filled(hashes[0])).to.equal(WAD);
    expect(await f.clearinghouse.filled(hashes[1])).to.equal(WAD);
    await submit(f.clearinghouse, f.keeper, m, t, 2n * WAD);
    expect(await f.clearinghouse.filled(hashes[0])).to.equal(3n * WAD);
    expect(await f.clearinghouse.filled(hashes[1])).to.equal(3n * WAD);
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, 1n),
      "OrderOverfilled",
      hashes[0],
      3n * WAD,
      1n,
      3n * WAD,
    );
  });

  it("rejects the replay of a fully filled order with OrderOverfilled", async function () {
    const f = await loadFixture(systemFixture);
    const { m, t, hashes } = await pair(f);
    await submit(f.clearinghouse, f.keeper, m, t, WAD);
    const fresh = await signed(f.clearinghouse, f.traders[2], { marketId: f.ethId, size: -WAD, limitPrice: P });
    await expectRejected(
      f,
      scopeOf(f, hashes, [f.traders[2].address]),
      () => submit(f.clearinghouse, f.keeper, m, fresh, WAD),
      "OrderOverfilled",
      hashes[0],
      WAD,
      WAD,
      WAD,
    );
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "OrderOverfilled",
      hashes[0],
      WAD,
      WAD,
      WAD,
    );
  });

  it("rejects a signature made for another chain id or another verifying contract", async function () {
    const f = await loadFixture(systemFixture);
    const [alice] = f.traders;
    const { m, t, hashes } = await pair(f);
    const { chainId } = await ethers.provider.getNetwork();
    const otherChain = orderDomain(chainId + 1n, await f.clearinghouse.getAddress());
    const otherContract = orderDomain(chainId, await f.oracle.getAddress());
    for (const domain of [otherChain, otherContract]) {
      const bad: SignedOrder = { ...m, sig: await signOrder(alice, domain, m.order) };
      await expectRejected(
        f,
        scopeOf(f, hashes),
        () => submit(f.clearinghouse, f.keeper, bad, t, WAD),
        "OrderInvalidSignature",
        alice.address,
        hashes[0],
      );
    }
  });

  it("rejects a signature by someone other than the trader", async function () {
    const f = await loadFixture(systemFixture);
    const [, bob, carol] = f.traders;
    const { m, t, hashes } = await pair(f);
    const { chainId } = await ethers.provider.getNetwork();
    const domain = orderDomain(chainId, await f.clearinghouse.getAddress());
    const forged: SignedOrder = { ...t, sig: await signOrder(carol, domain, t.order) };
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, forged, WAD),
      "OrderInvalidSignature",
      bob.address,
      hashes[1],
    );
  });

  it("cannot match an ETH-USD order against a BTC-USD order, and rewriting marketId breaks the signature", async function () {
    const f = await loadFixture(systemFixture);
    const [alice] = f.traders;
    const { m, hashes } = await pair(f);
    const btc = await signed(f.clearinghouse, f.traders[1], { marketId: f.btcId, size: -WAD, limitPrice: P });
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, btc, WAD),
      "OrderMarketMismatch",
      f.ethId,
      f.btcId,
    );
    const moved: SignedOrder = { ...m, order: { ...m.order, marketId: f.btcId } };
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, moved, btc, WAD),
      "OrderInvalidSignature",
      alice.address,
      await f.clearinghouse.hashOrder(moved.order),
    );
  });

  it("accepts an order up to and including its expiry, and rejects it afterwards with OrderExpired", async function () {
    const f = await loadFixture(systemFixture);
    const expiry = BigInt(await time.latest()) + 1000n;
    const { m, t, hashes } = await pair(f, { expiry, size: 2n * WAD }, { size: -2n * WAD });
    await time.setNextBlockTimestamp(expiry);
    await submit(f.clearinghouse, f.keeper, m, t, WAD);
    await time.increaseTo(expiry + 1n);
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "OrderExpired",
      hashes[0],
      expiry,
    );
  });

  it("lets only the trader cancel an order, after which it cannot be matched", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    const { m, t, hashes } = await pair(f);
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => f.clearinghouse.connect(bob).cancelOrder(m.order),
      "OrderNotSigner",
      bob.address,
      alice.address,
    );
    await expect(f.clearinghouse.connect(alice).cancelOrder(m.order))
      .to.emit(f.clearinghouse, "OrderCancelled")
      .withArgs(alice.address, hashes[0]);
    expect(await f.clearinghouse.cancelled(hashes[0])).to.equal(true);
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "OrderIsCancelled",
      hashes[0],
    );
  });

  it("rejects a self-match, two orders on the same side and a zero fill", async function () {
    const f = await loadFixture(systemFixture);
    const [alice] = f.traders;
    const { m, t, hashes } = await pair(f);
    const selfSell = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -WAD, limitPrice: P });
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, selfSell, WAD),
      "OrderSelfMatch",
      alice.address,
    );
    const bobBuys = await signed(f.clearinghouse, f.traders[1], { marketId: f.ethId, size: WAD, limitPrice: P });
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, bobBuys, WAD),
      "OrderSameSide",
    );
    await expectRejected(f, scopeOf(f, hashes), () => submit(f.clearinghouse, f.keeper, m, t, 0n), "OrderZeroSize");
    const zero = await signed(f.clearinghouse, f.traders[1], { marketId: f.ethId, size: 0n, limitPrice: P });
    await expectRejected(f, scopeOf(f, hashes), () => submit(f.clearinghouse, f.keeper, m, zero, WAD), "OrderZeroSize");
  });

  it("rejects a fill at a maker price worse than the taker's limit with OrderLimitNotMet", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    // Maker sells at 2,010; the taker buys with limit 2,005.
    const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: -WAD, limitPrice: 2010n * WAD });
    const t = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: WAD, limitPrice: 2005n * WAD });
    const hashes = [await f.clearinghouse.hashOrder(m.order), await f.clearinghouse.hashOrder(t.order)];
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "OrderLimitNotMet",
      hashes[1],
      2005n * WAD,
      2010n * WAD,
    );
  });

  it("accepts a maker price on the edge of the band and rejects one a wei outside with PriceOutsideBand", async function () {
    const f = await loadFixture(systemFixture);
    const band = WAD / 20n;
    for (const price of [2100n * WAD + 1n, 1900n * WAD - 1n]) {
      const { m, t, hashes } = await pair(f, { limitPrice: price }, { limitPrice: 1n });
      await expectRejected(
        f,
        scopeOf(f, hashes),
        () => submit(f.clearinghouse, f.keeper, m, t, WAD),
        "PriceOutsideBand",
        price,
        P,
        band,
      );
    }
    const edge = await pair(f, { limitPrice: 2100n * WAD }, { limitPrice: 1n });
    await matchExactly(f, edge.m, edge.t, WAD, P);
  });

  it("never casts a taker-only order as the maker: it cannot be filled at its own worst price", async function () {
    const f = await loadFixture(systemFixture);
    const [alice, bob] = f.traders;
    // Alice will pay up to 2,099 but signs taker-only; Bob offers at 2,000.
    const victim = await signed(f.clearinghouse, alice, {
      marketId: f.ethId,
      size: WAD,
      limitPrice: 2099n * WAD,
      makerAllowed: false,
    });
    const offer = await signed(f.clearinghouse, bob, { marketId: f.ethId, size: -WAD, limitPrice: P });
    const hashes = [await f.clearinghouse.hashOrder(victim.order), await f.clearinghouse.hashOrder(offer.order)];
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, victim, offer, WAD),
      "OrderTakerOnly",
      hashes[0],
    );
    // As the taker it fills at the resting offer's price.
    await matchExactly(f, offer, victim, WAD, P);
    expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).entry).to.equal(P);
  });

  describe("sender and the taker band", function () {
    /** The market's taker band: 0.5% by default, a tenth of the 5% order band. */
    const TAKER_BAND = WAD / 200n;

    it("taker slippage: the submitter who signs the resting order itself at the taker's limit is held to the taker band, and cannot submit an order naming another sender", async function () {
      // The attack: Alice signs a taker-only buy of 10 ETH with limit 2,100 (5% above the index
      // of 2,000) and hands it to anyone who will match it. Mallory submits the match and signs
      // the resting sell herself at Alice's limit: filled at 2,100, Alice lost 10 * 100 = 1,000
      // at once, to Mallory.
      const f = await loadFixture(systemFixture);
      const [alice, , , , , mallory] = f.traders;
      const size = 10n * WAD;
      const victim = await signed(f.clearinghouse, alice, {
        marketId: f.ethId,
        size,
        limitPrice: 2100n * WAD,
        makerAllowed: false,
      });
      const bait = await signed(f.clearinghouse, mallory, { marketId: f.ethId, size: -size, limitPrice: 2100n * WAD });
      const hashes = [await f.clearinghouse.hashOrder(bait.order), await f.clearinghouse.hashOrder(victim.order)];
      const scope = scopeOf(f, hashes, [mallory.address]);
      expect((await f.clearinghouse.marketParams(f.ethId)).takerBand).to.equal(TAKER_BAND);
      await expectRejected(
        f,
        scope,
        () => submit(f.clearinghouse, mallory, bait, victim, size),
        "PriceOutsideBand",
        2100n * WAD,
        P,
        TAKER_BAND,
      );

      // The worst Mallory can still do is a fill on the edge of the taker band, 2,010: a loss of
      // 10 * 10 = 100, set by the protocol's parameter and not by Alice's limit.
      const edge = await signed(f.clearinghouse, mallory, { marketId: f.ethId, size: -size, limitPrice: 2010n * WAD });
      const outside = await signed(f.clearinghouse, mallory, {
        marketId: f.ethId,
        size: -size,
        limitPrice: 2010n * WAD + 1n,
      });
      await expectRejected(
        f,
        scopeOf(f, [...hashes, await f.clearinghouse.hashOrder(outside.order)], [mallory.address]),
        () => submit(f.clearinghouse, mallory, outside, victim, size),
        "PriceOutsideBand",
        2010n * WAD + 1n,
        P,
        TAKER_BAND,
      );
      await matchExactly({ ...f, keeper: mallory }, edge, victim, size, P);
      const pos = await positionOf(f.clearinghouse, f.ethId, alice.address);
      expect(await f.lens.equity(f.ethId, alice.address)).to.equal(pos.margin - 100n * WAD);

      // An order that names its sender cannot be submitted by anyone else at all.
      const guarded = await signed(f.clearinghouse, alice, {
        marketId: f.ethId,
        size,
        limitPrice: 2100n * WAD,
        makerAllowed: false,
        sender: f.keeper.address,
      });
      const guardedHash = await f.clearinghouse.hashOrder(guarded.order);
      const bait2 = await signed(f.clearinghouse, mallory, { marketId: f.ethId, size: -size, limitPrice: 2000n * WAD });
      await expectRejected(
        f,
        scopeOf(f, [guardedHash, await f.clearinghouse.hashOrder(bait2.order)], [mallory.address]),
        () => submit(f.clearinghouse, mallory, bait2, guarded, size),
        "OrderSenderNotAllowed",
        guardedHash,
        f.keeper.address,
        mallory.address,
      );
    });

    it("lets anyone submit an order whose sender is the zero address", async function () {
      const f = await loadFixture(systemFixture);
      const { m, t } = await pair(f);
      expect([m.order.sender, t.order.sender]).to.deep.equal([ethers.ZeroAddress, ethers.ZeroAddress]);
      await matchExactly({ ...f, keeper: f.traders[9] }, m, t, WAD, P);
    });

    it("lets only the named sender submit an order, whether it is the maker or the taker", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob, carol] = f.traders;
      for (const side of ["maker", "taker"] as const) {
        const named = { sender: carol.address };
        const { m, t, hashes } = await pair(f, side === "maker" ? named : {}, side === "taker" ? named : {});
        const namedHash = side === "maker" ? hashes[0] : hashes[1];
        for (const stranger of [f.keeper, alice, bob]) {
          await expectRejected(
            f,
            scopeOf(f, hashes, [carol.address]),
            () => submit(f.clearinghouse, stranger, m, t, WAD),
            "OrderSenderNotAllowed",
            namedHash,
            carol.address,
            stranger.address,
          );
        }
        await matchExactly({ ...f, keeper: carol }, m, t, WAD, P);
      }
    });

    it("checks the sender of every match of a batch", async function () {
      const f = await loadFixture(systemFixture);
      const [, , carol, dave] = f.traders;
      const first = await pair(f);
      const second = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: WAD, limitPrice: P });
      const named = await signed(f.clearinghouse, dave, {
        marketId: f.ethId,
        size: -WAD,
        limitPrice: P,
        sender: f.keeper.address,
      });
      const matches = [
        {
          maker: first.m.order,
          makerSignature: first.m.sig,
          taker: first.t.order,
          takerSignature: first.t.sig,
          fillSize: WAD,
        },
        {
          maker: second.order,
          makerSignature: second.sig,
          taker: named.order,
          takerSignature: named.sig,
          fillSize: WAD,
        },
      ];
      const hashes = [
        ...first.hashes,
        await f.clearinghouse.hashOrder(second.order),
        await f.clearinghouse.hashOrder(named.order),
      ];
      const stranger = f.traders[9];
      await expectRejected(
        f,
        scopeOf(f, hashes, [carol.address, dave.address]),
        () => f.clearinghouse.connect(stranger).matchOrderBatch(matches),
        "OrderSenderNotAllowed",
        hashes[3],
        f.keeper.address,
        stranger.address,
      );
      await f.clearinghouse.connect(f.keeper).matchOrderBatch(matches);
      expect(await Promise.all(hashes.map((h) => f.clearinghouse.filled(h)))).to.deep.equal([WAD, WAD, WAD, WAD]);
    });

    it("holds a taker-only order to the taker band on both sides of the index, and a maker-allowed taker to the order band", async function () {
      const f = await loadFixture(systemFixture);
      // Taker-only: 2,010 and 1,990 are the edges of 0.5% around 2,000.
      for (const [makerBuys, edge, outside] of [
        [false, 2010n * WAD, 2010n * WAD + 1n],
        [true, 1990n * WAD, 1990n * WAD - 1n],
      ] as const) {
        const sign = makerBuys ? 1n : -1n;
        const taker = { size: -sign * WAD, limitPrice: makerBuys ? 1n : 3000n * WAD, makerAllowed: false };
        const bad = await pair(f, { size: sign * WAD, limitPrice: outside }, taker);
        await expectRejected(
          f,
          scopeOf(f, bad.hashes),
          () => submit(f.clearinghouse, f.keeper, bad.m, bad.t, WAD),
          "PriceOutsideBand",
          outside,
          P,
          TAKER_BAND,
        );
        const ok = await pair(f, { size: sign * WAD, limitPrice: edge }, taker);
        await matchExactly(f, ok.m, ok.t, WAD, P);
      }
      // The same maker price, 2,011, fills a taker that may also make: only the 5% band applies.
      const wide = await pair(f, { size: -WAD, limitPrice: 2011n * WAD }, { size: WAD, limitPrice: 2011n * WAD });
      await matchExactly(f, wide.m, wide.t, WAD, P);
    });
  });

  it("rejects an order with zero leverage with OrderInvalidLeverage", async function () {
    const f = await loadFixture(systemFixture);
    const { m, t, hashes } = await pair(f, {}, { leverage: 0n });
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "OrderInvalidLeverage",
      hashes[1],
      0n,
    );
  });

  describe("reduce-only", function () {
    async function longTwo(f: Fixture) {
      const { m, t } = await pair(f, { size: 2n * WAD }, { size: -2n * WAD });
      await submit(f.clearinghouse, f.keeper, m, t, 2n * WAD); // alice long 2, bob short 2
    }

    it("may shrink an opposite position", async function () {
      const f = await loadFixture(systemFixture);
      await longTwo(f);
      const carol = f.traders[2];
      const m = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: WAD, limitPrice: P });
      const t = await signed(f.clearinghouse, f.traders[0], {
        marketId: f.ethId,
        size: -3n * WAD,
        limitPrice: P,
        reduceOnly: true,
      });
      await matchExactly(f, m, t, WAD, P);
      expect((await positionOf(f.clearinghouse, f.ethId, f.traders[0].address)).size).to.equal(WAD);
    });

    it("may not open, increase or flip a position", async function () {
      const f = await loadFixture(systemFixture);
      await longTwo(f);
      const [alice, , carol, dave] = f.traders;
      const ro = async (who: typeof alice, size: bigint) => {
        const m = await signed(f.clearinghouse, dave, { marketId: f.ethId, size: -size, limitPrice: P });
        const t = await signed(f.clearinghouse, who, { marketId: f.ethId, size, limitPrice: P, reduceOnly: true });
        return { m, t, hashes: [await f.clearinghouse.hashOrder(m.order), await f.clearinghouse.hashOrder(t.order)] };
      };
      const accounts = [alice.address, carol.address, dave.address];
      for (const [who, size, fill] of [
        [carol, -WAD, WAD], // opens a short
        [alice, WAD, WAD], // increases the long
        [alice, -3n * WAD, 3n * WAD], // flips the long to a short
      ] as const) {
        const { m, t, hashes } = await ro(who, size);
        await expectRejected(
          f,
          { ids: [f.ethId], accounts, hashes },
          () => submit(f.clearinghouse, f.keeper, m, t, fill),
          "OrderReduceOnly",
          hashes[1],
        );
      }
    });
  });

  describe("ERC-1271 wallets", function () {
    async function walletFixture() {
      const f = await systemFixture();
      const [, , carol] = f.traders;
      const wallet = await new MockERC1271Wallet__factory(f.admin).deploy(carol.address);
      await f.token.mint(await wallet.getAddress(), 10_000n * USDC);
      await wallet.depositTo(await f.clearinghouse.getAddress(), await f.token.getAddress(), 10_000n * USDC);
      return { f, wallet };
    }

    it("trade with a signature from the wallet's owner", async function () {
      const { f, wallet } = await loadFixture(walletFixture);
      const [alice, , carol] = f.traders;
      const w = await wallet.getAddress();
      expect(await f.clearinghouse.freeCollateral(w)).to.equal(10_000n * WAD);
      const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: P });
      const t = await signed(f.clearinghouse, carol, { marketId: f.ethId, size: -WAD, limitPrice: P }, w);
      await matchExactly(f, m, t, WAD, P);
      const pos = await positionOf(f.clearinghouse, f.ethId, w);
      expect(pos.isLong).to.equal(false);
      expect(pos.size).to.equal(WAD);
    });

    it("are rejected with a signature from anyone else", async function () {
      const { f, wallet } = await loadFixture(walletFixture);
      const [alice, , , dave] = f.traders;
      const w = await wallet.getAddress();
      const m = await signed(f.clearinghouse, alice, { marketId: f.ethId, size: WAD, limitPrice: P });
      const t = await signed(f.clearinghouse, dave, { marketId: f.ethId, size: -WAD, limitPrice: P }, w);
      const hashes = [await f.clearinghouse.hashOrder(m.order), await f.clearinghouse.hashOrder(t.order)];
      await expectRejected(
        f,
        { ids: [f.ethId], accounts: [alice.address, w], hashes },
        () => submit(f.clearinghouse, f.keeper, m, t, WAD),
        "OrderInvalidSignature",
        w,
        hashes[1],
      );
    });
  });

  it("rejects matching in a paused market with MarketIsPaused and in an unknown one with MarketUnknown", async function () {
    const f = await loadFixture(systemFixture);
    const { m, t, hashes } = await pair(f);
    await f.clearinghouse.setPaused(f.ethId, true);
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, m, t, WAD),
      "MarketIsPaused",
      f.ethId,
    );
    const unknown = ethers.encodeBytes32String("DOGE-USD");
    const um = await signed(f.clearinghouse, f.traders[0], { marketId: unknown, size: WAD, limitPrice: P });
    const ut = await signed(f.clearinghouse, f.traders[1], { marketId: unknown, size: -WAD, limitPrice: P });
    await expectRejected(
      f,
      scopeOf(f, hashes),
      () => submit(f.clearinghouse, f.keeper, um, ut, WAD),
      "MarketUnknown",
      unknown,
    );
    await f.clearinghouse.setPaused(f.ethId, false);
    await submit(f.clearinghouse, f.keeper, m, t, WAD);
  });
});
