/**
 * Writes a context as a gzip-compressed tar layer in one streaming pass: tar -> sha256 of the
 * uncompressed bytes (the diffID) -> parallel gzip -> sha256 of the compressed bytes (the
 * digest) -> sink. Nothing is buffered whole, re-read or decompressed, and a slow sink slows
 * the file reads.
 */
import { createHash } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";

import { InputError } from "../errors.ts";
import type { ContextEntry } from "./entries.ts";
import { gzipParallel } from "./gzip-parallel.ts";
import { tarStream } from "./tar.ts";

/** Digests and sizes of a written context archive. */
export interface ArchiveResult {
  /** `sha256:<hex>` of the uncompressed tar: the layer's diffID. */
  diffID: string;
  /** `sha256:<hex>` of the gzip bytes written to the sink: the layer blob's digest. */
  digest: string;
  /** Bytes written to the sink. */
  size: number;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
}

/** Options of `writeArchive`. */
export interface ArchiveOptions {
  /** gzip level from 0 (store only) to 9. Default 6. */
  level?: number;
  /** Modification time of every entry in seconds. Default `SOURCE_DATE_EPOCH`, else 0. */
  mtime?: number;
  /** Called with the number of uncompressed bytes archived so far. */
  onProgress?: (bytes: number) => void;
  /**
   * Aborts the archive: the returned promise rejects, and the sink is destroyed (Node streams)
   * or aborted (web streams).
   */
  signal?: AbortSignal;
  /**
   * Whether the sink is done with each chunk when its write completes (the callback of a
   * Node stream's `write`, the promise of a web stream writer's `write`) and keeps no reference
   * to it. The archive then writes one chunk at a time and reuses the memory of stored blocks
   * for later output. Default false.
   */
  sinkReleasesChunks?: boolean;
}

/**
 * Streams the tar of `entries`, gzip-compressed, into `sink` and ends the sink. Resolves with
 * the diffID, digest and sizes once the sink has accepted every byte. Blocks of the tar are
 * deflated on all cores and joined into one gzip member (see `gzipParallel`); the gzip header
 * carries no file name and mtime 0, so the compressed bytes depend only on the entries, the
 * level and the zlib build of the runtime.
 */
export async function writeArchive(
  entries: readonly ContextEntry[],
  sink: NodeJS.WritableStream | WritableStream<Uint8Array>,
  options: ArchiveOptions = {},
): Promise<ArchiveResult> {
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new InputError(
      `invalid gzip level ${level}: it must be a whole number from 0 to 9, e.g. 6 (the default)`,
    );
  }

  const uncompressed = createHash("sha256");
  const compressed = createHash("sha256");
  let uncompressedSize = 0;
  let size = 0;

  // The tar's read buffers are reused: its chunks are copied into blocks at once.
  const tar = tarStream(entries, { mtime: options.mtime, reuseBuffers: true });
  const gzip = hashChunks(
    gzipParallel(tar, {
      level,
      reuseOutput: options.sinkReleasesChunks ?? false,
      onBlock: (block) => {
        uncompressed.update(block);
        uncompressedSize += block.length;
        options.onProgress?.(uncompressedSize);
      },
    }),
    (chunk) => {
      compressed.update(chunk);
      size += chunk.length;
    },
  );
  const pipelineOptions = options.signal ? { signal: options.signal } : {};

  if (options.sinkReleasesChunks) {
    // No stream in between, because it would read the next chunk while the sink still has this
    // one.
    await (isWebWritable(sink)
      ? writeToWebStream(gzip, sink, options.signal)
      : writeToNodeStream(gzip, sink as Writable, options.signal));
  } else if (isWebWritable(sink)) {
    await pipeline(
      Readable.from(gzip, { highWaterMark: 1 }),
      (chunks: AsyncIterable<Uint8Array>) => writeToWebStream(chunks, sink, options.signal),
      pipelineOptions,
    );
  } else {
    await pipeline(Readable.from(gzip, { highWaterMark: 1 }), sink, pipelineOptions);
  }

  return {
    diffID: `sha256:${uncompressed.digest("hex")}`,
    digest: `sha256:${compressed.digest("hex")}`,
    size,
    uncompressedSize,
  };
}

/**
 * Computes the diffID and size of the uncompressed tar of `entries` without compressing or
 * writing it anywhere.
 */
export async function tarDigest(
  entries: readonly ContextEntry[],
  options: { mtime?: number; signal?: AbortSignal } = {},
): Promise<{ diffID: string; uncompressedSize: number }> {
  const hash = createHash("sha256");
  let uncompressedSize = 0;
  for await (const chunk of tarStream(entries, { mtime: options.mtime, reuseBuffers: true })) {
    options.signal?.throwIfAborted();
    hash.update(chunk);
    uncompressedSize += chunk.length;
  }
  return { diffID: `sha256:${hash.digest("hex")}`, uncompressedSize };
}

async function* hashChunks(
  chunks: AsyncIterable<Uint8Array>,
  observe: (chunk: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    observe(chunk);
    yield chunk;
  }
}

function isWebWritable(
  sink: NodeJS.WritableStream | WritableStream<Uint8Array>,
): sink is WritableStream<Uint8Array> {
  return typeof (sink as WritableStream<Uint8Array>).getWriter === "function";
}

/**
 * Writes chunks to a web stream, each once the write before it has completed, then closes it.
 * On a failure or an abort the stream is aborted.
 */
async function writeToWebStream(
  chunks: AsyncIterable<Uint8Array>,
  sink: WritableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const writer = sink.getWriter();
  const onAbort = () => void writer.abort(signal!.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      await writer.ready;
      await writer.write(chunk);
    }
    signal?.throwIfAborted();
    await writer.close();
  } catch (error) {
    await writer.abort(signal?.reason ?? error).catch(() => {});
    throw signal?.aborted ? signal.reason : error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    writer.releaseLock();
  }
}

/**
 * Writes chunks to a Node stream, each once the stream has called back for the one before,
 * then ends it and waits until it has finished. On a failure or an abort the stream is
 * destroyed, as `pipeline` does.
 */
async function writeToNodeStream(
  chunks: AsyncIterable<Uint8Array>,
  sink: Writable,
  signal: AbortSignal | undefined,
): Promise<void> {
  // Errors reach the write callbacks and `finished`. Without a listener they would also be
  // thrown as uncaught 'error' events.
  sink.on("error", () => {});
  const onAbort = () => sink.destroy(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        sink.write(chunk, (error) => (error ? reject(error) : resolve()));
      });
    }
    signal?.throwIfAborted();
    sink.end();
    await finished(sink);
  } catch (error) {
    sink.destroy();
    throw signal?.aborted ? signal.reason : error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
