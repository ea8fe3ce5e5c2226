/**
 * The post-deploy check (lib/deployment-check.ts, task `check-deployment`): a system deployed by the
 * LocalSystem Ignition module passes it, and each broken wire is reported as a problem that names it.
 */
import { expect } from "chai";
import { ignition, ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import LocalSystem from "../../deploy/modules/LocalSystem";
import { checkDeployment, formatReport, type SystemAddresses } from "../../lib/deployment-check";
import { defaultMarketParams, marketId } from "../../lib/local";

async function deployed() {
  const system = await ignition.deploy(LocalSystem);
  const addresses: SystemAddresses = {
    collateral: await system.collateral.getAddress(),
    oracle: await system.oracle.getAddress(),
    clearinghouse: await system.clearinghouse.getAddress(),
    lens: await system.lens.getAddress(),
    insuranceFund: await system.insuranceFund.getAddress(),
    deleverager: await system.deleverager.getAddress(),
    adlLibraries: {
      AdlProofLib: await system.adlProofLib.getAddress(),
      AdlSessionLib: await system.adlSessionLib.getAddress(),
    },
  };
  return { ...system, addresses };
}

/** Rewrites the clearinghouse's `rankIndex` slot (found by its current value) to `to`. */
async function pointRankIndexAt(clearinghouse: string, current: string, to: string): Promise<void> {
  for (let slot = 0; slot < 256; slot++) {
    // The index shares its slot with the "a position was opened" flag: compare the address bits.
    const word = BigInt(await ethers.provider.getStorage(clearinghouse, slot));
    if ((word & ((1n << 160n) - 1n)) !== BigInt(current)) continue;
    await ethers.provider.send("hardhat_setStorageAt", [
      clearinghouse,
      ethers.toQuantity(slot),
      ethers.zeroPadValue(to, 32),
    ]);
    return;
  }
  throw new Error("rankIndex slot not found");
}

describe("check-deployment", function () {
  it("passes on a fresh Ignition deployment and describes every market, feed and role", async function () {
    const { addresses } = await loadFixture(deployed);
    const report = await checkDeployment(ethers.provider, addresses);
    expect(report.problems, formatReport(report)).to.deep.equal([]);
    const text = report.lines.join("\n");
    for (const symbol of ["ETH-USD", "BTC-USD"]) expect(text).to.contain(`market ${symbol}: listed`);
    expect(text).to.contain(`InsuranceFund.clearinghouse (drawer) = ${addresses.clearinghouse}`);
    expect(text).to.contain(`InsuranceFund.deleverager (drawer) = ${addresses.deleverager}`);
    expect(text).to.contain(`Clearinghouse.rankIndex (rank index wiring) = ${addresses.deleverager}`);
    expect(text).to.contain("strict max age 3600 s");
    expect(text).to.contain(`AdlProofLib    ${addresses.adlLibraries!.AdlProofLib}`);
    expect(formatReport(report)).to.match(/deployment OK/);
  });

  it("fails naming a fund whose fixed drawers are not the deployment's clearinghouse and deleverager", async function () {
    const { addresses, clearinghouse } = await loadFixture(deployed);
    const [admin, stranger] = await ethers.getSigners();
    // A fund deployed with a stranger in the deleverager's place, then wired like the real one.
    const wrong = await ethers.deployContract("InsuranceFund", [
      addresses.collateral,
      admin.address,
      addresses.clearinghouse,
      stranger.address,
    ]);
    const wrongAddress = await wrong.getAddress();
    await (await clearinghouse.setInsuranceFund(wrongAddress)).wait();
    await (await wrong.setFeeSource(addresses.clearinghouse)).wait();
    const report = await checkDeployment(ethers.provider, { ...addresses, insuranceFund: wrongAddress });
    expect(report.problems).to.deep.equal([
      `InsuranceFund.deleverager (drawer) is ${stranger.address}, expected ${addresses.deleverager}`,
    ]);
    expect(formatReport(report)).to.match(/deployment MIS-WIRED: 1 problem$/);
  });

  it("fails naming a rank index pointing elsewhere", async function () {
    const { addresses, clearinghouse } = await loadFixture(deployed);
    const [, stranger] = await ethers.getSigners();
    // setRankIndex is one-shot, so a wrong index can only come from the deployment itself: write it in place.
    await pointRankIndexAt(await clearinghouse.getAddress(), addresses.deleverager, stranger.address);
    const report = await checkDeployment(ethers.provider, addresses);
    expect(report.problems).to.deep.equal([
      `Clearinghouse.rankIndex (rank index wiring) is ${stranger.address}, expected ${addresses.deleverager}`,
    ]);
  });

  it("fails naming a listed market that the deleverager was never configured for", async function () {
    const { addresses, oracle, clearinghouse } = await loadFixture(deployed);
    const id = marketId("SOL-USD");
    const eth = await oracle.feedConfig(marketId("ETH-USD"));
    await (
      await oracle.setFeed(id, {
        aggregator: eth.aggregator,
        heartbeat: eth.heartbeat,
        strictMaxAge: eth.strictMaxAge,
        minPrice: eth.minPrice,
        maxPrice: eth.maxPrice,
      })
    ).wait();
    await (await clearinghouse.listMarket(id, defaultMarketParams())).wait();
    const report = await checkDeployment(ethers.provider, addresses);
    expect(report.problems).to.deep.equal([`market ${id} is not configured in the deleverager (configureMarket)`]);
    expect(report.warnings).to.deep.equal([`market ${id} has an empty rounding reserve`]);
  });

  it("warns of a pending parameter change, naming when it becomes applicable", async function () {
    const { addresses, clearinghouse } = await loadFixture(deployed);
    const tx = await clearinghouse.proposeMarketParams(marketId("ETH-USD"), defaultMarketParams({ takerFee: 0n }));
    const eta = (await tx.getBlock())!.timestamp + 24 * 3600;
    const report = await checkDeployment(ethers.provider, addresses);
    expect(report.problems).to.deep.equal([]);
    expect(report.warnings).to.have.lengthOf(1);
    expect(report.warnings[0]).to.contain(
      `market ETH-USD: a parameter change is pending, applicable from ${new Date(eta * 1000).toISOString()}`,
    );
    expect(report.warnings[0]).to.contain("fees 200000000000000/0");
  });

  it("fails naming a recorded library that has no code or is not the one the deleverager links", async function () {
    const { addresses } = await loadFixture(deployed);
    const [, stranger] = await ethers.getSigners();
    const wrong = { ...addresses, adlLibraries: { ...addresses.adlLibraries, AdlProofLib: stranger.address } };
    const report = await checkDeployment(ethers.provider, wrong);
    expect(report.problems).to.deep.equal([
      `AdlProofLib ${stranger.address} has no code`,
      `AutoDeleverager is not linked to AdlProofLib ${stranger.address}`,
      `AdlSessionLib ${addresses.adlLibraries!.AdlSessionLib} is not linked to AdlProofLib ${stranger.address}`,
    ]);
  });
});
