import { existsSync } from "node:fs";
import path from "node:path";
import { extendEnvironment, subtask } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import type { HardhatUserConfig } from "hardhat/config";
import "@nomicfoundation/hardhat-toolbox";
// The keeper bot (npm run keeper): liquidation, cover and ADL.
import "./keeper/task";
import { networksFromEnv, requireNetworkEnv } from "./deploy/networks";
// deploy-system and check-deployment (npm run deploy, npm run deploy:check).
import "./deploy/tasks";
// The `demo` task (npm run demo): the main job, a market crash settled end to end.
import "./scripts/demo/task";

// RPC URLs and the deployer key may live in a .env file (see .env.example); real variables win.
const ENV_FILE = path.join(__dirname, ".env");
if (existsSync(ENV_FILE)) process.loadEnvFile(ENV_FILE);

// A testnet's variables are demanded only when that network is actually used.
extendEnvironment((hre) => requireNetworkEnv(hre.network.name));

/** The one compiler version the project uses; it must equal the `solc` package pinned in package.json. */
const SOLC_VERSION = "0.8.30";

// Hardhat 2 downloads compilers by default. This machine class has no route to the
// compiler mirror, so hand Hardhat the solc-js build that ships inside the pinned npm package.
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD).setAction(async (args: { solcVersion: string }, _hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) return runSuper();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require("solc") as { version(): string };
  const longVersion = solc.version();
  if (!longVersion.startsWith(`${SOLC_VERSION}+`)) {
    throw new Error(`npm package solc is ${longVersion}, expected ${SOLC_VERSION}: run npm ci`);
  }
  return {
    version: SOLC_VERSION,
    longVersion: longVersion.replace(/\.Emscripten\.clang$/, ""),
    compilerPath: path.join(path.dirname(require.resolve("solc/package.json")), "soljson.js"),
    isSolcJs: true,
  };
});

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      viaIR: false,
    },
  },
  networks: {
    hardhat: {
      hardfork: "cancun",
    },
    ...networksFromEnv(),
  },
  gasReporter: {
    enabled: process.env.REPORT_GAS === "1",
    currency: "USD",
    offline: true,
    outputFile: process.env.GAS_REPORT_FILE,
    noColors: process.env.GAS_REPORT_FILE !== undefined,
  },
  paths: {
    ignition: "deploy",
  },
  typechain: {
    outDir: "typechain-types",
    target: "ethers-v6",
  },
  mocha: {
    timeout: 600_000,
  },
};

export default config;
