/**
 * The CLI's process ends when its command does, also with OpenTelemetry on: Deno 2.9's
 * `Deno.exit()` hangs now and then while flushing its OTLP exporter (about one exit in five,
 * the untraced CI hang of `a following CLI exports the age of its latest point`), so cli.ts ends
 * the process naturally. Every run here must end; one that does not within a minute (far
 * beyond what a quick command takes even on a loaded machine) is reported as hung.
 */
import assert from "node:assert/strict";
import { spawnCli } from "./support/cli.ts";

const RUNS = 12;
const HUNG_AFTER_MS = 60_000;

Deno.test("a CLI command with OTEL_DENO=true exports its metrics and ends, every time", async () => {
  let requests = 0;
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer().catch(() => undefined);
    requests++;
    return Response.json({});
  });
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-cli-exit-" });
  try {
    const env = {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.addr.port}`,
      OTEL_METRIC_EXPORT_INTERVAL: "50",
    };
    const hung: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const child = await spawnCli(["list", "--stream", "s", "--store", "snaps"], { cwd, env });
      const output = child.output();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        output.then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), HUNG_AFTER_MS))),
      ]);
      clearTimeout(timer);
      if (!ended) {
        hung.push(run);
        child.kill("SIGKILL");
      }
      const { code, stderr } = await output;
      if (ended) assert.equal(code, 0, new TextDecoder().decode(stderr));
    }
    assert.deepEqual(hung, [], `runs that never ended (of ${RUNS})`);
    assert.ok(requests > 0, "the runs exported to the receiver");
  } finally {
    await receiver.shutdown();
    await Deno.remove(cwd, { recursive: true });
  }
});
