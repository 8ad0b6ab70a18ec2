/**
 * The simulator's store seam: {@linkcode SimStore} hands each actor (a producer run, a
 * consumer, the replica) its own {@linkcode StoreView} of one real {@linkcode FileSnapshotStore}.
 * A view counts its calls and, as the schedule says, fails a call before it reaches the store
 * (a request lost), fails it after (the reply lost: the write happened), or holds it until the
 * schedule releases it (a slow request, which lets every other actor overtake it: requests
 * reordered and raced). A held call that is never released is a process killed at that await:
 * the store never answers it again; at the end of the schedule it is rejected with
 * {@linkcode SimKilledError} so nothing is left pending.
 *
 * @module
 */
import {
  type DeleteOptions,
  type DownloadOptions,
  type DownloadResult,
  FileSnapshotStore,
  type HeadOptions,
  type HeadResult,
  type ListOptions,
  type PutOptions,
  type SnapshotStore,
  type StoredObject,
} from "../../mod.ts";

/** An injected store failure: the request or its reply was lost. */
export class SimStoreError extends Error {
  /** Creates the error for the `n`th call of a view. */
  constructor(view: string, n: number, op: string, when: "request" | "reply") {
    super(`Cannot ${op} in the simulated store as call ${n} of ${view} lost its ${when}`);
    this.name = "SimStoreError";
  }
}

/** A held call whose process the schedule killed: rejected when the schedule is torn down. */
export class SimKilledError extends Error {
  /** Creates the error for a view. */
  constructor(view: string) {
    super(`Cannot answer ${view} as its process was killed: current value is "killed"`);
    this.name = "SimKilledError";
  }
}

/** What a view does to its calls, by 1-based call number. */
export interface ViewPlan {
  /** Calls that fail before reaching the store. */
  failRequest?: number[];
  /** Calls that reach the store and then fail (the reply is lost). */
  failReply?: number[];
  /** The call held until {@linkcode StoreView.release} (or killed). */
  holdAt?: number;
}

/** One actor's way into the store. */
export class StoreView implements SnapshotStore {
  readonly url: string;
  readonly name: string;
  /** Calls made so far. */
  calls = 0;
  #inner: SnapshotStore;
  #plan: ViewPlan;
  #reached?: () => void;
  /** Resolves when the held call arrives. */
  readonly reached: Promise<void>;
  #release?: (error?: Error) => void;
  #held = false;
  /** Whether a call of this view was ever held (others may have overtaken it). */
  wasHeld = false;

  constructor(inner: SnapshotStore, name: string, plan: ViewPlan) {
    this.#inner = inner;
    this.url = inner.url;
    this.name = name;
    this.#plan = plan;
    this.reached = new Promise((resolve) => (this.#reached = resolve));
  }

  /** Whether a call is waiting to be released. */
  get held(): boolean {
    return this.#held;
  }

  /** Lets the held call (and every later one) through. */
  release(): void {
    this.#plan = { ...this.#plan, holdAt: undefined };
    this.#release?.();
  }

  /** Rejects the held call: the process behind it is gone. */
  kill(): void {
    this.#plan = { ...this.#plan, holdAt: undefined };
    this.#release?.(new SimKilledError(this.name));
  }

  async #gate(op: string): Promise<number> {
    const n = ++this.calls;
    if (this.#plan.holdAt === n) {
      this.#held = true;
      this.wasHeld = true;
      const wait = new Promise<void>((resolve, reject) => {
        this.#release = (error) => error ? reject(error) : resolve();
      });
      this.#reached?.();
      try {
        await wait;
      } finally {
        this.#held = false;
        this.#release = undefined;
      }
    }
    if (this.#plan.failRequest?.includes(n)) {
      throw new SimStoreError(this.name, n, op, "request");
    }
    return n;
  }

  #after(n: number, op: string): void {
    if (this.#plan.failReply?.includes(n)) throw new SimStoreError(this.name, n, op, "reply");
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    const n = await this.#gate("list");
    const found = await Array.fromAsync(this.#inner.list(prefix, options));
    this.#after(n, "list");
    yield* found;
  }

  async put(key: string, file: string, options: PutOptions): Promise<void> {
    const n = await this.#gate("put");
    await this.#inner.put(key, file, options);
    this.#after(n, "put");
  }

  async download(key: string, file: string, options?: DownloadOptions): Promise<DownloadResult> {
    const n = await this.#gate("download");
    const result = await this.#inner.download(key, file, options);
    this.#after(n, "download");
    return result;
  }

  async delete(keys: string[], options?: DeleteOptions): Promise<void> {
    const n = await this.#gate("delete");
    await this.#inner.delete(keys, options);
    this.#after(n, "delete");
  }

  async head(key: string, options?: HeadOptions): Promise<HeadResult | undefined> {
    const n = await this.#gate("head");
    const result = await this.#inner.head!(key, options);
    this.#after(n, "head");
    return result;
  }
}

/** The file store every view shares, and the views handed out. */
export class SimStore {
  readonly inner: FileSnapshotStore;
  readonly views: StoreView[] = [];

  constructor(root: string) {
    this.inner = new FileSnapshotStore({ root });
  }

  /** A new view for one actor's operation. */
  view(name: string, plan: ViewPlan = {}): StoreView {
    const view = new StoreView(this.inner, name, plan);
    this.views.push(view);
    return view;
  }

  /** Kills every call still held: the end of the schedule. */
  killAll(): void {
    for (const view of this.views) view.kill();
  }
}
