/**
 * Working directories for snapshot runs: `<localPath>/.streambolt/<label>.<uuid>/`, each
 * holding an exclusive lock for as long as its run lives. A directory whose lock can be taken
 * belongs to a run that died (killed, crashed) and is removed by the next run.
 *
 * @module
 */
import { join } from "node:path";

const WORK_ROOT = ".streambolt";
const LOCK_FILE = ".lock";
const NEW_DIR_RECHECK_MS = 100;

async function isAbandonedNew(dir: string): Promise<boolean> {
  for (let check = 0; check < 2; check++) {
    if (check > 0) await new Promise((r) => setTimeout(r, NEW_DIR_RECHECK_MS));
    let lock: Deno.FsFile;
    try {
      lock = await Deno.open(join(dir, LOCK_FILE), { write: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) return false;
      try {
        await Deno.lstat(dir);
      } catch {
        return false; // renamed into view, or removed
      }
      continue; // no lock file yet
    }
    try {
      if (!await lock.tryLock(true)) return false; // its run is alive
    } finally {
      lock.close();
    }
  }
  return true;
}

/** Runs `work` in a fresh locked working directory, removed afterwards whatever happens. */
export async function withWorkDir<T>(
  localPath: string,
  label: string,
  work: (dir: string) => Promise<T>,
): Promise<T> {
  const root = join(localPath, WORK_ROOT);
  await Deno.mkdir(root, { recursive: true });
  await removeAbandoned(root);
  // Lock first, under a hidden name, then rename into view: a visible working directory is
  // always locked, so another run's sweep can never take it for an abandoned one.
  const id = crypto.randomUUID();
  const hidden = join(root, `.new-${id}`);
  const dir = join(root, `${label}.${id}`);
  // A finishing run removes the root when it is empty: create both, retrying that race.
  for (let attempt = 1;; attempt++) {
    try {
      await Deno.mkdir(hidden, { recursive: true });
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound) || attempt >= 5) throw error;
    }
  }
  const lock = await Deno.open(join(hidden, LOCK_FILE), { write: true, create: true });
  try {
    await lock.lock(true);
    await Deno.rename(hidden, dir);
    return await work(dir);
  } finally {
    lock.close();
    await Deno.remove(hidden, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(root).catch(() => {}); // only when empty: other runs may be working
  }
}

/** Removes working directories whose run is gone. */
export async function removeAbandoned(root: string): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch {
    return removed;
  }
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const dir = join(root, entry.name);
    if (entry.name.startsWith(".new-")) {
      // A run locks its new directory microseconds after creating it, then renames it. One
      // that is still unlocked (or has no lock file) 100 ms later belongs to a dead run.
      if (await isAbandonedNew(dir)) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        removed.push(dir);
      }
      continue;
    }
    let lock: Deno.FsFile;
    try {
      lock = await Deno.open(join(dir, LOCK_FILE), { write: true });
    } catch {
      // Its own run is removing it, or a run was killed while removing it (the lock file
      // went first): still there without a lock file 100 ms later, it is abandoned.
      if (await isAbandonedNew(dir)) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        removed.push(dir);
      }
      continue;
    }
    try {
      if (await lock.tryLock(true)) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        removed.push(dir);
      }
    } finally {
      lock.close();
    }
  }
  return removed;
}
