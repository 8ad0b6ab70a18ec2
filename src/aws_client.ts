/**
 * The AWS SDK v3 clients as streambolt's options accept them, typed by shape so that
 * streambolt's public types do not depend on the SDK's internal ones, yet per service: an
 * `S3Client` passed where a `KinesisClient` belongs (or the reverse) is a type error, and a
 * command's output keeps its type through `send`.
 *
 * @module
 */

/** A command as the SDK builds it: its input, and the handler chain that yields its output. */
export interface CommandLike<Output> {
  /** The command's input. */
  readonly input: object;
  /**
   * Builds the handler that sends the command (the SDK calls it; streambolt never does).
   *
   * @param stack The client's middleware stack.
   * @param configuration The client's resolved configuration.
   * @param options Per-request options.
   * @returns The handler, whose result carries the command's output.
   */
  resolveMiddleware(
    stack: never,
    configuration: never,
    options: never,
  ): (args: never) => Promise<{ output: Output }>;
}

/** Per-request options of `send`. */
export interface SendOptions {
  /** Aborts the request. */
  abortSignal?: AbortSignal;
}

/**
 * A Kinesis client: a `KinesisClient` from `@aws-sdk/client-kinesis`, or a double with the same
 * `send`. A client with S3 settings (an `S3Client`) is refused.
 */
export interface KinesisClientLike {
  /**
   * Sends a command.
   *
   * @param command A Kinesis command, such as `GetRecordsCommand`.
   * @param options Per-request options.
   * @returns The command's output.
   */
  send<Output>(command: CommandLike<Output>, options?: SendOptions): Promise<Output>;
  /** The client's resolved configuration: a region, and none of S3's addressing settings. */
  readonly config: { region: unknown; forcePathStyle?: never };
}

/**
 * An S3 client: an `S3Client` from `@aws-sdk/client-s3` (multipart uploads need the whole
 * client, so a double must be one too). A client without S3 settings (a `KinesisClient`) is
 * refused.
 */
export interface S3ClientLike {
  /**
   * Sends a command.
   *
   * @param command An S3 command, such as `GetObjectCommand`.
   * @param options Per-request options.
   * @returns The command's output.
   */
  send<Output>(command: CommandLike<Output>, options?: SendOptions): Promise<Output>;
  /** The client's resolved configuration, with S3's addressing settings. */
  readonly config: { forcePathStyle: unknown };
}
