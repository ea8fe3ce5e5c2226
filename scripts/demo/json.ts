/**
 * The report as JSON: every bigint as its decimal string (exact, no precision lost), keys in the
 * order the report builds them, two-space indentation. Same seed, same bytes.
 */
import { writeFile } from "node:fs/promises";
import type { DemoReport } from "./report";

/** JSON.stringify with bigints as decimal strings. */
export function toJson(report: DemoReport): string {
  return JSON.stringify(report, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value), 2);
}

/** Writes the report to `file` (with a trailing newline). */
export async function writeJson(file: string, report: DemoReport): Promise<void> {
  await writeFile(file, `${toJson(report)}\n`, "utf8");
}
