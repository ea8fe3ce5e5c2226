/**
 * Insurance-fund accounting under attack (docs/insurance-fund.md, docs/security.md "Settlement
 * findings fixed so far"): each test replays an attack and asserts the fixed behaviour. The fund is
 * deployed alone; `coverer` stands in for a drawer (the clearinghouse or the deleverager).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { COVER_ROLE, HOUR, USDC, fundFixture, valueOf } from "./fixture";

const SESSION = ethers.id("session");

/** Alice and Bob each staked 1,000 tokens: 10^15 shares each, one token per 10^6 shares. */
async function twoStakers() {
  const f = await fundFixture();
  const [alice, bob, carol] = f.stakers;
  await f.fund.connect(alice).deposit(1_000n * USDC, alice.address);
  await f.fund.connect(bob).deposit(1_000n * USDC, bob.address);
  return { ...f, alice, bob, carol };
}

describe("Insurance fund accounting: attacks", function () {
  describe("reserve in share price", function () {
    it("an unstaker maturing during a session exits at the post-reserve value, not out of a newcomer's deposit", async function () {
      const { fund, token, coverer, stakers } = await loadFixture(fundFixture);
      const [alice, carol] = stakers;
      await fund.connect(alice).deposit(1_000n * USDC, alice.address);
      const shares = await fund.balanceOf(alice.address);
      expect(shares).to.equal(10n ** 15n);
      const id = await fund.nextRequestId();
      await fund.connect(alice).requestUnstake(shares);
      const { readyAt, assetsAtRequest } = await fund.getUnstakeRequest(id);
      expect(assetsAtRequest).to.equal(1_000n * USDC);

      // An hour before the request matures, a session sets 667 tokens aside for a bankrupt position.
      await time.increaseTo(readyAt - HOUR);
      await fund.connect(coverer).reserve(SESSION, 667n * USDC);
      // From the stakers' point of view the reserve is spent: Alice's shares are worth 333.
      expect(await fund.balance()).to.equal(1_000n * USDC);
      expect(await fund.totalAssets()).to.equal(333n * USDC);
      expect(await fund.convertToAssets(shares)).to.equal(333n * USDC);

      // The attack: a newcomer stakes 667 so that the unstaker can be paid 1,000 out of it.
      await time.increaseTo(readyAt);
      await expect(fund.connect(carol).deposit(667n * USDC, carol.address))
        .to.be.revertedWithCustomError(fund, "FundDepositDuringReserve")
        .withArgs(667n * USDC);
      // Alice leaves with what her shares are worth after the reserve: 333, not 1,000.
      await expect(fund.connect(alice).completeUnstake(id, alice.address)).to.changeTokenBalances(
        token,
        [alice, fund],
        [333n * USDC, -333n * USDC],
      );
      // The session spends its reserve; the fund is empty, and the newcomer lost nothing.
      await fund.connect(coverer).coverFromReserve(SESSION, 667n * USDC);
      expect(await fund.balance()).to.equal(0n);
      expect(await fund.totalSupply()).to.equal(0n);
      expect(await token.balanceOf(carol.address)).to.equal(10_000_000n * USDC);
      // Once the session is over the newcomer enters at the post-loss value and owns what it paid.
      await fund.connect(carol).deposit(667n * USDC, carol.address);
      expect(await valueOf(fund, carol.address)).to.equal(667n * USDC);
    });

    it("a reserve released by a session that ended without a trade comes back into the assets and the share price", async function () {
      const { fund, coverer, alice, bob } = await loadFixture(twoStakers);
      await fund.connect(coverer).reserve(SESSION, 600n * USDC);
      expect(await fund.totalAssets()).to.equal(1_400n * USDC);
      expect(await valueOf(fund, alice.address)).to.equal(700n * USDC);
      expect(await valueOf(fund, bob.address)).to.equal(700n * USDC);
      expect(await fund.maxDeposit(alice.address)).to.equal(0n);

      await expect(fund.connect(coverer).release(SESSION))
        .to.emit(fund, "Released")
        .withArgs(SESSION, 600n * USDC);
      expect(await fund.totalAssets()).to.equal(2_000n * USDC);
      expect(await valueOf(fund, alice.address)).to.equal(1_000n * USDC);
      expect(await valueOf(fund, bob.address)).to.equal(1_000n * USDC);
      expect(await fund.maxDeposit(alice.address)).to.equal(ethers.MaxUint256);
    });
  });

  describe("release capture", function () {
    it("a deposit during a session that set the whole fund aside would buy almost every share; it is refused", async function () {
      const { fund, coverer, alice, carol: mallory } = await loadFixture(twoStakers);
      // Sessions open only when the fund falls short, so they set aside everything available.
      await fund.connect(coverer).reserve(SESSION, 2_000n * USDC);
      expect(await fund.totalAssets()).to.equal(0n);
      // At that price one token buys 2 * 10^21 + 10^12 shares against the stakers' 2 * 10^15:
      // had it been accepted, the release would have handed the newcomer 2,000.998 of 2,001 tokens.
      expect(await fund.previewDeposit(USDC)).to.equal(2_000_000_001_000_000_000_000n);
      await expect(fund.connect(mallory).deposit(USDC, mallory.address))
        .to.be.revertedWithCustomError(fund, "FundDepositDuringReserve")
        .withArgs(2_000n * USDC);
      await expect(fund.connect(mallory).mint(10n ** 12n, mallory.address))
        .to.be.revertedWithCustomError(fund, "FundDepositDuringReserve")
        .withArgs(2_000n * USDC);
      expect(await fund.maxDeposit(mallory.address)).to.equal(0n);
      expect(await fund.maxMint(mallory.address)).to.equal(0n);
      expect(await fund.balanceOf(mallory.address)).to.equal(0n);

      // The session ends without a trade: the stakers get their money back, and the newcomer now
      // enters at the full price.
      await fund.connect(coverer).release(SESSION);
      expect(await valueOf(fund, alice.address)).to.equal(1_000n * USDC);
      await fund.connect(mallory).deposit(USDC, mallory.address);
      expect(await fund.balanceOf(mallory.address)).to.equal(10n ** 12n);
      expect(await valueOf(fund, mallory.address)).to.equal(USDC);
      expect(await valueOf(fund, alice.address)).to.equal(1_000n * USDC);
    });
  });

  describe("admin grants itself cover", function () {
    it("the fund's admin can neither grant itself the right to draw nor draw on the stakers' money", async function () {
      const { fund, token, admin } = await loadFixture(twoStakers);
      await expect(fund.connect(admin).grantRole(COVER_ROLE, admin.address))
        .to.be.revertedWithCustomError(fund, "FundRoleNotGrantable")
        .withArgs(COVER_ROLE);
      expect(await fund.hasRole(COVER_ROLE, admin.address)).to.equal(false);
      for (const draw of [
        () => fund.connect(admin).cover(2_000n * USDC),
        () => fund.connect(admin).reserve(SESSION, 2_000n * USDC),
        () => fund.connect(admin).coverFromReserve(SESSION, 1n),
        () => fund.connect(admin).release(SESSION),
      ]) {
        await expect(draw()).to.be.revertedWithCustomError(fund, "FundCallerNotDrawer").withArgs(admin.address);
      }
      expect(await fund.balance()).to.equal(2_000n * USDC);
      expect(await fund.totalReserved()).to.equal(0n);
      expect(await token.balanceOf(admin.address)).to.equal(0n);
    });
  });
});
