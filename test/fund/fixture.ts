/** A stand-alone insurance fund over a 6-decimal mock collateral, for the fund tests. */
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { InsuranceFund, MockERC20 } from "../../typechain-types";

/** One token unit of the 6-decimal collateral. */
export const USDC = 10n ** 6n;
/** 10^_decimalsOffset(): virtual shares per virtual asset unit. */
export const VIRTUAL_SHARES = 10n ** 6n;
/** The id of the role that let its holders draw before the drawers were fixed; the fund refuses to grant it. */
export const COVER_ROLE = ethers.id("COVER_ROLE");
export const DEFAULT_ADMIN_ROLE = ethers.ZeroHash;
export const HOUR = 3600n;
export const DAY = 24n * HOUR;

export interface FundFixture {
  fund: InsuranceFund;
  token: MockERC20;
  admin: HardhatEthersSigner;
  /** A drawer: the fund's `clearinghouse` (stands in for the clearinghouse). */
  coverer: HardhatEthersSigner;
  /** The other drawer: the fund's `deleverager` (stands in for the deleverager). */
  deleverager: HardhatEthersSigner;
  stakers: HardhatEthersSigner[];
  outsider: HardhatEthersSigner;
}

/**
 * The fund with `coverer` and `deleverager` as its drawers (fixed at deployment); every staker holds
 * 10,000,000 tokens and approved the fund.
 */
export async function fundFixture(): Promise<FundFixture> {
  const [admin, coverer, outsider, ...rest] = await ethers.getSigners();
  const stakers = rest.slice(0, 4);
  const deleverager = rest[4];
  const token = await ethers.deployContract("MockERC20", ["Mock USD", "mUSD", 6]);
  const fund = await ethers.deployContract("InsuranceFund", [
    await token.getAddress(),
    admin.address,
    coverer.address,
    deleverager.address,
  ]);
  for (const s of [...stakers, outsider]) {
    await token.mint(s.address, 10_000_000n * USDC);
    await token.connect(s).approve(await fund.getAddress(), ethers.MaxUint256);
  }
  return { fund, token, admin, coverer, deleverager, stakers, outsider };
}

/** The value of `account`'s shares at the current price (rounded down, as a payout would be). */
export async function valueOf(fund: InsuranceFund, account: string): Promise<bigint> {
  return fund.convertToAssets(await fund.balanceOf(account));
}
