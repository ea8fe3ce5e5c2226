/**
 * The System module (any chain): deployed around an existing token and existing feeds given as
 * parameters, exactly as on a testnet, it deploys no mock, wires everything and passes the
 * post-deploy check with the feeds it recorded.
 */
import { expect } from "chai";
import { ignition, ethers } from "hardhat";
import System from "../../deploy/modules/System";
import { checkDeployment, formatReport } from "../../lib/deployment-check";
import { marketId } from "../../lib/local";
import { MockAggregator__factory, MockERC20__factory } from "../../typechain-types";

describe("Ignition System module", function () {
  it("uses the token and feeds it is given, deploys no mock, and passes check-deployment", async function () {
    // The only contracts it deploys are the system's own: collateral and feeds are looked up.
    const contractsDeployed = [...System.futures]
      .filter((f) => "contractName" in f && "constructorArgs" in f)
      .map((f) => (f as unknown as { contractName: string }).contractName)
      .sort();
    expect(contractsDeployed).to.deep.equal([
      "AutoDeleverager",
      "Clearinghouse",
      "ClearinghouseLens",
      "InsuranceFund",
      "OracleAdapter",
    ]);
    // ...and the linked libraries of the clearinghouse and the deleverager, nothing else.
    const librariesDeployed = [...System.futures]
      .filter((f) => "contractName" in f && !("constructorArgs" in f) && "libraries" in f && !("address" in f))
      .map((f) => (f as unknown as { contractName: string }).contractName)
      .sort();
    expect(librariesDeployed).to.deep.equal([
      "AdlProofLib",
      "AdlSessionLib",
      "Liquidations",
      "MarketParamsLib",
      "OrderLib",
    ]);

    // Stand-ins for a testnet's existing token and Chainlink feeds, deployed outside the module.
    const [deployer] = await ethers.getSigners();
    const token = await new MockERC20__factory(deployer).deploy("Test USD", "tUSD", 6);
    const eth = await new MockAggregator__factory(deployer).deploy(8, 3000n * 10n ** 8n);
    const btc = await new MockAggregator__factory(deployer).deploy(8, 90000n * 10n ** 8n);
    // The deployer must hold the rounding-reserve seeds (3 and 2 token units here).
    await (await token.mint(deployer.address, 5n)).wait();
    const parameters = {
      System: {
        collateral: await token.getAddress(),
        ETH_USD_feed: await eth.getAddress(),
        BTC_USD_feed: await btc.getAddress(),
        ETH_USD_bandReference: 71,
        BTC_USD_bandReference: 76,
        ETH_USD_roundingReserveSeed: 3n,
        BTC_USD_roundingReserveSeed: 2n,
        ETH_USD_strictMaxAge: 1800,
      },
    };
    const sys = await ignition.deploy(System, { parameters });
    expect(await sys.collateral.getAddress()).to.equal(await token.getAddress());
    expect(await sys.clearinghouse.collateral()).to.equal(await token.getAddress());
    const ethId = marketId("ETH-USD");
    const btcId = marketId("BTC-USD");
    expect((await sys.oracle.feedConfig(ethId)).aggregator).to.equal(await eth.getAddress());
    expect((await sys.oracle.feedConfig(ethId)).strictMaxAge).to.equal(1800n);
    expect((await sys.oracle.feedConfig(btcId)).aggregator).to.equal(await btc.getAddress());
    expect(await sys.deleverager.kRef(ethId)).to.equal(71n);
    expect(await sys.deleverager.kRef(btcId)).to.equal(76n);
    expect(await sys.clearinghouse.roundingReserve(ethId)).to.equal(3n * 10n ** 12n);
    expect(await sys.clearinghouse.roundingReserve(btcId)).to.equal(2n * 10n ** 12n);
    expect(await token.balanceOf(deployer.address)).to.equal(0n);
    expect(await sys.oracle.sequencerFeed()).to.equal(ethers.ZeroAddress);

    const report = await checkDeployment(ethers.provider, {
      collateral: await token.getAddress(),
      oracle: await sys.oracle.getAddress(),
      clearinghouse: await sys.clearinghouse.getAddress(),
      lens: await sys.lens.getAddress(),
      insuranceFund: await sys.insuranceFund.getAddress(),
      deleverager: await sys.deleverager.getAddress(),
      feeds: { ETH_USD: await eth.getAddress(), BTC_USD: await btc.getAddress() },
      adlLibraries: {
        AdlProofLib: await sys.adlProofLib.getAddress(),
        AdlSessionLib: await sys.adlSessionLib.getAddress(),
      },
    });
    expect(report.problems, formatReport(report)).to.deep.equal([]);
    // A deployment record naming another feed than the adapter uses is a problem.
    const swapped = await checkDeployment(ethers.provider, {
      collateral: await token.getAddress(),
      oracle: await sys.oracle.getAddress(),
      clearinghouse: await sys.clearinghouse.getAddress(),
      lens: await sys.lens.getAddress(),
      insuranceFund: await sys.insuranceFund.getAddress(),
      deleverager: await sys.deleverager.getAddress(),
      feeds: { ETH_USD: await btc.getAddress(), BTC_USD: await btc.getAddress() },
    });
    expect(swapped.problems).to.deep.equal([
      `market ETH-USD: oracle feed is ${await eth.getAddress()}, the deployment recorded ${await btc.getAddress()}`,
    ]);
  });
});
