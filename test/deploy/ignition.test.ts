import { expect } from "chai";
import { ignition, ethers } from "hardhat";
import LocalSystem from "../../deploy/modules/LocalSystem";
import { bandReference, deployLocalSystem, marketId } from "../../lib/local";
import { WAD } from "../../lib/math";

describe("Ignition LocalSystem module", function () {
  it("deploys the core with mocks, wires the fund and lists both markets", async function () {
    const { clearinghouse, insuranceFund, oracle, deleverager } = await ignition.deploy(LocalSystem);
    const [admin] = await ethers.getSigners();
    const chAddress = await clearinghouse.getAddress();
    expect(await clearinghouse.insuranceFund()).to.equal(await insuranceFund.getAddress());
    // The fund's drawers are fixed in its constructor: the clearinghouse and the deleverager.
    const adlAddress = await deleverager.getAddress();
    expect(await insuranceFund.clearinghouse()).to.equal(chAddress);
    expect(await insuranceFund.deleverager()).to.equal(adlAddress);
    expect(await insuranceFund.feeSource()).to.equal(chAddress);
    expect(await clearinghouse.rankIndex()).to.equal(await deleverager.getAddress());
    expect(await clearinghouse.hasRole(await clearinghouse.MARKET_ADMIN_ROLE(), admin.address)).to.equal(true);
    for (const symbol of ["ETH-USD", "BTC-USD"]) {
      const id = ethers.encodeBytes32String(symbol);
      const [listed, paused] = await clearinghouse.marketStatus(id);
      expect(listed).to.equal(true);
      expect(paused).to.equal(false);
      const [price] = await oracle.getPrice(id, false);
      expect(price > 0n).to.equal(true);
      // One token unit (6 decimals) seeds the rounding reserve; the band reference follows the price.
      expect(await clearinghouse.roundingReserve(id)).to.equal(10n ** 12n);
      expect(await deleverager.kRef(id)).to.equal(BigInt(price.toString(2).length - 1));
    }
  });

  it("deployLocalSystem lists any market list through the same wiring, with its own parameters", async function () {
    const [admin] = await ethers.getSigners();
    const price = 150n * WAD;
    const sys = await deployLocalSystem(admin, [{ symbol: "SOL-USD", price, params: { imr: WAD / 5n } }]);
    const id = marketId("SOL-USD");
    expect(sys.markets.get("SOL-USD")!.id).to.equal(id);
    expect(await sys.clearinghouse.marketStatus(id)).to.deep.equal([true, false]);
    expect((await sys.clearinghouse.marketParams(id)).imr).to.equal(WAD / 5n);
    expect((await sys.clearinghouse.marketStatus(marketId("ETH-USD")))[0]).to.equal(false);
    expect(await sys.deleverager.kRef(id)).to.equal(BigInt(bandReference(price)));
    expect(await sys.clearinghouse.roundingReserve(id)).to.equal(10n ** 12n);
    expect(await sys.clearinghouse.rankIndex()).to.equal(await sys.deleverager.getAddress());
    const feed = await sys.oracle.feedConfig(id);
    expect([feed.heartbeat, feed.strictMaxAge, feed.minPrice, feed.maxPrice]).to.deep.equal([
      86_400n,
      3_600n,
      1n,
      10n ** 30n,
    ]);
    expect((await sys.oracle.getPrice(id, false))[0]).to.equal(price);
    await sys.setPrice("SOL-USD", 90n * WAD);
    expect((await sys.oracle.getPrice(id, false))[0]).to.equal(90n * WAD);
  });
});
