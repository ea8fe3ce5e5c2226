/** Retry with exponential backoff for transient RPC failures (see errors.isTransient). */
import { isTransient } from "./errors";

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Delay before the first retry; doubles each time, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn`, retrying while it throws a transient error and attempts remain; any other error is
 * thrown at once. `onRetry` sees each retried error (for logging).
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= policy.retries || !isTransient(e)) throw e;
      const delay = Math.min(policy.baseDelayMs * 2 ** attempt, policy.maxDelayMs);
      onRetry?.(e, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
