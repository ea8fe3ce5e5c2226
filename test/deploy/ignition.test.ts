import { expect } from "chai";
import { ignition, ethers } from "hardhat";
import LocalSystem from "../../deploy/modules/LocalSystem";

describe("Ignition LocalSystem module", function () {
  it("deploys the core with mocks, wires the fund and lists both markets", async function () {
    const { clearinghouse, insuranceFund, oracle, deleverager } = await ignition.deploy(LocalSystem);
    const [admin] = await ethers.getSigners();
    const chAddress = await clearinghouse.getAddress();
    expect(await clearinghouse.insuranceFund()).to.equal(await insuranceFund.getAddress());
    expect(await insuranceFund.hasRole(await insuranceFund.COVER_ROLE(), chAddress)).to.equal(true);
    const adlAddress = await deleverager.getAddress();
    expect(await insuranceFund.hasRole(await insuranceFund.COVER_ROLE(), adlAddress)).to.equal(true);
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
});
