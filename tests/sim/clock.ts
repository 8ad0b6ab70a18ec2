/**
 * The simulator's clock seam: while installed, every timer of at least
 * {@linkcode VIRTUAL_MIN_MS} (the replica's poll interval, backoffs) is virtual: it fires only
 * when the schedule says so ({@linkcode VirtualClock.fireNext}), however long the real wait
 * would have been, so a schedule never waits on a poll interval and the moment a poll happens
 * is part of the schedule. Shorter timers (the file store's and the working directories'
 * sub-100 ms rechecks) stay real.
 *
 * @module
 */

/** Timers at least this long are virtual. */
export const VIRTUAL_MIN_MS = 200;

type RealSet = (handler: unknown, delay?: number, ...args: unknown[]) => number;

interface VirtualTimer {
  id: number;
  due: number;
  fire: () => void;
}

/** Virtual timers, in the order they fall due. */
export class VirtualClock {
  #timers: VirtualTimer[] = [];
  #now = 0;
  #nextId = 1_000_000_000;
  #realSet = globalThis.setTimeout as unknown as RealSet;
  #realClear = globalThis.clearTimeout as unknown as (id?: number) => void;
  #waiters: (() => void)[] = [];

  /** Virtual timers pending. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Routes long timers through this clock until {@linkcode VirtualClock.uninstall}. */
  install(): void {
    const realSet = this.#realSet;
    const realClear = this.#realClear;
    const patchedSet = (handler: unknown, delay?: number, ...args: unknown[]): number => {
      if ((delay ?? 0) < VIRTUAL_MIN_MS || typeof handler !== "function") {
        return realSet(handler, delay, ...args);
      }
      const id = this.#nextId++;
      const fn = handler as (...args: unknown[]) => void;
      this.#timers.push({ id, due: this.#now + delay!, fire: () => fn(...args) });
      this.#timers.sort((a, b) => a.due - b.due || a.id - b.id);
      for (const wake of this.#waiters.splice(0)) wake();
      return id;
    };
    const patchedClear = (id?: number) => {
      if (id !== undefined && id >= 1_000_000_000) {
        this.#timers = this.#timers.filter((t) => t.id !== id);
      } else realClear(id);
    };
    globalThis.setTimeout = patchedSet as unknown as typeof setTimeout;
    globalThis.clearTimeout = patchedClear as unknown as typeof clearTimeout;
  }

  /** Puts the real timers back; virtual timers still pending never fire. */
  uninstall(): void {
    globalThis.setTimeout = this.#realSet as unknown as typeof setTimeout;
    globalThis.clearTimeout = this.#realClear as unknown as typeof clearTimeout;
    this.#timers = [];
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Advances to the next virtual timer and fires it; false when none is pending. */
  fireNext(): boolean {
    const timer = this.#timers.shift();
    if (!timer) return false;
    this.#now = timer.due;
    timer.fire();
    return true;
  }

  /** Resolves when a virtual timer is next set. */
  nextTimerSet(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
