/**
 * The Kinesis SDK, loaded on first use: importing streambolt (for the file store, the finder or
 * `inspect`) never loads AWS code it does not call.
 *
 * @module
 */

let sdk: Promise<typeof import("@aws-sdk/client-kinesis")> | undefined;

/** The `@aws-sdk/client-kinesis` module, imported once. */
export function kinesisSdk(): Promise<typeof import("@aws-sdk/client-kinesis")> {
  return sdk ??= import("@aws-sdk/client-kinesis");
}
