/**
 * lib/deployment.ts: addresses come from Ignition's deployed_addresses.json (either module), the
 * start block from its journal, and every way the output can be missing or ambiguous is an error
 * that says what to do.
 */
import { expect } from "chai";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { FutureType } from "@nomicfoundation/ignition-core";
import { addCore } from "../../deploy/modules/core-futures";
import {
  ADL_LIBRARIES,
  CLEARINGHOUSE_LIBRARIES,
  DeploymentNotFoundError,
  deploymentDirectory,
  loadDeployment,
  parseDeployedAddresses,
} from "../../lib/deployment";

const addr = (n: number): string => `0x${n.toString(16).padStart(40, "0")}`;

function ignitionOutput(module: string, base = 1): Record<string, string> {
  return {
    [`${module}#Collateral`]: addr(base),
    [`${module}#OracleAdapter`]: addr(base + 1),
    [`${module}#Clearinghouse`]: addr(base + 2),
    [`${module}#ClearinghouseLens`]: addr(base + 3),
    [`${module}#InsuranceFund`]: addr(base + 4),
    [`${module}#AutoDeleverager`]: addr(base + 5),
    [`${module}#Feed_ETH_USD`]: addr(base + 6),
    [`${module}#Feed_BTC_USD`]: addr(base + 7),
  };
}

describe("lib/deployment", function () {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), "deployment-loader-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("maps either module's future ids to the system's addresses and feeds", function () {
    for (const module of ["System", "LocalSystem"]) {
      const d = parseDeployedAddresses(ignitionOutput(module, 16));
      expect(d).to.deep.equal({
        module,
        collateral: addr(16),
        oracle: addr(17),
        clearinghouse: addr(18),
        lens: addr(19),
        insuranceFund: addr(20),
        deleverager: addr(21),
        feeds: { ETH_USD: addr(22), BTC_USD: addr(23) },
      });
    }
  });

  it("reads chain-<id> by default, a named deployment on request, and the first journalled block", function () {
    const dir = deploymentDirectory(11155111, { root });
    expect(dir).to.equal(path.join(root, "chain-11155111"));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "deployed_addresses.json"), JSON.stringify(ignitionOutput("System")));
    writeFileSync(
      path.join(dir, "journal.jsonl"),
      [
        '{"type":"RUN_START","chainId":11155111}',
        '{"type":"TRANSACTION_CONFIRM","futureId":"System#OracleAdapter","receipt":{"blockNumber":7345,"status":"SUCCESS"}}',
        '{"type":"TRANSACTION_CONFIRM","futureId":"System#Clearinghouse","receipt":{"blockNumber":7346,"status":"SUCCESS"}}',
      ].join("\n"),
    );
    const d = loadDeployment(11155111n, { root });
    expect([d.chainId, d.deploymentId, d.directory, d.module, d.startBlock]).to.deep.equal([
      11155111n,
      "chain-11155111",
      dir,
      "System",
      7345,
    ]);
    const named = path.join(root, "e2e-1234");
    mkdirSync(named);
    writeFileSync(path.join(named, "deployed_addresses.json"), JSON.stringify(ignitionOutput("LocalSystem", 64)));
    const e2e = loadDeployment(31337, { root, deploymentId: "e2e-1234" });
    expect([e2e.module, e2e.clearinghouse, e2e.startBlock]).to.deep.equal(["LocalSystem", addr(66), 0]);
  });

  it("knows every library future of addCore, and which contract links it", function () {
    const core = buildModule("Probe", (m) => {
      const { clearinghouse, deleverager } = addCore(m, "0x0000000000000000000000000000000000000001");
      return { clearinghouse, deleverager };
    });
    const futureId = (id: string) => id.slice("Probe#".length);
    const libraries = [...core.futures]
      .filter((f) => f.type === FutureType.NAMED_ARTIFACT_LIBRARY_DEPLOYMENT)
      .map((f) => futureId(f.id))
      .sort();
    expect(libraries).to.deep.equal([...CLEARINGHOUSE_LIBRARIES, ...ADL_LIBRARIES].sort());
    const linkedInto = (contract: { libraries: Record<string, { id: string }> }) =>
      Object.values(contract.libraries)
        .map((f) => futureId(f.id))
        .sort();
    expect(linkedInto(core.results.clearinghouse)).to.deep.equal([...CLEARINGHOUSE_LIBRARIES].sort());
    expect(linkedInto(core.results.deleverager)).to.deep.equal([...ADL_LIBRARIES].sort());
  });

  it("says to deploy first when there is no output, and refuses partial or mixed outputs", function () {
    expect(() => loadDeployment(5, { root })).to.throw(DeploymentNotFoundError, /deploy first/);
    const partial = ignitionOutput("System");
    delete partial["System#AutoDeleverager"];
    expect(() => parseDeployedAddresses(partial)).to.throw(DeploymentNotFoundError, /lacks System#AutoDeleverager/);
    const none = ignitionOutput("System");
    delete none["System#Clearinghouse"];
    expect(() => parseDeployedAddresses(none)).to.throw(DeploymentNotFoundError, /holds no Clearinghouse/);
    // Linked libraries are read when recorded (deployments made before them have none).
    const withLibraries = {
      ...ignitionOutput("System"),
      "System#OrderLib": addr(11),
      "System#MarketParamsLib": addr(12),
      "System#Liquidations": addr(13),
      "System#AdlProofLib": addr(9),
      "System#AdlSessionLib": addr(10),
    };
    const parsed = parseDeployedAddresses(withLibraries);
    expect(parsed.clearinghouseLibraries).to.deep.equal({
      OrderLib: addr(11),
      MarketParamsLib: addr(12),
      Liquidations: addr(13),
    });
    expect(parsed.adlLibraries).to.deep.equal({
      AdlProofLib: addr(9),
      AdlSessionLib: addr(10),
    });
    const mixed = { ...ignitionOutput("System"), ...ignitionOutput("LocalSystem", 32) };
    expect(() => parseDeployedAddresses(mixed)).to.throw(DeploymentNotFoundError, /several systems/);
  });
});
