/**
 * Child processes of the end-to-end run: a Hardhat node, the deploy task, the keeper. Every process
 * started here is registered and stopped by `stopAll` (called on success, on failure and on
 * SIGINT/SIGTERM); each runs in its own process group so that stopping it also stops whatever it
 * spawned. Output goes to a log file per process, and lines are kept for the checks.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import net from "node:net";
import path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "..");
const HARDHAT_BIN = path.join(REPO_ROOT, "node_modules", ".bin", "hardhat");

export interface Managed {
  name: string;
  child: ChildProcess;
  /** stdout and stderr lines so far. */
  lines: string[];
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
  /** Stops the process group (SIGTERM, then SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

const running = new Set<Managed>();

/** A TCP port on the loopback interface that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      server.close(() => resolve(address.port));
    });
  });
}

/** Starts `hardhat <args>` in its own process group, logging to `logFile`. */
export function startHardhat(name: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Managed {
  const log: WriteStream = createWriteStream(logFile, { flags: "a" });
  const child = spawn(HARDHAT_BIN, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const lines: string[] = [];
  let partial = "";
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    const text = partial + chunk.toString("utf8");
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      if (partial !== "") lines.push(partial);
      log.end();
      running.delete(managed);
      resolve(code ?? signal ?? "unknown");
    });
  });
  const managed: Managed = {
    name,
    child,
    lines,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      killGroup(child, signal);
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  running.add(managed);
  return managed;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // The negative pid addresses the process group the detached child leads.
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Runs `hardhat <args>` to completion; throws with the tail of its output if it fails. */
export async function runHardhat(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  timeoutMs: number,
): Promise<string[]> {
  const p = startHardhat(name, args, env, logFile);
  const timer = setTimeout(() => void p.stop("SIGKILL"), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`${name} exited with ${code}; last lines:\n${p.lines.slice(-25).join("\n")}`);
  }
  return p.lines;
}

/** Stops every process still running (in reverse start order). */
export async function stopAll(): Promise<void> {
  for (const p of [...running].reverse()) await p.stop("SIGTERM", 3_000);
}

/** Stops everything if the run is interrupted. */
export function stopAllOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }
  process.once("exit", () => {
    for (const p of running) killGroup(p.child, "SIGKILL");
  });
}

/** Polls `url` with eth_chainId until it answers (the node is up) or `timeoutMs` passes. */
export async function waitForRpc(url: string, timeoutMs: number, node?: Managed): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (node && (node.child.exitCode !== null || node.child.signalCode !== null)) {
      throw new Error(`${node.name} exited before answering; last lines:\n${node.lines.slice(-20).join("\n")}`);
    }
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`no JSON-RPC answer at ${url} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
