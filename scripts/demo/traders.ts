/**
 * Puts the scenario's traders on chain: deposits on their behalf, then the opening rounds of
 * signed, matched orders at the index price. Traders only sign; a separate matcher account sends
 * every transaction, so trader wallets need no gas on any network.
 */
import { Wallet, ZeroAddress, type Provider, type Signer, type TypedDataDomain } from "ethers";
import type { LocalSystem } from "../../lib/local";
import { orderDomain, signOrder, type Order } from "../../lib/orders";
import type { FillSpec, Scenario } from "./scenario";

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
 * Matches fills at the index: the long trader's order rests as the maker, the short's takes it.
 * Salts count up from 1, so orders, signatures and gas are the same on every run.
 */
export class FillDesk {
  private salt = 0n;

  private constructor(
    private readonly sys: LocalSystem,
    private readonly matcher: Signer,
    private readonly domain: TypedDataDomain,
    private readonly ids: string[],
    private readonly wallets: readonly Wallet[],
  ) {}

  static async create(sys: LocalSystem, matcher: Signer, scenario: Scenario, wallets: readonly Wallet[]) {
    const domain = orderDomain((await matcher.provider!.getNetwork()).chainId, await sys.clearinghouse.getAddress());
    const ids = scenario.markets.map((m) => sys.markets.get(m.symbol)!.id);
    return new FillDesk(sys, matcher, domain, ids, wallets);
  }

  private order(trader: Wallet, marketId: string, size: bigint, price: bigint, leverage: bigint): Order {
    this.salt += 1n;
    return {
      trader: trader.address,
      marketId,
      size,
      limitPrice: price,
      leverage,
      salt: this.salt,
      expiry: 2n ** 63n,
      reduceOnly: false,
      makerAllowed: true,
      sender: ZeroAddress,
    };
  }

  /** Signs and matches `f` at `price` (the market's index); returns the gas used. */
  async fill(f: FillSpec, price: bigint): Promise<bigint> {
    const [long, short] = [this.wallets[f.long], this.wallets[f.short]];
    const maker = this.order(long, this.ids[f.market], f.size, price, f.longLeverage);
    const taker = this.order(short, this.ids[f.market], -f.size, price, f.shortLeverage);
    const [makerSig, takerSig] = await Promise.all([
      signOrder(long, this.domain, maker),
      signOrder(short, this.domain, taker),
    ]);
    const ch = this.sys.clearinghouse.connect(this.matcher);
    const receipt = await (await ch.matchOrders(maker, makerSig, taker, takerSig, f.size)).wait();
    return receipt!.gasUsed;
  }
}

/** Runs the opening rounds: sets each market's index, then matches every fill of the round at it. */
export async function openPositions(
  sys: LocalSystem,
  desk: FillDesk,
  scenario: Scenario,
  log: (line: string) => void,
): Promise<Omit<SetupSummary, "depositedTokens">> {
  let fills = 0;
  let fillGas = 0n;
  let maxFillGas = 0n;
  for (const [r, round] of scenario.rounds.entries()) {
    for (const [mi, m] of scenario.markets.entries()) await sys.setPrice(m.symbol, round.prices[mi]);
    for (const f of round.fills) {
      const gas = await desk.fill(f, round.prices[f.market]);
      fills += 1;
      fillGas += gas;
      if (gas > maxFillGas) maxFillGas = gas;
    }
    log(`round ${r + 1}: ${round.fills.length} fills`);
  }
  return { fills, fillGas, maxFillGas };
}
