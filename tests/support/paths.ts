/**
 * Path helpers for tests.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The path of a `file:` URL, with a trailing slash kept for directories. */
export function fromFileUrl(url: URL): string {
  const path = fileURLToPath(url);
  return url.pathname.endsWith("/") && !path.endsWith("/") ? path + "/" : path;
}
