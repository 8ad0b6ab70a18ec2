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
const UNLOCKED_GRACE_MS = 60_000;

/** Runs `work` in a fresh locked working directory, removed afterwards whatever happens. */
export async function withWorkDir<T>(
  localPath: string,
  label: string,
  work: (dir: string) => Promise<T>,
): Promise<T> {
  const root = join(localPath, WORK_ROOT);
  await Deno.mkdir(root, { recursive: true });
  await removeAbandoned(root);
  const dir = join(root, `${label}.${crypto.randomUUID()}`);
  await Deno.mkdir(dir);
  const lock = await Deno.open(join(dir, LOCK_FILE), {
    write: true,
    create: true,
  });
  try {
    await lock.lock(true);
    return await work(dir);
  } finally {
    lock.close();
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
    let lock: Deno.FsFile | undefined;
    try {
      lock = await Deno.open(join(dir, LOCK_FILE), { write: true });
    } catch {
      // No lock file yet: either a run is just starting, or one died before locking.
      const info = await Deno.stat(dir).catch(() => undefined);
      if (
        info?.mtime && Date.now() - info.mtime.getTime() > UNLOCKED_GRACE_MS
      ) {
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
