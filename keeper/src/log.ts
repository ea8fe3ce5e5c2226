/**
 * Structured logs: every line carries a stable `event` name (also the message) and JSON-safe fields
 * (bigints as decimal strings, so amounts never lose precision in a log pipeline).
 */
import type { Logger } from "pino";

export type Fields = Record<string, unknown>;

/** Deep copy with bigints as decimal strings (pino's JSON serialiser rejects bigint). */
export function jsonSafe(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), jsonSafe(v)]));
  if (value instanceof Set) return [...value].map(jsonSafe);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  }
  return value;
}

/** A logger that takes an event name and fields. */
export class EventLog {
  constructor(readonly logger: Logger) {}

  info(event: string, fields: Fields = {}): void {
    this.logger.info({ event, ...(jsonSafe(fields) as Fields) }, event);
  }

  warn(event: string, fields: Fields = {}): void {
    this.logger.warn({ event, ...(jsonSafe(fields) as Fields) }, event);
  }

  error(event: string, fields: Fields = {}): void {
    this.logger.error({ event, ...(jsonSafe(fields) as Fields) }, event);
  }

  debug(event: string, fields: Fields = {}): void {
    this.logger.debug({ event, ...(jsonSafe(fields) as Fields) }, event);
  }
}
