/**
 * A request body a producer feeds one chunk at a time, for uploads whose bytes are produced
 * while they are sent. Each `write` resolves when the reader asks for the chunk after it, so a
 * reader that is done with a chunk before it reads the next (the node:http fetch's body writer
 * waits until the socket has taken it) gives the producer its memory back for later bytes.
 */
export class ChunkHandOff {
  readonly readable: ReadableStream<Uint8Array>;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** Settles when the reader asks for a chunk. */
  private demand = new Signal();
  /** Settles when the reader asks for the chunk after the one it has. */
  private release: Signal | undefined;
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

  /** Hands `data` to the reader; resolves when the reader has asked for the next chunk. */
  async write(data: Uint8Array): Promise<void> {
    this.throwIfStopped();
    await this.demand.promise;
    this.demand = new Signal();
    this.throwIfStopped();
    const release = new Signal();
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

/** A promise settled from outside, whose rejection is handled when nobody waits for it. */
class Signal {
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
