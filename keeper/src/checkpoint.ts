/**
 * Checkpoint stores: in memory (tests, in-process use) and a JSON file written atomically (write to
 * a temporary file, fsync, rename), so a crash mid-write leaves the previous checkpoint intact.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { CheckpointStore } from "./interfaces";
import type { Checkpoint } from "./types";

/** Keeps the checkpoint in memory; share one instance between keepers to model a restart. */
export class MemoryCheckpointStore implements CheckpointStore {
  private json: string | undefined;

  async load(): Promise<Checkpoint | undefined> {
    return this.json === undefined ? undefined : (JSON.parse(this.json) as Checkpoint);
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    // Stored as text so that later mutation of the caller's object cannot change what was saved.
    this.json = JSON.stringify(checkpoint);
  }
}

/** A JSON file; the directory is created on the first save. */
export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly file: string) {}

  async load(): Promise<Checkpoint | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    const cp = JSON.parse(text) as Checkpoint;
    if (cp.version !== 1) throw new Error(`checkpoint ${this.file} has version ${String(cp.version)}, expected 1`);
    return cp;
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const handle = await fs.open(tmp, "w");
    try {
      await handle.writeFile(JSON.stringify(checkpoint));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, this.file);
  }
}
