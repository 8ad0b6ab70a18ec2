/**
 * A gate: a small HTTP proxy in front of an emulator that can hold one request, so that a test
 * can kill the process that sent it while it waits, at a chosen point of its work. A request is
 * held either before it is forwarded (the emulator never sees it) or after (the emulator has
 * done it, but the sender never learns so). Point the process under test at `endpoint`
 * (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_KINESIS`).
 *
 * ```ts ignore
 * import { openGate } from "./gate.ts";
 *
 * const gate = openGate("http://127.0.0.1:4566", (r) =>
 *   r.method === "PUT" && r.path.endsWith(".delta.zst") ? "after" : undefined);
 * // ... spawn a process with AWS_ENDPOINT_URL_S3=gate.endpoint ...
 * const held = await gate.held; // the PUT reached the emulator; its sender waits
 * // ... kill the process ...
 * await gate.close();
 * ```
 *
 * @module
 */

/** One request as the gate sees it. */
export interface GateRequest {
  /** `GET`, `PUT`, `POST`, ... */
  method: string;
  /** The URL path, decoded. */
  path: string;
  /** The query string, with its `?` (or empty). */
  search: string;
  /** For Kinesis: the operation (`GetRecords`) from the `X-Amz-Target` header. */
  operation?: string;
  /** How many requests the gate saw before this one. */
  index: number;
}

/** Where to hold a request: before forwarding it, or after (its response is held). */
export type Hold = "before" | "after";

/** A running gate. */
export interface Gate {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** Resolves with the request held, and where, once it is held. */
  held: Promise<GateRequest & { hold: Hold }>;
  /** Every request seen, in order. */
  seen: GateRequest[];
  /** Lets the held request go on as if it had never been held. */
  release(): void;
  /** Stops the gate: a request still held is answered 503 (its sender is normally dead). */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  "connection",
  "content-length",
  "expect",
  "host",
  "keep-alive",
  "transfer-encoding",
]);

/**
 * Opens a gate in front of `target`. `decide` picks, for each request, whether to hold it; at
 * most one request is held (later ones that `decide` would hold pass through).
 */
export function openGate(
  target: string,
  decide: (request: GateRequest) => Hold | undefined,
): Gate {
  const closing = new AbortController();
  const seen: GateRequest[] = [];
  let holding = false;
  let onHeld!: (r: GateRequest & { hold: Hold }) => void;
  const held = new Promise<GateRequest & { hold: Hold }>((resolve) => (onHeld = resolve));
  // A held request waits until it is released or the gate closes (its sender killed).
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const closed = new Promise<void>((resolve) => {
    closing.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  /** Whether the held request may go on. */
  const wait = async () => {
    await Promise.race([released, closed]);
    return !closing.signal.aborted;
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: closing.signal,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    const target_ = req.headers.get("x-amz-target");
    const info: GateRequest = {
      method: req.method,
      path: decodeURIComponent(url.pathname),
      search: url.search,
      operation: target_ ? target_.split(".").at(-1) : undefined,
      index: seen.length,
    };
    seen.push(info);
    const hold = holding ? undefined : decide(info);
    if (hold) holding = true;
    if (hold === "before") {
      onHeld({ ...info, hold });
      if (!await wait()) return new Response("gate closed", { status: 503 });
    }
    const headers = new Headers();
    for (const [k, v] of req.headers) if (!HOP_BY_HOP.has(k)) headers.set(k, v);
    const body = req.method === "GET" || req.method === "HEAD"
      ? undefined
      : new Uint8Array(await req.arrayBuffer());
    const response = await fetch(`${target}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body,
      redirect: "manual",
    });
    const bytes = req.method === "HEAD" ? null : new Uint8Array(await response.arrayBuffer());
    if (hold === "after") {
      onHeld({ ...info, hold });
      if (!await wait()) return new Response("gate closed", { status: 503 });
    }
    const out = new Headers();
    for (const [k, v] of response.headers) {
      if (!HOP_BY_HOP.has(k) || (k === "content-length" && bytes === null)) out.set(k, v);
    }
    return new Response(bytes, { status: response.status, headers: out });
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    held,
    seen,
    release,
    async close() {
      closing.abort();
      await server.finished;
    },
  };
}
