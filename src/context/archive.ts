/**
 * Writes a context as a gzip-compressed tar layer in one streaming pass: tar -> sha256 of the
 * uncompressed bytes (the diffID) -> parallel gzip -> sha256 of the compressed bytes (the
 * digest) -> sink. Nothing is buffered whole, re-read or decompressed, and a slow sink slows
 * the file reads.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

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
  const source = Readable.from(gzip, { highWaterMark: 1 });
  const pipelineOptions = options.signal ? { signal: options.signal } : {};

  if (isWebWritable(sink)) {
    await pipeline(
      source,
      (chunks: AsyncIterable<Uint8Array>) => writeToWebStream(chunks, sink, options.signal),
      pipelineOptions,
    );
  } else {
    await pipeline(source, sink, pipelineOptions);
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

/** Writes chunks to a web stream, waiting for `ready` between writes, then closes it. */
async function writeToWebStream(
  chunks: AsyncIterable<Uint8Array>,
  sink: WritableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const writer = sink.getWriter();
  try {
    for await (const chunk of chunks) {
      await writer.ready;
      await writer.write(chunk);
    }
    await writer.close();
  } catch (error) {
    await writer.abort(signal?.reason ?? error).catch(() => {});
    throw error;
  } finally {
    writer.releaseLock();
  }
}
