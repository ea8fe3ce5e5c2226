import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { systemFixture, ETH_PRICE, USDC, SCALE } from "../helpers/fixture";
import { open, snapshot, expectUnchanged } from "../helpers/clearinghouse";
import { WAD } from "../../lib/math";
import { MockERC20__factory, MockFeeOnTransferToken__factory } from "../../typechain-types";
import { deployClearinghouse } from "../../lib/local";

describe("Clearinghouse accounts", function () {
  describe("deposit", function () {
    it("credits tokenAmount * 1e12 to free collateral for a 6-decimal token and emits Deposited", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      const before = await f.clearinghouse.freeCollateral(alice.address);
      const chBalance = await f.token.balanceOf(await f.clearinghouse.getAddress());
      await expect(f.clearinghouse.connect(alice).deposit(alice.address, 1234567n))
        .to.emit(f.clearinghouse, "Deposited")
        .withArgs(alice.address, alice.address, 1234567n, 1234567n * SCALE);
      expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(before + 1234567n * SCALE);
      expect(await f.token.balanceOf(await f.clearinghouse.getAddress())).to.equal(chBalance + 1234567n);
    });

    it("credits another account when depositing on its behalf, paid by the sender", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const aliceFree = await f.clearinghouse.freeCollateral(alice.address);
      const bobFree = await f.clearinghouse.freeCollateral(bob.address);
      const tx = f.clearinghouse.connect(alice).deposit(bob.address, 50n * USDC);
      await expect(tx).to.changeTokenBalances(f.token, [alice, f.clearinghouse], [-50n * USDC, 50n * USDC]);
      await expect(tx)
        .to.emit(f.clearinghouse, "Deposited")
        .withArgs(alice.address, bob.address, 50n * USDC, 50n * WAD);
      expect(await f.clearinghouse.freeCollateral(bob.address)).to.equal(bobFree + 50n * WAD);
      expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(aliceFree);
    });

    it("rejects a zero amount with ZeroAmount and leaves state unchanged", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      const before = await snapshot(f.clearinghouse, [], [alice.address]);
      await expect(f.clearinghouse.connect(alice).deposit(alice.address, 0n)).to.be.revertedWithCustomError(
        f.clearinghouse,
        "ZeroAmount",
      );
      await expectUnchanged(before, f.clearinghouse, [], [alice.address]);
    });

    it("rejects the zero address as beneficiary with ZeroAddress and leaves state unchanged", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      const before = await snapshot(f.clearinghouse, [], [alice.address, ethers.ZeroAddress]);
      await expect(f.clearinghouse.connect(alice).deposit(ethers.ZeroAddress, USDC)).to.be.revertedWithCustomError(
        f.clearinghouse,
        "ZeroAddress",
      );
      await expectUnchanged(before, f.clearinghouse, [], [alice.address, ethers.ZeroAddress]);
    });

    it("rejects a fee-on-transfer token with CollateralTransferShort and credits nothing", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      const fot = await new MockFeeOnTransferToken__factory(f.admin).deploy();
      const ch = await deployClearinghouse(f.admin, await fot.getAddress(), await f.oracle.getAddress());
      await fot.mint(alice.address, 1000n * USDC);
      await fot.connect(alice).approve(await ch.getAddress(), ethers.MaxUint256);
      // 1% is burnt on transfer: 990 of 1,000 arrive.
      await expect(ch.connect(alice).deposit(alice.address, 1000n * USDC))
        .to.be.revertedWithCustomError(ch, "CollateralTransferShort")
        .withArgs(1000n * USDC, 990n * USDC);
      expect(await ch.freeCollateral(alice.address)).to.equal(0n);
      expect(await fot.balanceOf(await ch.getAddress())).to.equal(0n);
      expect(await fot.balanceOf(alice.address)).to.equal(1000n * USDC);
    });

    it("accepts a token with exactly 18 decimals at scale 1", async function () {
      const f = await loadFixture(systemFixture);
      const t18 = await new MockERC20__factory(f.admin).deploy("T18", "T18", 18);
      const ch = await deployClearinghouse(f.admin, await t18.getAddress(), await f.oracle.getAddress());
      expect(await ch.collateralScale()).to.equal(1n);
    });

    it("rejects a collateral token with more than 18 decimals in the constructor", async function () {
      const f = await loadFixture(systemFixture);
      const t19 = await new MockERC20__factory(f.admin).deploy("T19", "T19", 19);
      await expect(deployClearinghouse(f.admin, await t19.getAddress(), await f.oracle.getAddress()))
        .to.be.revertedWithCustomError(f.clearinghouse, "CollateralDecimalsTooLarge")
        .withArgs(19);
    });

    it("rejects zero addresses in the constructor", async function () {
      const f = await loadFixture(systemFixture);
      const [token, oracle, admin] = [
        await f.token.getAddress(),
        await f.oracle.getAddress(),
        await f.admin.getAddress(),
      ];
      for (const args of [
        [ethers.ZeroAddress, oracle, admin],
        [token, ethers.ZeroAddress, admin],
        [token, oracle, ethers.ZeroAddress],
      ] as const) {
        await expect(deployClearinghouse(f.admin, ...args)).to.be.revertedWithCustomError(
          f.clearinghouse,
          "ZeroAddress",
        );
      }
    });
  });

  describe("withdraw", function () {
    it("debits tokenAmount * 1e12, transfers the tokens to the recipient and emits Withdrawn", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      const before = await f.clearinghouse.freeCollateral(alice.address);
      const tx = f.clearinghouse.connect(alice).withdraw(bob.address, 2500n * USDC + 1n);
      await expect(tx).to.changeTokenBalances(
        f.token,
        [bob, f.clearinghouse],
        [2500n * USDC + 1n, -(2500n * USDC + 1n)],
      );
      await expect(tx)
        .to.emit(f.clearinghouse, "Withdrawn")
        .withArgs(alice.address, bob.address, 2500n * USDC + 1n, (2500n * USDC + 1n) * SCALE);
      expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(before - (2500n * USDC + 1n) * SCALE);
    });

    it("lets an account withdraw its whole free collateral", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      await f.clearinghouse.connect(alice).withdraw(alice.address, 100_000n * USDC);
      expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(0n);
    });

    it("reverts InsufficientFreeCollateral with the available and required amounts when asking for more than free", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      await open(f, f.ethId, alice, bob, WAD, ETH_PRICE); // locks 400 of margin and a 0.4 maker fee
      const free = await f.clearinghouse.freeCollateral(alice.address);
      expect(free).to.equal(100_000n * WAD - 400n * WAD - 4n * 10n ** 17n);
      const ask = free / SCALE + 1n;
      const before = await snapshot(f.clearinghouse, [f.ethId], [alice.address]);
      await expect(f.clearinghouse.connect(alice).withdraw(alice.address, ask))
        .to.be.revertedWithCustomError(f.clearinghouse, "InsufficientFreeCollateral")
        .withArgs(alice.address, free, ask * SCALE);
      await expectUnchanged(before, f.clearinghouse, [f.ethId], [alice.address]);
    });

    it("rejects a zero amount and the zero address as recipient", async function () {
      const f = await loadFixture(systemFixture);
      const [alice] = f.traders;
      const before = await snapshot(f.clearinghouse, [], [alice.address]);
      await expect(f.clearinghouse.connect(alice).withdraw(alice.address, 0n)).to.be.revertedWithCustomError(
        f.clearinghouse,
        "ZeroAmount",
      );
      await expect(f.clearinghouse.connect(alice).withdraw(ethers.ZeroAddress, USDC)).to.be.revertedWithCustomError(
        f.clearinghouse,
        "ZeroAddress",
      );
      await expectUnchanged(before, f.clearinghouse, [], [alice.address]);
    });

    it("keeps working while a market is paused", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      await open(f, f.ethId, alice, bob, WAD, ETH_PRICE);
      await f.clearinghouse.setPaused(f.ethId, true);
      await f.clearinghouse.setPaused(f.btcId, true);
      const before = await f.clearinghouse.freeCollateral(alice.address);
      await expect(f.clearinghouse.connect(alice).withdraw(alice.address, 1000n * USDC)).to.changeTokenBalance(
        f.token,
        alice,
        1000n * USDC,
      );
      expect(await f.clearinghouse.freeCollateral(alice.address)).to.equal(before - 1000n * WAD);
    });

    it("never touches the margin locked in a position", async function () {
      const f = await loadFixture(systemFixture);
      const [alice, bob] = f.traders;
      await open(f, f.ethId, alice, bob, WAD, ETH_PRICE);
      const free = await f.clearinghouse.freeCollateral(alice.address);
      await f.clearinghouse.connect(alice).withdraw(alice.address, free / SCALE);
      expect((await f.clearinghouse.getPosition(f.ethId, alice.address)).margin).to.equal(400n * WAD);
    });
  });
});
