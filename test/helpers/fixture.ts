/** The shared local deployment used by the clearinghouse tests. */
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { deployLocalSystem, type LocalSystem, type MarketParams } from "../../lib/local";
import { WAD } from "../../lib/math";

export const ETH = "ETH-USD";
export const BTC = "BTC-USD";
export const ETH_PRICE = 2000n * WAD;
export const BTC_PRICE = 60000n * WAD;
/** 6-decimal collateral: one token unit. */
export const USDC = 10n ** 6n;
/** Internal wei per token unit. */
export const SCALE = 10n ** 12n;

export interface Fixture extends LocalSystem {
  traders: HardhatEthersSigner[];
  keeper: HardhatEthersSigner;
  ethId: string;
  btcId: string;
}

/**
 * Two markets (ETH-USD at 2,000, BTC-USD at 60,000) and ten traders with 100,000 deposited each. The
 * traders and the keeper hold collateral tokens and have approved the deleverager, so any of them can
 * post an ADL session's bond.
 */
export async function systemFixture(): Promise<Fixture> {
  return systemWith({});
}

/**
 * The system of `systemFixture` with ETH-USD and BTC-USD listed with the given overrides of the
 * default parameters (a listing sets parameters at once; a later change waits PARAMS_DELAY).
 * Call it from a named fixture function, so that loadFixture can cache it.
 */
export async function systemWith(params: {
  eth?: Partial<MarketParams>;
  btc?: Partial<MarketParams>;
}): Promise<Fixture> {
  const [admin, keeper, ...rest] = await ethers.getSigners();
  const traders = rest.slice(0, 10);
  const system = await deployLocalSystem(admin, [
    { symbol: ETH, price: ETH_PRICE, params: params.eth },
    { symbol: BTC, price: BTC_PRICE, params: params.btc },
  ]);
  const chAddress = await system.clearinghouse.getAddress();
  const adlAddress = await system.deleverager.getAddress();
  for (const t of traders) {
    await system.token.mint(t.address, 1_000_000n * USDC);
    await system.token.connect(t).approve(chAddress, ethers.MaxUint256);
    await system.token.connect(t).approve(adlAddress, ethers.MaxUint256);
    await system.clearinghouse.connect(t).deposit(t.address, 100_000n * USDC);
  }
  await system.token.mint(keeper.address, 10_000n * USDC);
  await system.token.connect(keeper).approve(adlAddress, ethers.MaxUint256);
  return { ...system, traders, keeper, ethId: system.markets.get(ETH)!.id, btcId: system.markets.get(BTC)!.id };
}
