import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH, ETH_PRICE } from "../helpers/fixture";
import { buildOrder, signAndMatch } from "../../lib/matching";
import { WAD } from "../../lib/math";
import { COVER_ROLE, DAY, DEFAULT_ADMIN_ROLE, HOUR, USDC, VIRTUAL_SHARES, fundFixture, valueOf } from "./fixture";

const KEY_A = ethers.id("session-a");
const KEY_B = ethers.id("session-b");

/** A fund where alice and bob each staked 1,000 tokens (price 1 token per 10^6 shares). */
async function stakedFixture() {
  const f = await fundFixture();
  const [alice, bob] = f.stakers;
  await f.fund.connect(alice).deposit(1_000n * USDC, alice.address);
  await f.fund.connect(bob).deposit(1_000n * USDC, bob.address);
  return { ...f, alice, bob };
}

/** Requests unstaking of `shares` for `signer`; returns the request id and its readyAt. */
async function request(f: Awaited<ReturnType<typeof stakedFixture>>, signerIndex: number, shares: bigint) {
  const signer = f.stakers[signerIndex];
  const id = await f.fund.nextRequestId();
  await f.fund.connect(signer).requestUnstake(shares);
  const r = await f.fund.getUnstakeRequest(id);
  return { id, readyAt: r.readyAt, assetsAtRequest: r.assetsAtRequest };
}

describe("InsuranceFund", function () {
  describe("deployment and parameters", function () {
    it("is an ERC-4626 vault over the collateral with 6 extra share decimals", async function () {
      const { fund, token, admin, coverer, deleverager } = await loadFixture(fundFixture);
      expect(await fund.asset()).to.equal(await token.getAddress());
      expect(await fund.name()).to.equal("ADL Insurance Fund Share");
      expect(await fund.symbol()).to.equal("adlIF");
      expect(await fund.decimals()).to.equal(12);
      expect(await fund.cooldown()).to.equal(7n * DAY);
      expect(await fund.feeSource()).to.equal(ethers.ZeroAddress);
      expect(await fund.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(true);
      expect(await fund.clearinghouse()).to.equal(coverer.address);
      expect(await fund.deleverager()).to.equal(deleverager.address);
      expect(await fund.totalAssets()).to.equal(0n);
    });

    it("rejects zero addresses in the constructor", async function () {
      const { token, admin, coverer, deleverager } = await loadFixture(fundFixture);
      const factory = await ethers.getContractFactory("InsuranceFund");
      const drawers = [coverer.address, deleverager.address] as const;
      await expect(
        factory.deploy(await token.getAddress(), ethers.ZeroAddress, ...drawers),
      ).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(ethers.ZeroAddress, admin.address, ...drawers)).to.be.reverted;
    });

    it("sets the cooldown within [1 hour, 30 days], admin only", async function () {
      const { fund, admin, outsider } = await loadFixture(fundFixture);
      await expect(fund.connect(admin).setCooldown(HOUR))
        .to.emit(fund, "CooldownSet")
        .withArgs(7n * DAY, HOUR);
      expect(await fund.cooldown()).to.equal(HOUR);
      await expect(fund.connect(admin).setCooldown(30n * DAY)).to.emit(fund, "CooldownSet");
      await expect(fund.connect(admin).setCooldown(HOUR - 1n))
        .to.be.revertedWithCustomError(fund, "CooldownOutOfBounds")
        .withArgs(HOUR - 1n, HOUR, 30n * DAY);
      await expect(fund.connect(admin).setCooldown(30n * DAY + 1n))
        .to.be.revertedWithCustomError(fund, "CooldownOutOfBounds")
        .withArgs(30n * DAY + 1n, HOUR, 30n * DAY);
      await expect(fund.connect(outsider).setCooldown(DAY))
        .to.be.revertedWithCustomError(fund, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, DEFAULT_ADMIN_ROLE);
      expect(await fund.cooldown()).to.equal(30n * DAY);
    });

    it("keeps readyAt of pending requests when the cooldown changes", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id, readyAt } = await request(f, 0, shares);
      await f.fund.connect(f.admin).setCooldown(30n * DAY);
      expect((await f.fund.getUnstakeRequest(id)).readyAt).to.equal(readyAt);
      await time.increaseTo(readyAt);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.emit(f.fund, "UnstakeCompleted");
    });
  });

  describe("staking and the share price", function () {
    it("mints shares for a stake at net asset value", async function () {
      const { fund, token, stakers } = await loadFixture(fundFixture);
      const [alice, bob] = stakers;
      const amount = 1_000n * USDC;
      await expect(fund.connect(alice).deposit(amount, alice.address))
        .to.emit(fund, "Deposit")
        .withArgs(alice.address, alice.address, amount, amount * VIRTUAL_SHARES);
      expect(await fund.balanceOf(alice.address)).to.equal(amount * VIRTUAL_SHARES);
      expect(await fund.balance()).to.equal(amount);
      expect(await fund.available()).to.equal(amount);
      expect(await valueOf(fund, alice.address)).to.equal(amount);
      // mint: exact shares, paying their price rounded up
      const shares = 123_456_789n;
      const cost = await fund.previewMint(shares);
      await expect(fund.connect(bob).mint(shares, bob.address)).to.changeTokenBalances(
        token,
        [bob, fund],
        [-cost, cost],
      );
      expect(await fund.balanceOf(bob.address)).to.equal(shares);
    });

    it("a donation raises the share price and mints nothing", async function () {
      const { fund, alice, bob, outsider } = await loadFixture(stakedFixture);
      const supply = await fund.totalSupply();
      await expect(fund.connect(outsider).donate(500n * USDC))
        .to.emit(fund, "Donated")
        .withArgs(outsider.address, 500n * USDC);
      expect(await fund.totalSupply()).to.equal(supply);
      expect(await valueOf(fund, alice.address)).to.be.closeTo(1_250n * USDC, 1n);
      expect(await valueOf(fund, bob.address)).to.be.closeTo(1_250n * USDC, 1n);
      await expect(fund.connect(outsider).donate(0)).to.be.revertedWithCustomError(fund, "ZeroAmount");
    });

    it("refuses share transfers and mints to the fund itself", async function () {
      const { fund, alice } = await loadFixture(stakedFixture);
      const fundAddress = await fund.getAddress();
      await expect(fund.connect(alice).transfer(fundAddress, 1n)).to.be.revertedWithCustomError(fund, "SharesToFund");
      await fund.connect(alice).approve(alice.address, 1n);
      await expect(fund.connect(alice).transferFrom(alice.address, fundAddress, 1n)).to.be.revertedWithCustomError(
        fund,
        "SharesToFund",
      );
      await expect(fund.connect(alice).deposit(USDC, fundAddress)).to.be.revertedWithCustomError(fund, "SharesToFund");
      await expect(fund.connect(alice).mint(USDC, fundAddress)).to.be.revertedWithCustomError(fund, "SharesToFund");
    });

    it("direct withdraw and redeem revert; maxWithdraw and maxRedeem are 0", async function () {
      const { fund, alice } = await loadFixture(stakedFixture);
      await expect(fund.connect(alice).withdraw(USDC, alice.address, alice.address)).to.be.revertedWithCustomError(
        fund,
        "UnstakeRequiresCooldown",
      );
      await expect(fund.connect(alice).redeem(1n, alice.address, alice.address)).to.be.revertedWithCustomError(
        fund,
        "UnstakeRequiresCooldown",
      );
      expect(await fund.maxWithdraw(alice.address)).to.equal(0n);
      expect(await fund.maxRedeem(alice.address)).to.equal(0n);
    });
  });

  describe("drawers fixed at deployment", function () {
    it("the constructor fixes the clearinghouse and the deleverager as the only drawers, and says so", async function () {
      const { fund, coverer, deleverager, outsider, admin } = await loadFixture(fundFixture);
      const tx = fund.deploymentTransaction()!;
      await expect(tx).to.emit(fund, "DrawersFixed").withArgs(coverer.address, deleverager.address);
      expect(await fund.isDrawer(coverer.address)).to.equal(true);
      expect(await fund.isDrawer(deleverager.address)).to.equal(true);
      for (const who of [outsider, admin]) expect(await fund.isDrawer(who.address)).to.equal(false);
    });

    it("the constructor rejects a zero drawer, and one address as both drawers", async function () {
      const { token, admin, coverer, deleverager } = await loadFixture(fundFixture);
      const factory = await ethers.getContractFactory("InsuranceFund");
      const asset = await token.getAddress();
      for (const [ch, del] of [
        [ethers.ZeroAddress, deleverager.address],
        [coverer.address, ethers.ZeroAddress],
        [coverer.address, coverer.address],
      ]) {
        await expect(factory.deploy(asset, admin.address, ch, del))
          .to.be.revertedWithCustomError(factory, "FundDrawersInvalid")
          .withArgs(ch, del);
      }
    });

    it("no function changes the drawers, and the admin role is the only one that can be granted", async function () {
      const { fund, admin, outsider } = await loadFixture(fundFixture);
      const writable = fund.interface.fragments
        .filter((f) => f.type === "function")
        .map((f) => f as unknown as { name: string; stateMutability: string })
        .filter((f) => f.stateMutability !== "view" && f.stateMutability !== "pure")
        .map((f) => f.name)
        .sort();
      expect(writable).to.deep.equal([
        "approve",
        "cancelUnstake",
        "completeUnstake",
        "cover",
        "coverFromReserve",
        "deposit",
        "donate",
        "grantRole",
        "mint",
        "release",
        "releaseStale",
        "renounceRole",
        "requestUnstake",
        "reserve",
        "revokeRole",
        "setCooldown",
        "setFeeSource",
        "transfer",
        "transferFrom",
      ]);
      for (const role of [COVER_ROLE, ethers.id("ANY_ROLE")]) {
        await expect(fund.connect(admin).grantRole(role, outsider.address))
          .to.be.revertedWithCustomError(fund, "FundRoleNotGrantable")
          .withArgs(role);
      }
      // Handing the admin role over (e.g. to a multisig) still works, and gives no right to draw.
      await expect(fund.connect(admin).grantRole(DEFAULT_ADMIN_ROLE, outsider.address))
        .to.emit(fund, "RoleGranted")
        .withArgs(DEFAULT_ADMIN_ROLE, outsider.address, admin.address);
      await expect(fund.connect(outsider).cover(1n))
        .to.be.revertedWithCustomError(fund, "FundCallerNotDrawer")
        .withArgs(outsider.address);
      await fund.connect(admin).revokeRole(DEFAULT_ADMIN_ROLE, outsider.address);
      expect(await fund.hasRole(DEFAULT_ADMIN_ROLE, outsider.address)).to.equal(false);
    });

    it("both drawers may cover, reserve, release and pay from a reserve", async function () {
      const { fund, token, coverer, deleverager, stakers } = await loadFixture(fundFixture);
      await fund.connect(stakers[0]).deposit(1_000n * USDC, stakers[0].address);
      for (const drawer of [coverer, deleverager]) {
        await expect(fund.connect(drawer).cover(10n * USDC)).to.changeTokenBalance(token, drawer, 10n * USDC);
        await fund.connect(drawer).reserve(KEY_A, 30n * USDC);
        await expect(fund.connect(drawer).coverFromReserve(KEY_A, 20n * USDC)).to.changeTokenBalance(
          token,
          drawer,
          20n * USDC,
        );
        await expect(fund.connect(drawer).release(KEY_A))
          .to.emit(fund, "Released")
          .withArgs(KEY_A, 10n * USDC);
      }
      expect(await fund.balance()).to.equal(940n * USDC);
      expect(await fund.totalReserved()).to.equal(0n);
    });
  });

  describe("cover", function () {
    it("pays the drawer that calls it and lowers the share price", async function () {
      const { fund, token, coverer, alice, bob } = await loadFixture(stakedFixture);
      const tx = await fund.connect(coverer).cover(400n * USDC);
      await expect(tx)
        .to.emit(fund, "Covered")
        .withArgs(coverer.address, 400n * USDC);
      await expect(tx).to.changeTokenBalances(token, [fund, coverer], [-400n * USDC, 400n * USDC]);
      expect(await fund.balance()).to.equal(1_600n * USDC);
      expect(await valueOf(fund, alice.address)).to.be.closeTo(800n * USDC, 1n);
      expect(await valueOf(fund, bob.address)).to.be.closeTo(800n * USDC, 1n);
    });

    it("only the drawers may cover", async function () {
      const { fund, alice, admin } = await loadFixture(stakedFixture);
      for (const who of [alice, admin]) {
        await expect(fund.connect(who).cover(USDC))
          .to.be.revertedWithCustomError(fund, "FundCallerNotDrawer")
          .withArgs(who.address);
      }
      expect(await fund.balance()).to.equal(2_000n * USDC);
    });

    it("reverts with the values above available and changes nothing", async function () {
      const { fund, token, coverer, alice } = await loadFixture(stakedFixture);
      await expect(fund.connect(coverer).cover(2_000n * USDC + 1n))
        .to.be.revertedWithCustomError(fund, "FundInsufficient")
        .withArgs(2_000n * USDC, 2_000n * USDC + 1n);
      expect(await fund.balance()).to.equal(2_000n * USDC);
      expect(await token.balanceOf(coverer.address)).to.equal(0n);
      expect(await valueOf(fund, alice.address)).to.equal(1_000n * USDC);
      // exactly the whole balance is allowed
      await fund.connect(coverer).cover(2_000n * USDC);
      expect(await fund.balance()).to.equal(0n);
    });

    it("a zero cover is a no-op", async function () {
      const { fund, coverer } = await loadFixture(stakedFixture);
      await expect(fund.connect(coverer).cover(0)).not.to.emit(fund, "Covered");
      expect(await fund.balance()).to.equal(2_000n * USDC);
    });
  });

  describe("unstaking", function () {
    it("request moves the shares into custody without changing supply or price", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const supply = await f.fund.totalSupply();
      const now = BigInt(await time.latest());
      await expect(f.fund.connect(f.alice).requestUnstake(shares))
        .to.emit(f.fund, "UnstakeRequested")
        .withArgs(1n, f.alice.address, shares, 1_000n * USDC, now + 1n + 7n * DAY);
      expect(await f.fund.balanceOf(f.alice.address)).to.equal(0n);
      expect(await f.fund.balanceOf(await f.fund.getAddress())).to.equal(shares);
      expect(await f.fund.totalPendingShares()).to.equal(shares);
      expect(await f.fund.totalSupply()).to.equal(supply);
      expect(await f.fund.convertToAssets(supply)).to.equal(2_000n * USDC);
      const r = await f.fund.getUnstakeRequest(1n);
      expect(r.owner).to.equal(f.alice.address);
      expect(r.shares).to.equal(shares);
      await expect(f.fund.connect(f.alice).requestUnstake(0)).to.be.revertedWithCustomError(f.fund, "ZeroAmount");
      await expect(f.fund.connect(f.alice).requestUnstake(1n)).to.be.revertedWithCustomError(
        f.fund,
        "ERC20InsufficientBalance",
      );
    });

    it("complete pays the value at request when the price rose; the gain stays with the others", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id, readyAt } = await request(f, 0, shares);
      await f.fund.connect(f.outsider).donate(1_000n * USDC);
      await time.increaseTo(readyAt);
      const [receiver] = f.stakers.slice(3);
      const tx = await f.fund.connect(f.alice).completeUnstake(id, receiver.address);
      await expect(tx)
        .to.emit(f.fund, "UnstakeCompleted")
        .withArgs(id, f.alice.address, receiver.address, shares, 1_000n * USDC);
      await expect(tx)
        .to.emit(f.fund, "Withdraw")
        .withArgs(f.alice.address, receiver.address, f.alice.address, 1_000n * USDC, shares);
      await expect(tx).to.changeTokenBalances(f.token, [f.fund, receiver], [-1_000n * USDC, 1_000n * USDC]);
      expect(await f.fund.totalSupply()).to.equal(await f.fund.balanceOf(f.bob.address));
      expect(await f.fund.totalPendingShares()).to.equal(0n);
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(2_000n * USDC, 1n);
      expect((await f.fund.getUnstakeRequest(id)).owner).to.equal(ethers.ZeroAddress);
    });

    it("complete pays the lower value now when a loss was covered during the cooldown", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id, readyAt } = await request(f, 0, shares);
      await f.fund.connect(f.coverer).cover(500n * USDC);
      await time.increaseTo(readyAt);
      const expected = await f.fund.convertToAssets(shares);
      expect(expected).to.be.closeTo(750n * USDC, 1n);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.changeTokenBalance(
        f.token,
        f.alice,
        expected,
      );
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(750n * USDC, 1n);
      expect(await f.fund.balance()).to.be.gte(await valueOf(f.fund, f.bob.address));
    });

    it("front-running bad debt does not help: the loss during the cooldown still reaches the requester", async function () {
      const f = await loadFixture(stakedFixture);
      // Alice sees a bankrupt position coming and asks to leave with everything at once.
      const shares = await f.fund.balanceOf(f.alice.address);
      await expect(f.fund.connect(f.alice).redeem(shares, f.alice.address, f.alice.address)).to.be.reverted;
      const { id, readyAt, assetsAtRequest } = await request(f, 0, shares);
      expect(assetsAtRequest).to.equal(1_000n * USDC);
      // She cannot leave before the cooldown ends...
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.be.revertedWithCustomError(
        f.fund,
        "CooldownActive",
      );
      // ...and the bad debt is covered in the meantime.
      await f.fund.connect(f.coverer).cover(1_200n * USDC);
      await time.increaseTo(readyAt + 1n);
      const before = await f.token.balanceOf(f.alice.address);
      await f.fund.connect(f.alice).completeUnstake(id, f.alice.address);
      const paid = (await f.token.balanceOf(f.alice.address)) - before;
      // Both stakers bear the 1,200 loss equally: 400 each left.
      expect(paid).to.be.closeTo(400n * USDC, 1n);
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(400n * USDC, 1n);
      expect(paid).to.be.lte(await valueOf(f.fund, f.bob.address));
    });

    it("complete before readyAt reverts with the values", async function () {
      const f = await loadFixture(stakedFixture);
      const { id, readyAt } = await request(f, 0, 10n ** 9n);
      await time.setNextBlockTimestamp(readyAt - 1n);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address))
        .to.be.revertedWithCustomError(f.fund, "CooldownActive")
        .withArgs(id, readyAt, readyAt - 1n);
      await time.setNextBlockTimestamp(readyAt);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.emit(f.fund, "UnstakeCompleted");
    });

    it("a matured request lapses after the completion window: it can then only be cancelled", async function () {
      const f = await loadFixture(stakedFixture);
      const { id, readyAt } = await request(f, 0, 10n ** 9n);
      const window = await f.fund.COMPLETION_WINDOW();
      const expiredAt = readyAt + window;
      // Parking a matured request to exit ahead of a visible cover is not possible for long.
      await time.setNextBlockTimestamp(expiredAt + 1n);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address))
        .to.be.revertedWithCustomError(f.fund, "UnstakeRequestExpired")
        .withArgs(id, expiredAt, expiredAt + 1n);
      expect((await f.fund.getUnstakeRequest(id)).shares).to.equal(10n ** 9n);
      await expect(f.fund.connect(f.alice).cancelUnstake(id)).to.emit(f.fund, "UnstakeCancelled");
    });

    it("a request is still completable at the last second of its completion window", async function () {
      const f = await loadFixture(stakedFixture);
      const { id, readyAt } = await request(f, 0, 10n ** 9n);
      await time.setNextBlockTimestamp(readyAt + (await f.fund.COMPLETION_WINDOW()));
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.emit(f.fund, "UnstakeCompleted");
    });

    it("only the owner may complete or cancel; unknown and finished requests revert", async function () {
      const f = await loadFixture(stakedFixture);
      const { id, readyAt } = await request(f, 0, 10n ** 9n);
      await time.increaseTo(readyAt);
      await expect(f.fund.connect(f.bob).completeUnstake(id, f.bob.address))
        .to.be.revertedWithCustomError(f.fund, "NotRequestOwner")
        .withArgs(id, f.bob.address, f.alice.address);
      await expect(f.fund.connect(f.bob).cancelUnstake(id))
        .to.be.revertedWithCustomError(f.fund, "NotRequestOwner")
        .withArgs(id, f.bob.address, f.alice.address);
      await expect(f.fund.connect(f.alice).completeUnstake(99n, f.alice.address))
        .to.be.revertedWithCustomError(f.fund, "UnknownRequest")
        .withArgs(99n);
      await expect(f.fund.connect(f.alice).completeUnstake(id, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.fund,
        "ZeroAddress",
      );
      await f.fund.connect(f.alice).completeUnstake(id, f.alice.address);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address))
        .to.be.revertedWithCustomError(f.fund, "UnknownRequest")
        .withArgs(id);
      await expect(f.fund.connect(f.alice).cancelUnstake(id))
        .to.be.revertedWithCustomError(f.fund, "UnknownRequest")
        .withArgs(id);
    });

    it("cancel returns the shares when the price did not rise", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id } = await request(f, 0, shares);
      await expect(f.fund.connect(f.alice).cancelUnstake(id))
        .to.emit(f.fund, "UnstakeCancelled")
        .withArgs(id, f.alice.address, shares, 0n);
      expect(await f.fund.balanceOf(f.alice.address)).to.equal(shares);
      expect(await f.fund.totalPendingShares()).to.equal(0n);
      // after a loss, all shares come back too (they carry the loss)
      const second = await request(f, 0, shares);
      await f.fund.connect(f.coverer).cover(1_000n * USDC);
      await f.fund.connect(f.alice).cancelUnstake(second.id);
      expect(await f.fund.balanceOf(f.alice.address)).to.equal(shares);
      expect(await valueOf(f.fund, f.alice.address)).to.be.closeTo(500n * USDC, 1n);
    });

    it("cancel after a rise returns only shares worth the value at request; the gain stays with the others", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id } = await request(f, 0, shares);
      await f.fund.connect(f.outsider).donate(1_000n * USDC);
      const tx = f.fund.connect(f.alice).cancelUnstake(id);
      await expect(tx).to.emit(f.fund, "UnstakeCancelled");
      const back = await f.fund.balanceOf(f.alice.address);
      expect(back).to.be.lt(shares);
      expect(await f.fund.totalSupply()).to.equal(back + (await f.fund.balanceOf(f.bob.address)));
      const aliceValue = await valueOf(f.fund, f.alice.address);
      expect(aliceValue).to.be.lte(1_000n * USDC);
      expect(aliceValue).to.be.closeTo(1_000n * USDC, 2n);
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(2_000n * USDC, 2n);
    });

    it("custody shares are counted once: holders' value plus custody value never exceeds assets", async function () {
      const f = await loadFixture(stakedFixture);
      await request(f, 0, (await f.fund.balanceOf(f.alice.address)) / 3n);
      await f.fund.connect(f.outsider).donate(7n);
      const fundAddress = await f.fund.getAddress();
      const custody = await f.fund.balanceOf(fundAddress);
      expect(custody).to.equal(await f.fund.totalPendingShares());
      const total =
        (await valueOf(f.fund, f.alice.address)) +
        (await valueOf(f.fund, f.bob.address)) +
        (await f.fund.convertToAssets(custody));
      expect(total).to.be.lte(await f.fund.totalAssets());
      expect(await f.fund.totalAssets()).to.equal(await f.fund.balance());
      // ...and with a reserve out, the custody shares are priced without it like every other share.
      await f.fund.connect(f.coverer).reserve(KEY_A, 500n * USDC);
      expect(await f.fund.totalAssets()).to.equal((await f.fund.balance()) - 500n * USDC);
      const totalDuringSession =
        (await valueOf(f.fund, f.alice.address)) +
        (await valueOf(f.fund, f.bob.address)) +
        (await f.fund.convertToAssets(custody));
      expect(totalDuringSession).to.be.lte(await f.fund.totalAssets());
    });
  });

  describe("reserves", function () {
    it("reserve, coverFromReserve and release move money between available and reserved", async function () {
      const f = await loadFixture(stakedFixture);
      const fund = f.fund.connect(f.coverer);
      await expect(fund.reserve(KEY_A, 300n * USDC))
        .to.emit(f.fund, "Reserved")
        .withArgs(KEY_A, 300n * USDC, 300n * USDC);
      await expect(fund.reserve(KEY_A, 100n * USDC))
        .to.emit(f.fund, "Reserved")
        .withArgs(KEY_A, 100n * USDC, 400n * USDC);
      await fund.reserve(KEY_B, 50n * USDC);
      expect(await f.fund.reserveOf(KEY_A)).to.equal(400n * USDC);
      expect(await f.fund.totalReserved()).to.equal(450n * USDC);
      expect(await f.fund.balance()).to.equal(2_000n * USDC);
      expect(await f.fund.available()).to.equal(1_550n * USDC);
      // reserved money counts as spent: it left the assets and the share price
      expect(await f.fund.totalAssets()).to.equal(1_550n * USDC);
      expect(await valueOf(f.fund, f.alice.address)).to.equal(775n * USDC);

      const tx = await fund.coverFromReserve(KEY_A, 150n * USDC);
      await expect(tx)
        .to.emit(f.fund, "ReserveUsed")
        .withArgs(KEY_A, f.coverer.address, 150n * USDC, 250n * USDC)
        .and.to.emit(f.fund, "Covered")
        .withArgs(f.coverer.address, 150n * USDC);
      await expect(tx).to.changeTokenBalances(f.token, [f.fund, f.coverer], [-150n * USDC, 150n * USDC]);
      expect(await f.fund.reserveOf(KEY_A)).to.equal(250n * USDC);
      expect(await f.fund.totalReserved()).to.equal(300n * USDC);
      expect(await f.fund.available()).to.equal(1_550n * USDC);
      // paying from a reserve does not move the share price: the money had already left it
      expect(await valueOf(f.fund, f.alice.address)).to.equal(775n * USDC);

      await expect(fund.release(KEY_A))
        .to.emit(f.fund, "Released")
        .withArgs(KEY_A, 250n * USDC);
      expect(await f.fund.reserveOf(KEY_A)).to.equal(0n);
      expect(await f.fund.totalReserved()).to.equal(50n * USDC);
      expect(await f.fund.available()).to.equal(1_800n * USDC);
      expect(await f.fund.totalAssets()).to.equal(1_800n * USDC);
      expect(await valueOf(f.fund, f.alice.address)).to.equal(900n * USDC);
      await expect(fund.release(KEY_A)).not.to.emit(f.fund, "Released");
    });

    it("reserve is capped at available and cover cannot take reserved money", async function () {
      const f = await loadFixture(stakedFixture);
      const fund = f.fund.connect(f.coverer);
      await fund.reserve(KEY_A, 1_500n * USDC);
      await expect(fund.reserve(KEY_B, 500n * USDC + 1n))
        .to.be.revertedWithCustomError(f.fund, "FundInsufficient")
        .withArgs(500n * USDC, 500n * USDC + 1n);
      await expect(fund.cover(500n * USDC + 1n))
        .to.be.revertedWithCustomError(f.fund, "FundInsufficient")
        .withArgs(500n * USDC, 500n * USDC + 1n);
      await expect(fund.coverFromReserve(KEY_A, 1_500n * USDC + 1n))
        .to.be.revertedWithCustomError(f.fund, "ReserveInsufficient")
        .withArgs(KEY_A, 1_500n * USDC, 1_500n * USDC + 1n);
      await expect(fund.coverFromReserve(KEY_B, 1n))
        .to.be.revertedWithCustomError(f.fund, "ReserveInsufficient")
        .withArgs(KEY_B, 0n, 1n);
      expect(await f.fund.totalReserved()).to.equal(1_500n * USDC);
      await fund.cover(500n * USDC);
      expect(await f.fund.available()).to.equal(0n);
      await fund.coverFromReserve(KEY_A, 1_500n * USDC);
      expect(await f.fund.balance()).to.equal(0n);
      expect(await f.fund.totalReserved()).to.equal(0n);
    });

    it("reserve functions are for the drawers only", async function () {
      const f = await loadFixture(stakedFixture);
      await f.fund.connect(f.coverer).reserve(KEY_A, 100n * USDC);
      for (const who of [f.alice, f.admin]) {
        const fund = f.fund.connect(who);
        for (const call of [
          () => fund.reserve(KEY_A, 1n),
          () => fund.release(KEY_A),
          () => fund.coverFromReserve(KEY_A, 1n),
        ]) {
          await expect(call()).to.be.revertedWithCustomError(f.fund, "FundCallerNotDrawer").withArgs(who.address);
        }
      }
      expect(await f.fund.reserveOf(KEY_A)).to.equal(100n * USDC);
    });

    it("an unstake maturing during a session is paid without the reserve; a later release goes to those who stayed", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id, readyAt, assetsAtRequest } = await request(f, 0, shares);
      expect(assetsAtRequest).to.equal(1_000n * USDC);
      await f.fund.connect(f.coverer).reserve(KEY_A, 1_500n * USDC);
      await time.increaseTo(readyAt);
      // Alice's shares are worth half of the 500 left: she leaves with 250 while the session runs.
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.changeTokenBalance(
        f.token,
        f.alice,
        250n * USDC,
      );
      // The session ends without a trade: the 1,500 come back to Bob, the only staker left.
      await f.fund.connect(f.coverer).release(KEY_A);
      expect(await valueOf(f.fund, f.bob.address)).to.equal(1_750n * USDC - 1n);
      expect(await f.fund.balance()).to.equal(1_750n * USDC);
    });

    it("a request made during a session keeps its part of a reserve that comes back", async function () {
      const f = await loadFixture(stakedFixture);
      await f.fund.connect(f.coverer).reserve(KEY_A, 1_200n * USDC);
      expect(await valueOf(f.fund, f.alice.address)).to.equal(400n * USDC);
      const shares = await f.fund.balanceOf(f.alice.address);
      // The value at request counts the reserve as if it came back: it caps the payout, it is not paid.
      const { id, readyAt, assetsAtRequest } = await request(f, 0, shares);
      expect(assetsAtRequest).to.equal(1_000n * USDC);
      await f.fund.connect(f.coverer).release(KEY_A);
      await time.increaseTo(readyAt);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.changeTokenBalance(
        f.token,
        f.alice,
        1_000n * USDC,
      );
      expect(await valueOf(f.fund, f.bob.address)).to.equal(1_000n * USDC);
    });

    it("a request made during a session bears its part of a reserve that is spent", async function () {
      const f = await loadFixture(stakedFixture);
      await f.fund.connect(f.coverer).reserve(KEY_A, 1_200n * USDC);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id, readyAt } = await request(f, 0, shares);
      await f.fund.connect(f.coverer).coverFromReserve(KEY_A, 1_200n * USDC);
      await time.increaseTo(readyAt);
      await expect(f.fund.connect(f.alice).completeUnstake(id, f.alice.address)).to.changeTokenBalance(
        f.token,
        f.alice,
        400n * USDC,
      );
      expect(await valueOf(f.fund, f.bob.address)).to.equal(400n * USDC);
      expect(await f.fund.balance()).to.equal(400n * USDC);
    });

    it("a request cancelled during a session gets all its shares back, and with them its part of the release", async function () {
      const f = await loadFixture(stakedFixture);
      const shares = await f.fund.balanceOf(f.alice.address);
      const { id } = await request(f, 0, shares);
      await f.fund.connect(f.coverer).reserve(KEY_A, 1_000n * USDC);
      await expect(f.fund.connect(f.alice).cancelUnstake(id))
        .to.emit(f.fund, "UnstakeCancelled")
        .withArgs(id, f.alice.address, shares, 0n);
      await f.fund.connect(f.coverer).release(KEY_A);
      expect(await valueOf(f.fund, f.alice.address)).to.equal(1_000n * USDC);
    });

    it("stakes are refused while any reserve is out, and accepted again once every reserve is back", async function () {
      const f = await loadFixture(stakedFixture);
      const [, , carol] = f.stakers;
      await f.fund.connect(f.coverer).reserve(KEY_A, 100n * USDC);
      await f.fund.connect(f.coverer).reserve(KEY_B, 50n * USDC);
      for (const stake of [
        () => f.fund.connect(carol).deposit(USDC, carol.address),
        () => f.fund.connect(carol).mint(10n ** 12n, carol.address),
      ]) {
        await expect(stake())
          .to.be.revertedWithCustomError(f.fund, "FundDepositDuringReserve")
          .withArgs(150n * USDC);
      }
      expect(await f.fund.maxDeposit(carol.address)).to.equal(0n);
      expect(await f.fund.maxMint(carol.address)).to.equal(0n);
      // Donations still raise the price of the shares held during the session.
      await f.fund.connect(f.outsider).donate(150n * USDC);
      expect(await valueOf(f.fund, f.alice.address)).to.equal(1_000n * USDC);
      await f.fund.connect(f.coverer).release(KEY_A);
      await expect(f.fund.connect(carol).deposit(USDC, carol.address)).to.be.revertedWithCustomError(
        f.fund,
        "FundDepositDuringReserve",
      );
      await f.fund.connect(f.coverer).coverFromReserve(KEY_B, 50n * USDC);
      expect(await f.fund.maxDeposit(carol.address)).to.equal(ethers.MaxUint256);
      expect(await f.fund.maxMint(carol.address)).to.equal(ethers.MaxUint256);
      await f.fund.connect(carol).deposit(1_050n * USDC, carol.address);
      // Shares are worth 1.05 tokens per 10^6 now; the stake rounds down by one unit, in the fund's favour.
      expect(await valueOf(f.fund, carol.address)).to.equal(1_050n * USDC - 1n);
    });

    it("a reserve whose release was lost is released by anyone once stale, and not a second earlier", async function () {
      const f = await loadFixture(stakedFixture);
      const age = await f.fund.STALE_RESERVE_AGE();
      expect(age).to.equal(7n * DAY);
      await f.fund.connect(f.coverer).reserve(KEY_A, 300n * USDC);
      await time.increase(DAY);
      // A top-up restarts the clock.
      await f.fund.connect(f.coverer).reserve(KEY_A, 100n * USDC);
      const reservedAt = await f.fund.reservedAt(KEY_A);
      expect(reservedAt).to.equal(BigInt(await time.latest()));
      const staleAt = reservedAt + age;
      await time.setNextBlockTimestamp(staleAt - 1n);
      await expect(f.fund.connect(f.outsider).releaseStale(KEY_A))
        .to.be.revertedWithCustomError(f.fund, "FundReserveNotStale")
        .withArgs(KEY_A, staleAt, staleAt - 1n);
      await expect(f.fund.connect(f.outsider).releaseStale(KEY_B))
        .to.be.revertedWithCustomError(f.fund, "FundReserveEmpty")
        .withArgs(KEY_B);
      const tx = f.fund.connect(f.outsider).releaseStale(KEY_A);
      await expect(tx)
        .to.emit(f.fund, "StaleReserveReleased")
        .withArgs(KEY_A, f.outsider.address, 400n * USDC, reservedAt)
        .and.to.emit(f.fund, "Released")
        .withArgs(KEY_A, 400n * USDC);
      expect(await f.fund.reserveOf(KEY_A)).to.equal(0n);
      expect(await f.fund.reservedAt(KEY_A)).to.equal(0n);
      expect(await f.fund.totalReserved()).to.equal(0n);
      expect(await valueOf(f.fund, f.alice.address)).to.equal(1_000n * USDC);
      // A drawer's later release of the same key finds nothing and does nothing.
      await expect(f.fund.connect(f.coverer).release(KEY_A)).not.to.emit(f.fund, "Released");
    });

    it("paying out a whole reserve clears its key", async function () {
      const f = await loadFixture(stakedFixture);
      await f.fund.connect(f.coverer).reserve(KEY_A, 300n * USDC);
      await f.fund.connect(f.coverer).coverFromReserve(KEY_A, 300n * USDC);
      expect(await f.fund.reserveOf(KEY_A)).to.equal(0n);
      expect(await f.fund.reservedAt(KEY_A)).to.equal(0n);
      await expect(f.fund.connect(f.outsider).releaseStale(KEY_A))
        .to.be.revertedWithCustomError(f.fund, "FundReserveEmpty")
        .withArgs(KEY_A);
    });
  });

  describe("first-depositor inflation attack", function () {
    for (const donation of [10_000n * USDC, 1_000_000n * USDC, 10n ** 8n * USDC]) {
      it(`an attacker donating ${donation / USDC} tokens cannot take a material share of the victim's deposit`, async function () {
        const { fund, token, stakers } = await loadFixture(fundFixture);
        const [attacker, victim] = stakers;
        await token.mint(attacker.address, donation);
        const attackerStart = await token.balanceOf(attacker.address);
        await fund.connect(attacker).deposit(1n, attacker.address);
        // donate() and a plain transfer have the same effect on the price; use the plain transfer
        await token.connect(attacker).transfer(await fund.getAddress(), donation);
        const deposit = 1_000n * USDC;
        await fund.connect(victim).deposit(deposit, victim.address);
        expect(await fund.balanceOf(victim.address)).to.be.gt(0n);
        const victimValue = await valueOf(fund, victim.address);
        // Rounding loses the victim at most about one share's worth: donation / (2 * 10^6).
        const victimLoss = deposit - victimValue;
        expect(victimLoss).to.be.lte(donation / VIRTUAL_SHARES + 1n);
        // For donations up to 1,000x the victim's deposit the loss stays under 0.1%.
        if (donation <= 1_000n * deposit) expect(victimLoss).to.be.lte(deposit / 1_000n);
        // The attacker gets back about half of what it put in: it loses far more than the victim.
        const attackerValue = await valueOf(fund, attacker.address);
        const attackerCost = attackerStart - (await token.balanceOf(attacker.address));
        expect(attackerValue).to.be.lt(attackerCost);
        const attackerLoss = attackerCost - attackerValue;
        expect(attackerLoss).to.be.gte((donation * 4n) / 10n);
        expect(attackerLoss).to.be.gte(victimLoss * 100_000n);
      });
    }
  });

  describe("fee source (mock)", function () {
    async function withMockSource() {
      const f = await stakedFixture();
      const source = await ethers.deployContract("MockFeeSource", [await f.token.getAddress()]);
      await source.setInsuranceFund(await f.fund.getAddress());
      await f.fund.connect(f.admin).setFeeSource(await source.getAddress());
      return { ...f, source };
    }

    it("deposit, mint, requestUnstake, completeUnstake and cancelUnstake sweep first; the others do not", async function () {
      const f = await loadFixture(withMockSource);
      const src = await f.source.getAddress();
      const pend = () => f.token.mint(src, 10n * USDC);
      await pend();
      await expect(f.fund.connect(f.alice).deposit(USDC, f.alice.address))
        .to.emit(f.source, "Swept")
        .withArgs(10n * USDC);
      await pend();
      await expect(f.fund.connect(f.alice).mint(10n ** 9n, f.alice.address)).to.emit(f.source, "Swept");
      await pend();
      const id = await f.fund.nextRequestId();
      await expect(f.fund.connect(f.alice).requestUnstake(10n ** 9n)).to.emit(f.source, "Swept");
      await pend();
      await expect(f.fund.connect(f.alice).cancelUnstake(id)).to.emit(f.source, "Swept");
      const second = await request(f, 0, 10n ** 9n);
      await time.increaseTo(second.readyAt);
      await pend();
      await expect(f.fund.connect(f.alice).completeUnstake(second.id, f.alice.address)).to.emit(f.source, "Swept");
      await pend();
      await expect(f.fund.connect(f.coverer).cover(USDC)).not.to.emit(f.source, "Swept");
      await expect(f.fund.connect(f.outsider).donate(USDC)).not.to.emit(f.source, "Swept");
      await expect(f.fund.connect(f.coverer).reserve(KEY_A, USDC)).not.to.emit(f.source, "Swept");
    });

    it("pending fees are priced in before a new stake: they belong to the stakers already in", async function () {
      const f = await loadFixture(withMockSource);
      const [, , carol] = f.stakers;
      await f.token.mint(await f.source.getAddress(), 200n * USDC);
      await f.fund.connect(carol).deposit(2_200n * USDC, carol.address);
      expect(await valueOf(f.fund, carol.address)).to.be.closeTo(2_200n * USDC, 1n);
      expect(await valueOf(f.fund, f.alice.address)).to.be.closeTo(1_100n * USDC, 1n);
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(1_100n * USDC, 1n);
    });

    it("a fee source cannot re-enter the fund during the sweep", async function () {
      const f = await loadFixture(withMockSource);
      await f.source.setReenterCall(f.fund.interface.encodeFunctionData("donate", [1n]));
      await expect(f.fund.connect(f.alice).deposit(USDC, f.alice.address)).to.be.revertedWithCustomError(
        f.fund,
        "ReentrancyGuardReentrantCall",
      );
    });
  });

  describe("fee source (real Clearinghouse)", function () {
    async function withClearinghouse() {
      const f = await systemFixture();
      const [admin, , , , , , , , , , , , alice, bob, drawer] = await ethers.getSigners();
      // A second fund over the same clearinghouse; `drawer` stands in for its deleverager.
      const fund = await ethers.deployContract("InsuranceFund", [
        await f.token.getAddress(),
        admin.address,
        await f.clearinghouse.getAddress(),
        drawer.address,
      ]);
      for (const s of [alice, bob]) {
        await f.token.mint(s.address, 1_000_000n * USDC);
        await f.token.connect(s).approve(await fund.getAddress(), ethers.MaxUint256);
      }
      return { ...f, fund, admin, alice, bob, drawer };
    }

    async function trade(f: Awaited<ReturnType<typeof withClearinghouse>>) {
      const [t0, t1] = f.traders;
      const maker = buildOrder(t0.address, { marketId: f.ethId, size: WAD, limitPrice: ETH_PRICE });
      const taker = buildOrder(t1.address, { marketId: f.ethId, size: -WAD, limitPrice: ETH_PRICE });
      await signAndMatch(f.clearinghouse, f.keeper, { signer: t0, order: maker }, { signer: t1, order: taker });
    }

    it("setFeeSource checks the clearinghouse's collateral and fund; admin only; zero disables", async function () {
      const f = await loadFixture(withClearinghouse);
      const ch = await f.clearinghouse.getAddress();
      await expect(f.fund.connect(f.admin).setFeeSource(ch))
        .to.be.revertedWithCustomError(f.fund, "FeeSourceMismatch")
        .withArgs(ch);
      await f.clearinghouse.connect(f.admin).setInsuranceFund(await f.fund.getAddress());
      const other = await ethers.deployContract("MockERC20", ["Other", "OTH", 6]);
      const otherFund = await ethers.deployContract("InsuranceFund", [
        await other.getAddress(),
        f.admin.address,
        ch,
        f.drawer.address,
      ]);
      await expect(otherFund.connect(f.admin).setFeeSource(ch))
        .to.be.revertedWithCustomError(otherFund, "FeeSourceMismatch")
        .withArgs(ch);
      await expect(f.fund.connect(f.alice).setFeeSource(ch))
        .to.be.revertedWithCustomError(f.fund, "AccessControlUnauthorizedAccount")
        .withArgs(f.alice.address, DEFAULT_ADMIN_ROLE);
      await expect(f.fund.connect(f.admin).setFeeSource(ch)).to.emit(f.fund, "FeeSourceSet").withArgs(ch);
      expect(await f.fund.feeSource()).to.equal(ch);
      await expect(f.fund.connect(f.admin).setFeeSource(ethers.ZeroAddress))
        .to.emit(f.fund, "FeeSourceSet")
        .withArgs(ethers.ZeroAddress);
    });

    it("every entry and exit sweeps pending fees first, so they go to the existing stakers", async function () {
      const f = await loadFixture(withClearinghouse);
      const fundAddress = await f.fund.getAddress();
      await f.clearinghouse.connect(f.admin).setInsuranceFund(fundAddress);
      await f.fund.connect(f.admin).setFeeSource(await f.clearinghouse.getAddress());
      await f.fund.connect(f.alice).deposit(1_000n * USDC, f.alice.address);

      await trade(f);
      const scale = await f.clearinghouse.collateralScale();
      const fees = (await f.clearinghouse.pendingFundFees()) / scale;
      expect(fees).to.be.gt(0n);
      // Bob's deposit pulls the fees in before it is priced: they are Alice's alone.
      await expect(f.fund.connect(f.bob).deposit(1_000n * USDC, f.bob.address))
        .to.emit(f.clearinghouse, "FundFeesSwept")
        .withArgs(fundAddress, fees);
      expect(await f.fund.balance()).to.equal(2_000n * USDC + fees);
      expect(await valueOf(f.fund, f.alice.address)).to.be.closeTo(1_000n * USDC + fees, 1n);
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(1_000n * USDC, 1n);

      // A request also sweeps first, and its recorded value includes the fees.
      await trade(f);
      const fees2 = (await f.clearinghouse.pendingFundFees()) / scale;
      const shares = await f.fund.balanceOf(f.alice.address);
      const assetsAfterSweep = (await f.fund.totalAssets()) + fees2;
      const expected = (shares * (assetsAfterSweep + 1n)) / ((await f.fund.totalSupply()) + VIRTUAL_SHARES);
      await expect(f.fund.connect(f.alice).requestUnstake(shares)).to.emit(f.clearinghouse, "FundFeesSwept");
      const r = await f.fund.getUnstakeRequest(1n);
      expect(r.assetsAtRequest).to.equal(expected);
      expect(r.assetsAtRequest).to.be.gt(1_000n * USDC + fees);

      // Fees arriving during the cooldown stay with the remaining staker.
      await trade(f);
      const fees3 = (await f.clearinghouse.pendingFundFees()) / scale;
      await time.increaseTo(r.readyAt);
      const tx = await f.fund.connect(f.alice).completeUnstake(1n, f.alice.address);
      await expect(tx).to.emit(f.clearinghouse, "FundFeesSwept");
      await expect(tx).to.changeTokenBalance(f.token, f.alice, r.assetsAtRequest);
      expect(await f.fund.balance()).to.equal(2_000n * USDC + fees + fees2 + fees3 - r.assetsAtRequest);
      expect(await valueOf(f.fund, f.bob.address)).to.be.closeTo(await f.fund.balance(), 1n);

      // cover does not sweep (the clearinghouse calls it under its own lock)
      await f.setPrice(ETH, ETH_PRICE); // the feed went stale during the cooldown
      await trade(f);
      expect(await f.clearinghouse.pendingFundFees()).to.be.gt(0n);
      await expect(f.fund.connect(f.drawer).cover(USDC)).not.to.emit(f.clearinghouse, "FundFeesSwept");
    });
  });
});
