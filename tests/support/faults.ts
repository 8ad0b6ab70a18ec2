/**
 * Fault injection for the AWS SDK clients: middleware at `finalizeRequest` with low priority,
 * inside the SDK's retry loop, so the real retry paths run. Every injected fault is counted.
 *
 * @module
 */

/** A fault to inject. */
export interface Fault {
  /** The error name the SDK would produce (or a Node error code for connection faults). */
  name: string;
  /** HTTP status, or 0 for a connection fault. */
  status: number;
}

export const THROTTLED: Fault = { name: "ProvisionedThroughputExceededException", status: 400 };
export const LIMIT_EXCEEDED: Fault = { name: "LimitExceededException", status: 400 };
export const EXPIRED_ITERATOR: Fault = { name: "ExpiredIteratorException", status: 400 };
export const INTERNAL: Fault = { name: "InternalFailure", status: 500 };
export const UNAVAILABLE: Fault = { name: "ServiceUnavailable", status: 503 };
export const SLOW_DOWN: Fault = { name: "SlowDown", status: 503 };
export const CONNECTION_RESET: Fault = { name: "ECONNRESET", status: 0 };

/** Builds the error the SDK would throw for a fault. */
export function faultError(fault: Fault): Error {
  if (fault.status === 0) {
    return Object.assign(new Error(`injected ${fault.name}`), { name: "Error", code: fault.name });
  }
  return Object.assign(new Error(`injected ${fault.name}`), {
    name: fault.name,
    $fault: fault.status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: fault.status },
  });
}

/** Counts of injected faults by name. */
export class FaultCounter {
  readonly byName = new Map<string, number>();
  get total(): number {
    return [...this.byName.values()].reduce((a, b) => a + b, 0);
  }
  add(name: string): void {
    this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
  }
}

interface Stackable {
  middlewareStack: {
    add(
      middleware: unknown,
      options: { step: "finalizeRequest"; priority: "low"; name: string },
    ): void;
  };
}

/**
 * Calls `inspect` before every command `client` sends, inside the retry loop; it may throw to
 * fail the call. Gets the command name and input.
 */
export function interceptCommands(
  client: unknown,
  inspect: (command: string, input: Record<string, unknown>) => void,
  name = "interceptCommands",
): void {
  (client as Stackable).middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName: string }) =>
    async (args: unknown) => {
      inspect(context.commandName, (args as { input: Record<string, unknown> }).input);
      return await next(args);
    },
    { step: "finalizeRequest", priority: "low", name },
  );
}

/**
 * Makes `client` fail the named commands: `pick` returns the fault for a call, or undefined to
 * let it through.
 */
export function injectFaults(
  client: unknown,
  commands: string[],
  pick: (command: string) => Fault | undefined,
  counter: FaultCounter,
  name = "faultInjection",
): void {
  interceptCommands(client, (command) => {
    if (!commands.includes(command)) return;
    const fault = pick(command);
    if (fault) {
      counter.add(fault.name);
      throw faultError(fault);
    }
  }, name);
}
