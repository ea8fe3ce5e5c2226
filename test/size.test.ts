/**
 * Code size: every deployable contract and linked library under contracts/ (test harnesses and
 * mocks aside) stays under a budget below the EIP-170 limit, so a change that grows one is caught
 * here rather than at deployment.
 */
import { expect } from "chai";
import { artifacts } from "hardhat";

/** EIP-170: the most bytes of deployed code a contract may have. */
const EIP170_LIMIT_BYTES = 24_576;
/** The budget: 1 KiB under the limit, headroom for fixes without a restructuring. */
const DEPLOYED_SIZE_BUDGET_BYTES = EIP170_LIMIT_BYTES - 1_024;
const EXCLUDED_DIRECTORIES = ["contracts/test/", "contracts/mocks/"];

describe("code size", function () {
  it(`every contract under contracts/ deploys at most ${DEPLOYED_SIZE_BUDGET_BYTES} bytes of code`, async function () {
    const names = (await artifacts.getAllFullyQualifiedNames()).filter(
      (name) => name.startsWith("contracts/") && !EXCLUDED_DIRECTORIES.some((dir) => name.startsWith(dir)),
    );
    const sizes: { name: string; bytes: number }[] = [];
    for (const name of names) {
      const { deployedBytecode } = await artifacts.readArtifact(name);
      // Interfaces and abstract contracts have no code ("0x").
      sizes.push({ name, bytes: (deployedBytecode.length - 2) / 2 });
    }
    // The contracts this budget exists for must be among those measured.
    for (const core of ["AutoDeleverager", "AdlProofLib", "AdlSessionLib", "Clearinghouse"]) {
      expect(
        sizes.some((s) => s.name.endsWith(`:${core}`) && s.bytes > 0),
        `${core} not measured`,
      ).to.equal(true);
    }
    const over = sizes.filter((s) => s.bytes > DEPLOYED_SIZE_BUDGET_BYTES).map((s) => `${s.name}: ${s.bytes} bytes`);
    expect(over, `over the ${DEPLOYED_SIZE_BUDGET_BYTES}-byte budget`).to.deep.equal([]);
  });
});
