/**
 * Puts the scenario's traders on chain: deposits on their behalf, then the opening rounds of
 * signed, matched orders at the index price. Traders only sign; a separate matcher account sends
 * every transaction, so trader wallets need no gas on any network.
 */
import { Wallet, type Provider, type Signer, type TypedDataDomain } from "ethers";
import type { LocalSystem } from "../../lib/local";
import { orderDomain, signOrder, type Order } from "../../lib/orders";
import type { Scenario } from "./scenario";

/** Setup figures for the report. */
export interface SetupSummary {
  fills: number;
  fillGas: bigint;
  maxFillGas: bigint;
  depositedTokens: bigint;
}

/** The trader wallets of a scenario, connected to `provider`. */
export function traderWallets(scenario: Scenario, provider: Provider): Wallet[] {
  return scenario.traders.map((t) => new Wallet(t.privateKey, provider));
}

/** Mints the total to `funder` and deposits each trader's collateral into its free balance. */
export async function depositForTraders(
  sys: LocalSystem,
  funder: Signer,
  scenario: Scenario,
  wallets: readonly Wallet[],
): Promise<bigint> {
  const total = scenario.traders.reduce((s, t) => s + t.depositTokens, 0n);
  const ch = await sys.clearinghouse.getAddress();
  const token = sys.token.connect(funder);
  await (await token.mint(await funder.getAddress(), total)).wait();
  await (await token.approve(ch, total)).wait();
  const clearinghouse = sys.clearinghouse.connect(funder);
  for (const [i, t] of scenario.traders.entries()) {
    await (await clearinghouse.deposit(wallets[i].address, t.depositTokens)).wait();
  }
  return total;
}

/**
 * Runs the opening rounds: sets each market's index, then matches every fill of the round at it
 * (the long trader's order rests as the maker, the short's takes it). Salts count up from 1, so
 * orders, signatures and gas are the same on every run.
 */
export async function openPositions(
  sys: LocalSystem,
  matcher: Signer,
  scenario: Scenario,
  wallets: readonly Wallet[],
  log: (line: string) => void,
): Promise<Omit<SetupSummary, "depositedTokens">> {
  const provider = matcher.provider!;
  const domain: TypedDataDomain = orderDomain(
    (await provider.getNetwork()).chainId,
    await sys.clearinghouse.getAddress(),
  );
  const ids = scenario.markets.map((m) => sys.markets.get(m.symbol)!.id);
  const clearinghouse = sys.clearinghouse.connect(matcher);
  let salt = 0n;
  const order = (trader: Wallet, marketId: string, size: bigint, price: bigint, leverage: bigint): Order => {
    salt += 1n;
    return {
      trader: trader.address,
      marketId,
      size,
      limitPrice: price,
      leverage,
      salt,
      expiry: 2n ** 63n,
      reduceOnly: false,
      makerAllowed: true,
    };
  };
  let fills = 0;
  let fillGas = 0n;
  let maxFillGas = 0n;
  for (const [r, round] of scenario.rounds.entries()) {
    for (const [mi, m] of scenario.markets.entries()) await sys.setPrice(m.symbol, round.prices[mi]);
    for (const f of round.fills) {
      const price = round.prices[f.market];
      const maker = order(wallets[f.long], ids[f.market], f.size, price, f.longLeverage);
      const taker = order(wallets[f.short], ids[f.market], -f.size, price, f.shortLeverage);
      const [makerSig, takerSig] = await Promise.all([
        signOrder(wallets[f.long], domain, maker),
        signOrder(wallets[f.short], domain, taker),
      ]);
      const receipt = await (await clearinghouse.matchOrders(maker, makerSig, taker, takerSig, f.size)).wait();
      fills += 1;
      fillGas += receipt!.gasUsed;
      if (receipt!.gasUsed > maxFillGas) maxFillGas = receipt!.gasUsed;
    }
    log(`round ${r + 1}: ${round.fills.length} fills`);
  }
  return { fills, fillGas, maxFillGas };
}
