/**
 * The keeper's small parts: the journal (which positions stay busy), checkpoint stores and the book
 * snapshot they carry, revert decoding and classification, retry with backoff, and addresses from
 * Ignition's deployment output.
 */
import { expect } from "chai";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getAddress } from "ethers";
import { PositionBook } from "../../lib/adl";
import { bandReference, marketId } from "../../lib/local";
import { WAD } from "../../lib/math";
import { leverageUp } from "../../lib/position";
import { LEAVES, leafOf } from "../../lib/rank-tree";
import { AutoDeleverager__factory, Clearinghouse__factory } from "../../typechain-types";
import {
  FileCheckpointStore,
  MemoryCheckpointStore,
  busyKey,
  classify,
  decodeError,
  isTransient,
  loadDeployment,
} from "../../keeper/src";
import { Journal } from "../../keeper/src/journal";
import { withRetry } from "../../keeper/src/retry";
import type { Checkpoint } from "../../keeper/src";

const ID = marketId("ETH-USD");
const acct = (n: number): string => getAddress(`0x${n.toString(16).padStart(40, "0")}`);

function sampleBook(): PositionBook {
  const b = new PositionBook();
  const kRef = bandReference(2000n * WAD);
  for (let i = 1; i <= 40; i++) {
    const size = BigInt(i) * WAD;
    const entry = (2000n + BigInt(i * 7)) * WAD;
    const margin = (size * entry) / WAD / BigInt(1 + (i % 9));
    const leverage = leverageUp(size, margin);
    b.applyPositionChanged({
      marketId: ID,
      account: acct(i),
      isLong: i % 2 === 0,
      size,
      entry,
      margin,
      leverage,
      leaf: leafOf(leverage, entry, kRef),
    });
  }
  // One closes: its leaf keeps stale aggregates, which the snapshot must carry as they are.
  b.applyPositionChanged({
    marketId: ID,
    account: acct(3),
    isLong: false,
    size: 0n,
    entry: 0n,
    margin: 0n,
    leverage: 0n,
    leaf: 0,
  });
  return b;
}

describe("keeper parts", function () {
  it("journal: busy while sent, and while mined in a block the book has not reached", function () {
    const j = new Journal();
    const e = j.record("liquidate", ID, acct(1), "0xaa", 7);
    expect(e.key).to.equal(`liquidate:${busyKey(ID, acct(1))}`);
    expect([...j.busy(100)]).to.deep.equal([busyKey(ID, acct(1))]);
    j.settle("0xaa", "confirmed", 105);
    expect([...j.busy(104)]).to.deep.equal([busyKey(ID, acct(1))]);
    expect([...j.busy(105)]).to.deep.equal([]);
    j.record("deleverage", ID, acct(2), "0xbb", 8);
    j.settle("0xbb", "dropped");
    expect([...j.busy(200)]).to.deep.equal([]);
    expect(j.pending()).to.deep.equal([]);
  });

  it("book snapshot: a restored book equals the original, stale aggregates and leaf members included", function () {
    const b = sampleBook();
    const json = JSON.parse(JSON.stringify(b.snapshot())) as ReturnType<PositionBook["snapshot"]>;
    const r = PositionBook.restore(json);
    expect(r.positions(ID)).to.deep.equal(b.positions(ID));
    for (const side of [true, false]) {
      expect([...r.tree(ID, side).words].sort()).to.deep.equal([...b.tree(ID, side).words].sort());
      // Every leaf, empty ones included: a restore must not put members where the original had none.
      const members = (book: PositionBook): string[] =>
        Array.from({ length: LEAVES }, (_, leaf) =>
          book
            .leafMembers(ID, side, leaf)
            .map((p) => p.account)
            .join(","),
        );
      expect(members(r)).to.deep.equal(members(b));
    }
    expect(r.position(ID, acct(3)).size).to.equal(0n);
  });

  it("checkpoint stores round-trip; the file store writes atomically and refuses other versions", async function () {
    const cp: Checkpoint = {
      version: 1,
      chainId: "31337",
      clearinghouse: acct(9),
      lastBlock: 42,
      book: sampleBook().snapshot(),
      journal: [],
    };
    const mem = new MemoryCheckpointStore();
    expect(await mem.load()).to.equal(undefined);
    await mem.save(cp);
    cp.lastBlock = 43; // a later change to the caller's object does not reach the stored copy
    expect((await mem.load())!.lastBlock).to.equal(42);
    const dir = mkdtempSync(path.join(tmpdir(), "keeper-cp-"));
    const file = path.join(dir, "nested", "cp.json");
    const fs = new FileCheckpointStore(file);
    expect(await fs.load()).to.equal(undefined);
    await fs.save(cp);
    expect(await fs.load()).to.deep.equal(JSON.parse(JSON.stringify(cp)));
    expect(readdirSync(path.dirname(file))).to.deep.equal(["cp.json"]);
    writeFileSync(file, JSON.stringify({ ...cp, version: 2 }));
    let failed = "";
    await fs.load().catch((e: Error) => (failed = e.message));
    expect(failed).to.match(/version 2, expected 1/);
  });

  it("decodes custom errors with their arguments and classifies them", function () {
    const del = AutoDeleverager__factory.createInterface();
    const ch = Clearinghouse__factory.createInterface();
    const wrap = (data: string) => ({
      code: "CALL_EXCEPTION",
      message: "execution reverted",
      info: { error: { data } },
    });
    const stale = decodeError(wrap(del.encodeErrorResult("AdlMemberOutranks", [acct(5)])));
    expect([stale.name, stale.args]).to.deep.equal(["AdlMemberOutranks", [acct(5)]]);
    expect(classify(stale)).to.equal("stale");
    const moot = decodeError(wrap(ch.encodeErrorResult("PositionNotLiquidatable", [acct(6), 5n, 7n])));
    expect([moot.name, moot.args, classify(moot)]).to.deep.equal([
      "PositionNotLiquidatable",
      [acct(6), "5", "7"],
      "moot",
    ]);
    const resize = decodeError(wrap(ch.encodeErrorResult("LiquidationTooLarge", [10n, 3n])));
    expect(classify(resize)).to.equal("resize");
    const blocked = decodeError(wrap(del.encodeErrorResult("AdlSessionActive", [ID, false])));
    expect([blocked.name, blocked.args, classify(blocked)]).to.deep.equal([
      "AdlSessionActive",
      [ID, "false"],
      "blocked",
    ]);
    const unknown = decodeError(wrap("0xdeadbeef"));
    expect([unknown.name, classify(unknown)]).to.deep.equal(["UnknownRevert", "fatal"]);
    const rpc = decodeError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "NETWORK_ERROR" }));
    expect([rpc.name, classify(rpc)]).to.deep.equal(["RpcError", "transient"]);
    expect(isTransient(wrap(del.encodeErrorResult("AdlNoLiveEntry", [])))).to.equal(false);
  });

  it("retries transient failures with backoff and stops at once on anything else", async function () {
    let calls = 0;
    const delays: number[] = [];
    const value = await withRetry(
      async () => {
        if (++calls < 3) throw Object.assign(new Error("timeout"), { code: "TIMEOUT" });
        return "ok";
      },
      { retries: 4, baseDelayMs: 1, maxDelayMs: 3 },
      (_e, _n, d) => delays.push(d),
    );
    expect([value, calls, delays]).to.deep.equal(["ok", 3, [1, 2]]);
    calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new Error("execution reverted");
      },
      { retries: 4, baseDelayMs: 1, maxDelayMs: 1 },
    ).catch((e: Error) => e.message);
    expect([err, calls]).to.deep.equal(["execution reverted", 1]);
  });

  it("reads addresses from Ignition's deployed_addresses.json with the shared reader (lib/deployment.ts)", function () {
    const dir = mkdtempSync(path.join(tmpdir(), "keeper-ign-"));
    const root = path.join(dir, "deployments");
    const chainDir = path.join(root, "chain-31337");
    mkdirSync(chainDir, { recursive: true });
    const file = path.join(chainDir, "deployed_addresses.json");
    const base = {
      "LocalSystem#Clearinghouse": acct(1),
      "LocalSystem#AutoDeleverager": acct(2),
      "LocalSystem#InsuranceFund": acct(3),
      "LocalSystem#ClearinghouseLens": acct(4),
      "LocalSystem#Collateral": acct(5),
      "LocalSystem#OracleAdapter": acct(6),
    };
    writeFileSync(file, JSON.stringify(base));
    const d = loadDeployment(31337n, { root });
    expect([d.clearinghouse, d.deleverager, d.insuranceFund, d.lens]).to.deep.equal([
      acct(1),
      acct(2),
      acct(3),
      acct(4),
    ]);
    writeFileSync(file, JSON.stringify({ ...base, "Core#Clearinghouse": acct(7) }));
    expect(() => loadDeployment(31337, { root })).to.throw(/several systems/);
    const { ["LocalSystem#ClearinghouseLens"]: _lens, ...noLens } = base;
    void _lens;
    writeFileSync(file, JSON.stringify(noLens));
    expect(() => loadDeployment(31337, { root })).to.throw(/lacks LocalSystem#ClearinghouseLens/);
    expect(() => loadDeployment(1, { root })).to.throw(/no deployment at .*chain-1.*deploy first/);
    expect(JSON.parse(readFileSync(file, "utf8"))).to.not.have.property("LocalSystem#ClearinghouseLens");
  });
});
