/**
 * The keeper's configuration, validated once at start (zod). Values come from the `keeper` task's
 * flags and the environment (the key only from KEEPER_PRIVATE_KEY, never a flag, so it does not show
 * in process listings); errors name every bad field at once.
 */
import { encodeBytes32String, isHexString } from "ethers";
import { z } from "zod";
import { DEFAULT_OPTIONS, type KeeperOptions } from "./options";
import type { KeeperAddresses } from "./types";

const WAD = 10n ** 18n;

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "an address: 0x and 40 hex digits");

/** A non-negative integer given as a number or a decimal string; becomes a bigint. */
const bigintish = z
  .union([z.bigint(), z.number().int(), z.string().regex(/^\d+$/, "a non-negative integer")])
  .transform((v) => BigInt(v))
  .refine((v) => v >= 0n, "must not be negative");

/** A decimal like "5" or "2.5" scaled to 18 decimals. */
const decimal18 = z
  .union([z.number(), z.string().regex(/^\d+(\.\d{1,18})?$/, "a decimal with at most 18 places")])
  .transform((v) => {
    const [whole, frac = ""] = String(v).split(".");
    return BigInt(whole) * WAD + BigInt(frac.padEnd(18, "0"));
  });

/** true / false, also as the strings "true", "false", "1", "0" (environment values). */
const flag = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0"])])
  .transform((v) => v === true || v === "true" || v === "1");

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A market symbol ("ETH-USD") or its bytes32 id; both become the id. */
const market = z
  .string()
  .min(1)
  .transform((m, ctx) => {
    if (isHexString(m, 32)) return m.toLowerCase();
    if (m.length > 31) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `market symbol ${m} is longer than 31 bytes` });
      return z.NEVER;
    }
    return encodeBytes32String(m).toLowerCase();
  });

export const configSchema = z
  .object({
    /** Markets to watch: a comma-separated list or an array of symbols / bytes32 ids. */
    markets: z
      .union([z.string(), z.array(z.string())])
      .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter(Boolean))
      .pipe(z.array(market).min(1, "at least one market")),
    /** Hex private key of the keeper account; otherwise the network's account at signerIndex. */
    privateKey: z
      .string()
      .regex(/^0x[0-9a-fA-F]{64}$/, "0x and 64 hex digits")
      .optional(),
    signerIndex: int(0, 1000).default(0),
    pollIntervalMs: int(50, 3_600_000).default(DEFAULT_OPTIONS.pollIntervalMs),
    /** Checkpoint file; default .keeper/chain-<chainId>.json. */
    checkpointPath: z.string().min(1).optional(),
    /** Ignition directory holding deployments/chain-<id>/deployed_addresses.json. */
    deploymentDir: z.string().min(1).default("deploy"),
    clearinghouse: address.optional(),
    deleverager: address.optional(),
    insuranceFund: address.optional(),
    lens: address.optional(),
    startBlock: int(0, Number.MAX_SAFE_INTEGER).default(DEFAULT_OPTIONS.startBlock),
    pageSize: int(1, 1_000_000).default(DEFAULT_OPTIONS.pageSize),
    confirmations: int(0, 1000).default(DEFAULT_OPTIONS.confirmations),
    maxEntries: int(1, 1024).default(DEFAULT_OPTIONS.maxEntries),
    gasLimitCap: bigintish
      .refine((v) => v >= 100_000n && v <= 100_000_000n, "between 100,000 and 100,000,000")
      .default(DEFAULT_OPTIONS.gasLimitCap.toString()),
    gasHeadroomPercent: int(0, 200).default(Number(DEFAULT_OPTIONS.gasHeadroomPercent)),
    maxFeePerGas: bigintish.optional(),
    maxPriorityFeePerGas: bigintish.optional(),
    receiptTimeoutMs: int(100, 3_600_000).default(DEFAULT_OPTIONS.receiptTimeoutMs),
    /** Leverage of the keeper's own leg in a takeover, e.g. "5" for 5x. */
    liquidationLeverage: decimal18.refine((v) => v >= WAD / 10n && v <= 100n * WAD, "between 0.1 and 100").default("5"),
    maxRebuilds: int(0, 20).default(DEFAULT_OPTIONS.maxRebuilds),
    maxAdlPerTick: int(1, 10_000).default(DEFAULT_OPTIONS.maxAdlPerTick),
    refreshLooseNodes: flag.default(false),
    rpcRetries: int(0, 20).default(DEFAULT_OPTIONS.retry.retries),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    once: flag.default(false),
  })
  .strict()
  .refine((c) => c.maxPriorityFeePerGas === undefined || c.maxFeePerGas !== undefined, {
    message: "maxPriorityFeePerGas needs maxFeePerGas",
    path: ["maxPriorityFeePerGas"],
  })
  .refine(
    (c) =>
      c.maxFeePerGas === undefined || c.maxPriorityFeePerGas === undefined || c.maxPriorityFeePerGas <= c.maxFeePerGas,
    {
      message: "maxPriorityFeePerGas above maxFeePerGas",
      path: ["maxPriorityFeePerGas"],
    },
  );

export type KeeperConfig = z.infer<typeof configSchema>;

/** Thrown with every invalid field listed. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid keeper configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Validates raw input (flags and environment) once; throws ConfigError naming each bad field. */
export function parseConfig(raw: Record<string, unknown>): KeeperConfig {
  // Undefined flags fall back to the defaults; drop them so .strict() only sees real keys.
  const input = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const r = configSchema.safeParse(input);
  if (!r.success) {
    throw new ConfigError(r.error.issues.map((i) => `${i.path.join(".") || "(config)"}: ${i.message}`));
  }
  return r.data;
}

/** The Keeper options a configuration sets. */
export function keeperOptions(c: KeeperConfig): KeeperOptions {
  return {
    ...DEFAULT_OPTIONS,
    startBlock: c.startBlock,
    pageSize: c.pageSize,
    confirmations: c.confirmations,
    maxEntries: c.maxEntries,
    gasLimitCap: c.gasLimitCap,
    gasHeadroomPercent: BigInt(c.gasHeadroomPercent),
    receiptTimeoutMs: c.receiptTimeoutMs,
    liquidationLeverage: c.liquidationLeverage,
    maxRebuilds: c.maxRebuilds,
    maxAdlPerTick: c.maxAdlPerTick,
    refreshLooseNodes: c.refreshLooseNodes,
    pollIntervalMs: c.pollIntervalMs,
    retry: { ...DEFAULT_OPTIONS.retry, retries: c.rpcRetries },
    maxFeePerGas: c.maxFeePerGas,
    maxPriorityFeePerGas: c.maxPriorityFeePerGas,
  };
}

/** Address overrides given in the configuration (each replaces the deployment's). */
export function addressOverrides(c: KeeperConfig): Partial<KeeperAddresses> {
  const out: Partial<KeeperAddresses> = {};
  for (const k of ["clearinghouse", "deleverager", "insuranceFund", "lens"] as const) {
    if (c[k] !== undefined) out[k] = c[k];
  }
  return out;
}
