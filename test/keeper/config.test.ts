/** The keeper's configuration (keeper/src/config.ts): defaults, conversions, and every rejection named. */
import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import { ConfigError, keeperOptions, parseConfig, addressOverrides } from "../../keeper/src/config";
import { DEFAULT_OPTIONS } from "../../keeper/src";

const WAD = 10n ** 18n;

function issues(raw: Record<string, unknown>): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("keeper config (zod)", function () {
  it("fills defaults and turns symbols into market ids", function () {
    const c = parseConfig({ markets: "ETH-USD, BTC-USD" });
    expect(c.markets).to.deep.equal([
      encodeBytes32String("ETH-USD").toLowerCase(),
      encodeBytes32String("BTC-USD").toLowerCase(),
    ]);
    expect([c.pollIntervalMs, c.signerIndex, c.once, c.deploymentDir, c.logLevel]).to.deep.equal([
      2000,
      0,
      false,
      "deploy",
      "info",
    ]);
    expect(keeperOptions(c)).to.deep.equal({
      ...DEFAULT_OPTIONS,
      maxFeePerGas: undefined,
      maxPriorityFeePerGas: undefined,
    });
    expect(addressOverrides(c)).to.deep.equal({});
  });

  it("converts numbers given as strings (flags, environment) and keeps bigints exact", function () {
    const id = "0x" + "ab".repeat(32);
    const c = parseConfig({
      markets: [id],
      pollIntervalMs: "750",
      gasLimitCap: "30000000",
      maxFeePerGas: "123456789012345678901",
      maxPriorityFeePerGas: "1000000000",
      liquidationLeverage: "2.5",
      once: "true",
      refreshLooseNodes: "0",
      lens: "0x" + "11".repeat(20),
    });
    expect(c.markets).to.deep.equal([id]);
    const o = keeperOptions(c);
    expect([o.pollIntervalMs, o.gasLimitCap, o.maxFeePerGas, o.liquidationLeverage]).to.deep.equal([
      750,
      30_000_000n,
      123456789012345678901n,
      (5n * WAD) / 2n,
    ]);
    expect([c.once, c.refreshLooseNodes]).to.deep.equal([true, false]);
    expect(addressOverrides(c)).to.deep.equal({ lens: "0x" + "11".repeat(20) });
  });

  it("names every invalid field at once", function () {
    const found = issues({
      markets: "",
      pollIntervalMs: 10,
      privateKey: "0x1234",
      clearinghouse: "not-an-address",
      gasLimitCap: "1000",
      liquidationLeverage: "1000",
      logLevel: "loud",
    });
    const fields = found.map((i) => i.split(":")[0]).sort();
    expect(fields).to.deep.equal([
      "clearinghouse",
      "gasLimitCap",
      "liquidationLeverage",
      "logLevel",
      "markets",
      "pollIntervalMs",
      "privateKey",
    ]);
  });

  it("rejects unknown keys, symbols over 31 bytes, and a priority fee without or above the fee cap", function () {
    expect(issues({ markets: "ETH-USD", pollInterval: 5 })[0]).to.match(/Unrecognized key.*pollInterval/);
    expect(issues({ markets: "X".repeat(32) })[0]).to.match(/longer than 31 bytes/);
    expect(issues({ markets: "ETH-USD", maxPriorityFeePerGas: "1" })).to.deep.equal([
      "maxPriorityFeePerGas: maxPriorityFeePerGas needs maxFeePerGas",
    ]);
    expect(issues({ markets: "ETH-USD", maxFeePerGas: "1", maxPriorityFeePerGas: "2" })).to.deep.equal([
      "maxPriorityFeePerGas: maxPriorityFeePerGas above maxFeePerGas",
    ]);
  });

  it("ignores flags left undefined (they take their defaults)", function () {
    const c = parseConfig({ markets: "ETH-USD", pageSize: undefined, once: undefined });
    expect([c.pageSize, c.once]).to.deep.equal([DEFAULT_OPTIONS.pageSize, false]);
  });
});
