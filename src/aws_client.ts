/**
 * The shape of an AWS SDK v3 client as streambolt's options accept it.
 *
 * @module
 */

/**
 * An AWS SDK v3 client: pass a `KinesisClient` from `@aws-sdk/client-kinesis` where a Kinesis
 * client is asked for, and an `S3Client` from `@aws-sdk/client-s3` for S3. Typed by shape so
 * that streambolt's public types do not depend on the SDK's internal ones.
 */
export interface AwsClient {
  /**
   * Sends a command.
   *
   * @param command The SDK command.
   * @param options Per-request options such as `abortSignal`.
   * @returns The command's output.
   */
  send(command: unknown, options?: unknown): Promise<unknown>;
}
