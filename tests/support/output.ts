/**
 * Reading a child process's output while it runs: the text so far, waiting for a line that
 * matches, and the whole text once the process has ended (kept even when it was killed).
 *
 * ```ts ignore
 * const child = new Deno.Command("deno", { args: ["--version"], stderr: "piped" }).spawn();
 * const stderr = watchOutput(child.stderr);
 * await stderr.until(/phase=done/);
 * child.kill("SIGKILL");
 * console.log(await stderr.done);
 * ```
 *
 * @module
 */

/** A child's output stream, read to its end in the background. */
export interface WatchedOutput {
  /** The text read so far. */
  text(): string;
  /** Resolves with the first match of `pattern` in the text, or `undefined` if the stream ends
   * without one. */
  until(pattern: RegExp): Promise<RegExpMatchArray | undefined>;
  /** Resolves with the whole text once the stream has ended. */
  done: Promise<string>;
}

/** Starts reading `stream` (decoded as UTF-8) to its end. */
export function watchOutput(stream: ReadableStream<Uint8Array>): WatchedOutput {
  let text = "";
  let ended = false;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const done = (async () => {
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        notify();
      }
    } finally {
      ended = true;
      notify();
    }
    return text;
  })();
  return {
    text: () => text,
    until(pattern) {
      return new Promise((resolve) => {
        const check = () => {
          const match = text.match(pattern);
          if (match || ended) {
            waiters.delete(check);
            resolve(match ?? undefined);
          }
        };
        waiters.add(check);
        check();
      });
    },
    done,
  };
}
