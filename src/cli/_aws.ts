/**
 * AWS clients for the CLI, configured the AWS way: credentials and region from the standard
 * chain and environment, endpoints from `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_S3`
 * (read by the SDK itself). Path-style S3 addressing is used for IP and localhost endpoints,
 * or when asked for. Loaded only by the commands that talk to AWS.
 *
 * @module
 */
import { KinesisClient } from "@aws-sdk/client-kinesis";
import type { S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { KinesisFastProtocol } from "../kinesis/fast_protocol.ts";
import { type AwsService, noteService } from "./_common.ts";

function handler(): NodeHttpHandler {
  // A request timeout that throws, so a stalled call is retried instead of hanging.
  return new NodeHttpHandler({
    connectionTimeout: 5_000,
    requestTimeout: 60_000,
    throwOnRequestTimeout: true,
  });
}

/**
 * A Kinesis client with request timeouts and no retries of its own: streambolt's retry loop
 * (10 attempts with capped, jittered backoff) is the one retry budget of each Kinesis call.
 * A command whose calls have no such loop (`status`) asks for the SDK's own retries instead,
 * with `maxAttempts`. Its GetRecords pages are read by {@linkcode KinesisFastProtocol} (the SDK's
 * protocol with a direct reader of successful GetRecords bodies).
 */
export function makeKinesisClient(maxAttempts = 1): KinesisClient {
  return noteErrorsOf(
    new KinesisClient({ requestHandler: handler(), maxAttempts, protocol: KinesisFastProtocol }),
    "Kinesis",
  );
}

/** The part of a client's middleware stack used here. */
interface WithMiddleware {
  middlewareStack: {
    add(
      middleware: (next: (args: never) => Promise<unknown>) => (args: never) => Promise<unknown>,
      options: { step: "initialize"; priority: "high"; name: string },
    ): void;
  };
}

/**
 * Notes the service of every error a call of the client ends with (region and credentials
 * are resolved, and connections made, inside the middleware stack), so that the CLI's one
 * line can say which service it could not reach.
 */
function noteErrorsOf<C>(client: C, service: AwsService): C {
  (client as unknown as WithMiddleware).middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        noteService(error, service);
        throw error;
      }
    },
    { step: "initialize", priority: "high", name: "streamboltNoteService" },
  );
  return client;
}

/** Whether an endpoint URL names an IP address or localhost (no virtual-host buckets there). */
export function needsPathStyle(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(":");
  } catch {
    return false;
  }
}

/**
 * An S3 client with request timeouts and the right addressing style. Its standard retries (10
 * attempts) are the one retry budget of each S3 call: streambolt adds no loop around them. The
 * S3 SDK is loaded here, on first use, so that Kinesis-only and file-store runs skip it.
 */
export async function makeS3Client(pathStyle?: boolean): Promise<S3Client> {
  const { S3Client } = await import("@aws-sdk/client-s3");
  const endpoint = Deno.env.get("AWS_ENDPOINT_URL_S3") ?? Deno.env.get("AWS_ENDPOINT_URL");
  return noteErrorsOf(
    new S3Client({
      requestHandler: handler(),
      maxAttempts: 10,
      retryMode: "standard",
      forcePathStyle: pathStyle || needsPathStyle(endpoint),
    }),
    "S3",
  );
}
