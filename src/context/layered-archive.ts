/**
 * Writes a context as several gzip tar layers (see `splitLayers`) and skips a layer whose files
 * are unchanged since an earlier build when the caller says its blob is still where it is
 * needed. This is what makes a rebuild after a one-file edit archive and upload only the layer
 * holding that file.
 */
import { createWriteStream } from "node:fs";
import { Writable } from "node:stream";
import { join } from "node:path";

import { silentLogger, type Logger } from "../log.ts";
import { writeArchive, type ArchiveOptions, type ArchiveResult } from "./archive.ts";
import { contextDigests } from "./digest.ts";
import type { ContextEntry } from "./entries.ts";
import { LayerCache, layerCacheKey, type CachedLayer } from "./layer-cache.ts";
import { splitLayers, type LayerName } from "./layers.ts";
import { archiveMtime } from "./tar.ts";

/** How many layers are archived at the same time. */
const LAYERS_AT_ONCE = 2;

/** One layer of the context, built now or reused from an earlier build. */
export interface BuiltLayer {
  name: LayerName;
  /** `sha256:<hex>` of the gzip blob. */
  digest: string;
  size: number;
  diffID: string;
  /** Local file of the blob when it was built now and not streamed; undefined otherwise. */
  file?: string;
  /** True when `streamTo` received every byte of the blob and committed it; no file is kept. */
  streamed?: boolean;
}

/** A second destination for a layer's gzip bytes while they are written, e.g. a registry upload. */
export interface LayerCopy {
  /**
   * Takes the next bytes. Resolves once the copy is done with `data` (sent or copied): the
   * archive reuses that memory for later bytes.
   */
  write(data: Uint8Array): Promise<void>;
  /** Commits the copy as the blob `digest`; rejects when what it received has another digest. */
  finish(digest: string): Promise<unknown>;
  cancel(): Promise<void>;
}

/** Options of `writeLayers`. */
export interface WriteLayersOptions {
  /** Folder the layer files are written to. */
  dir: string;
  /** Folder the context goes under in the image, e.g. `/app/`. */
  pathPrefix: string;
  /** gzip level; default 6. */
  level?: number;
  /** Modification time of every entry; default `SOURCE_DATE_EPOCH`, else 0. */
  mtime?: number;
  /** The content hash cache `contextDigest` uses, so unchanged files are not read. */
  digestCacheFile?: string;
  /** Content sha256 of entries hashed earlier in this process (see `ContextDigestOptions`). */
  contentHashes?: Map<ContextEntry, string>;
  /** The file recording layers built earlier; without it every layer is built. */
  layerCacheFile?: string;
  /**
   * Returns whether a blob built earlier can be used as it is, e.g. because the target
   * repository already contains it or it can be mounted from the repository it was pushed to.
   * Without it no layer is reused.
   */
  canReuse?: (layer: CachedLayer) => Promise<boolean>;
  /** `registry/repository` the layers go to, recorded with them for later mounts. */
  repository?: string;
  /**
   * Opens a copy that receives each built layer's gzip bytes as they are produced, so an upload
   * overlaps compression, and no layer file is written. A copy that fails is cancelled and
   * dropped with a debug message, and the layer is archived again into a file the caller
   * uploads.
   */
  streamTo?: (name: LayerName) => Promise<LayerCopy | undefined>;
  /** Called with the number of uncompressed bytes archived so far, over all layers. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
  logger?: Logger;
}

/**
 * Splits `entries` into layers and returns each layer's blob, in layer order. A layer is reused
 * when the layer cache has a record of its files and `canReuse` accepts the blob, and archived
 * into `dir` otherwise.
 */
export async function writeLayers(
  entries: readonly ContextEntry[],
  options: WriteLayersOptions,
): Promise<BuiltLayer[]> {
  const logger = options.logger ?? silentLogger;
  const level = options.level ?? 6;
  const mtime = options.mtime ?? archiveMtime();
  const layers = splitLayers(entries, options.pathPrefix);
  const cache = options.layerCacheFile ? await LayerCache.open(options.layerCacheFile) : undefined;
  const digests = cache
    ? await contextDigests(
        layers.map((layer) => layer.entries),
        {
          logger,
          ...(options.digestCacheFile ? { cacheFile: options.digestCacheFile } : {}),
          ...(options.contentHashes ? { contentHashes: options.contentHashes } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        },
      )
    : [];

  // Two layers are archived at once, so the main-thread work of one layer (stored model files,
  // many small files) overlaps the deflate of the other on the thread pool. The first failure
  // stops the other layer, so no upload goes on after an error.
  const built = new Array<BuiltLayer>(layers.length);
  const archivedBytes = new Array<number>(layers.length).fill(0);
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  let failure: { error: unknown } | undefined;

  const buildLayer = async (index: number): Promise<void> => {
    const layer = layers[index]!;
    const key = cache ? layerCacheKey({ contextDigest: digests[index]!, level, mtime }) : "";
    const known = cache?.get(key);
    if (known && options.canReuse && (await options.canReuse(known))) {
      logger.debug(`layer ${layer.name} unchanged: reusing ${known.digest}`);
      // The blob is now in this repository too, where the next build can mount it from.
      if (options.repository) cache?.set(key, { ...known, repository: options.repository });
      built[index] = {
        name: layer.name,
        digest: known.digest,
        size: known.size,
        diffID: known.diffID,
      };
      return;
    }

    const archiveOptions = {
      level,
      mtime,
      onProgress: (bytes: number) => {
        archivedBytes[index] = bytes;
        options.onProgress?.(archivedBytes.reduce((total, count) => total + count, 0));
      },
      signal,
    };
    signal.throwIfAborted();
    const copy = await options.streamTo?.(layer.name).catch((error: unknown) => {
      logger.debug(`layer ${layer.name}: no streaming copy: ${describe(error)}`);
      return undefined;
    });

    let file: string | undefined;
    let result = copy
      ? await streamLayer(layer.entries, copy, archiveOptions).catch((error: unknown) => {
          if (!(error instanceof CopyFailed)) throw error;
          logger.debug(
            `layer ${layer.name}: streaming copy dropped: ${describe(error.cause)}; archiving it into a file`,
          );
          return undefined;
        })
      : undefined;
    if (!result) {
      // Without a copy, or after a failed one, the layer goes into a file the caller uploads.
      // The archive is deterministic, so a second pass gives the bytes the copy would have had.
      file = join(options.dir, `${layer.name}.tar.gz`);
      result = await writeArchive(layer.entries, createWriteStream(file), archiveOptions);
    }
    logger.debug(
      `layer ${layer.name} ${result.digest}: ${result.size} bytes, diffID ${result.diffID}`,
    );
    const record = { digest: result.digest, size: result.size, diffID: result.diffID };
    cache?.set(key, {
      ...record,
      ...(options.repository ? { repository: options.repository } : {}),
    });
    built[index] = { name: layer.name, ...record, ...(file ? { file } : { streamed: true }) };
  };

  let next = 0;
  const worker = async () => {
    while (next < layers.length && !failure) {
      const index = next++;
      await buildLayer(index).catch((error: unknown) => {
        failure ??= { error };
        stop.abort(error);
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(LAYERS_AT_ONCE, layers.length) }, worker));
  if (failure) throw failure.error;

  await cache?.save().catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn(`could not write the layer cache ${options.layerCacheFile}: ${reason}`);
  });
  return built;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A failure of the streaming copy, as opposed to one of the archive itself. */
class CopyFailed extends Error {
  constructor(cause: unknown) {
    super(`streaming copy failed: ${describe(cause)}`, { cause });
  }
}

/**
 * Archives `entries` into `copy` alone and commits it under the archive's digest. Rejects with
 * `CopyFailed` when the copy fails or rejects the digest. Any failure, of the copy or of the
 * archive (an unreadable file, an abort), cancels the copy first.
 */
async function streamLayer(
  entries: readonly ContextEntry[],
  copy: LayerCopy,
  options: ArchiveOptions,
): Promise<ArchiveResult> {
  const sink = new Writable({
    write(chunk: Uint8Array, _encoding, callback) {
      copy.write(chunk).then(
        () => callback(),
        (error: unknown) => callback(new CopyFailed(error)),
      );
    },
  });
  try {
    const result = await writeArchive(entries, sink, { ...options, sinkReleasesChunks: true });
    await copy.finish(result.digest).catch((error: unknown) => {
      throw new CopyFailed(error);
    });
    return result;
  } catch (error) {
    await copy.cancel().catch(() => {});
    throw error;
  }
}
