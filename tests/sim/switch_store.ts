/**
 * The replica's store: one object for its whole life, behind which the simulator puts a new
 * {@linkcode StoreView} for each poll, so each poll's calls can be held or failed on their own.
 *
 * @module
 */
import type { SnapshotStore } from "../../mod.ts";
import type { StoreView } from "./sim_store.ts";

/** Delegates every call to the current view. */
export class SwitchStore implements SnapshotStore {
  readonly url: string;
  /** The view calls go to now. */
  view: StoreView;

  constructor(view: StoreView) {
    this.view = view;
    this.url = view.url;
  }

  list: SnapshotStore["list"] = (prefix, options) => this.view.list(prefix, options);
  put: SnapshotStore["put"] = (key, file, options) => this.view.put(key, file, options);
  download: SnapshotStore["download"] = (key, file, options) =>
    this.view.download(key, file, options);
  delete: SnapshotStore["delete"] = (keys, options) => this.view.delete(keys, options);
  head: NonNullable<SnapshotStore["head"]> = (key, options) => this.view.head(key, options);
}
