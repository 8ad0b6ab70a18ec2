/**
 * A counting proxy for figure 11: it forwards every request to an emulator unchanged and
 * counts them by operation (Kinesis: the `X-Amz-Target` action; S3: LIST, GET, HEAD, PUT,
 * DELETE, POST), so that a CLI run pointed at it reports how many requests it made.
 *
 * @module
 */

/** A running proxy. */
export interface CountProxy {
  /** Its URL, to set as the CLI's endpoint. */
  endpoint: string;
  /** The requests since the last reset, by operation. */
  counts(): Record<string, number>;
  /** Forgets the counts. */
  reset(): void;
  /** Stops the proxy. */
  stop(): Promise<void>;
}

/** The operation a request is, for counting. */
function operation(request: Request): string {
  const target = request.headers.get("x-amz-target");
  if (target) return target.slice(target.indexOf(".") + 1);
  const url = new URL(request.url);
  if (request.method === "GET" && url.searchParams.has("list-type")) return "LIST";
  return request.method;
}

/**
 * Starts a proxy to `target` on a free loopback port.
 *
 * @param target The emulator's endpoint.
 * @returns The proxy.
 */
export function startCountProxy(target: string): CountProxy {
  const counts = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const op = operation(req);
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const url = new URL(req.url);
    const body = req.body ? await req.arrayBuffer() : undefined;
    const headers = new Headers(req.headers);
    headers.delete("host");
    const response = await fetch(`${target}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body,
    });
    return new Response(response.body, { status: response.status, headers: response.headers });
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    counts: () => Object.fromEntries([...counts].sort()),
    reset: () => counts.clear(),
    stop: () => server.shutdown(),
  };
}

/**
 * Counts as a short string, e.g. `GetRecords 1, LIST 2`.
 *
 * @param counts The counts.
 * @returns The string.
 */
export function formatOps(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? "none" : entries.map(([k, v]) => `${k} ${v}`).join(", ");
}
