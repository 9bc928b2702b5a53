/**
 * A request body a producer feeds one chunk at a time, for uploads whose bytes are produced
 * while they are sent. Each `write` resolves when the reader requests the chunk after it. A
 * reader that finishes with each chunk before it reads the next (the node:http fetch's body
 * writer waits until the socket has taken it) thereby returns the chunk's memory to the producer.
 */
export class ChunkHandOff {
  readonly readable: ReadableStream<Uint8Array>;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** Settles when the reader requests a chunk. */
  private demand = new Deferred();
  /** Settles when the reader requests the chunk after the one it has. */
  private release: Deferred | undefined;
  /** Resolves the pull in progress. */
  private fill: (() => void) | undefined;
  private failure: { reason: unknown } | undefined;

  constructor() {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => {
          this.release?.resolve();
          this.release = undefined;
          this.demand.resolve();
          return new Promise<void>((resolve) => (this.fill = resolve));
        },
        cancel: (reason: unknown) => {
          this.stop(reason ?? new Error("the reader cancelled the body"));
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Hands `data` to the reader and resolves when the reader has requested the next chunk. */
  async write(data: Uint8Array): Promise<void> {
    this.throwIfStopped();
    await this.demand.promise;
    this.demand = new Deferred();
    this.throwIfStopped();
    const release = new Deferred();
    this.release = release;
    this.controller!.enqueue(data);
    this.takeFill();
    await release.promise;
  }

  /** Ends the body after the chunks written so far. */
  close(): void {
    if (this.failure) return;
    this.failure = { reason: new Error("the body is closed") };
    this.controller!.close();
    this.takeFill();
  }

  /** Fails the body: the reader gets `reason`, and so do pending and later writes. */
  abort(reason: unknown): void {
    if (this.failure) return;
    try {
      this.controller!.error(reason);
    } catch {
      // Already closed or errored.
    }
    this.stop(reason);
  }

  private throwIfStopped(): void {
    if (this.failure) throw this.failure.reason;
  }

  private stop(reason: unknown): void {
    this.failure ??= { reason };
    this.demand.reject(this.failure.reason);
    this.release?.reject(this.failure.reason);
    this.takeFill();
  }

  private takeFill(): void {
    const fill = this.fill;
    this.fill = undefined;
    fill?.();
  }
}

/** A promise settled from outside. Its rejection counts as handled even when no one awaits it. */
class Deferred {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (reason: unknown) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => {});
  }
}
