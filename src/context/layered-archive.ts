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
import { writeArchive } from "./archive.ts";
import { contextDigests } from "./digest.ts";
import type { ContextEntry } from "./entries.ts";
import { LayerCache, layerCacheKey } from "./layer-cache.ts";
import { splitLayers, type LayerName } from "./layers.ts";
import { archiveMtime } from "./tar.ts";

/** One layer of the context, built now or reused from an earlier build. */
export interface BuiltLayer {
  name: LayerName;
  /** `sha256:<hex>` of the gzip blob. */
  digest: string;
  size: number;
  diffID: string;
  /** Local file of the blob when it was built now; undefined when it was reused. */
  file?: string;
  /** True when `streamTo` received every byte of the blob and committed it. */
  streamed?: boolean;
}

/** A second destination for a layer's gzip bytes while they are written, e.g. a registry upload. */
export interface LayerCopy {
  write(data: Uint8Array): Promise<void>;
  /** Commits the copy; resolves with the digest of what it received. */
  finish(): Promise<{ digest: string }>;
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
  /** The file recording layers built earlier; without it every layer is built. */
  layerCacheFile?: string;
  /**
   * Returns whether a blob built earlier can be used as it is, e.g. because the target
   * repository already contains it. Without it no layer is reused.
   */
  canReuse?: (digest: string) => Promise<boolean>;
  /**
   * Opens a copy that receives each built layer's gzip bytes as they are produced, so an upload
   * overlaps compression. A copy that fails is dropped with a debug message and the layer file
   * stays complete, so the caller can still upload from it.
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
        options.digestCacheFile ? { cacheFile: options.digestCacheFile, logger } : { logger },
      )
    : [];

  const built: BuiltLayer[] = [];
  let archived = 0;
  for (const [index, layer] of layers.entries()) {
    const key = cache ? layerCacheKey({ contextDigest: digests[index]!, level, mtime }) : "";
    const known = cache?.get(key);
    if (known && options.canReuse && (await options.canReuse(known.digest))) {
      logger.debug(`layer ${layer.name} unchanged: reusing ${known.digest}`);
      built.push({ name: layer.name, ...known });
      continue;
    }

    const file = join(options.dir, `${layer.name}.tar.gz`);
    const before = archived;
    const copy = await options.streamTo?.(layer.name).catch((error: unknown) => {
      logger.debug(`layer ${layer.name}: no streaming copy: ${describe(error)}`);
      return undefined;
    });
    const tee = teeSink(file, copy, (error) =>
      logger.debug(`layer ${layer.name}: streaming copy dropped: ${describe(error)}`),
    );
    const result = await writeArchive(layer.entries, tee.sink, {
      level,
      mtime,
      onProgress: (bytes) => {
        archived = before + bytes;
        options.onProgress?.(archived);
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    logger.debug(
      `layer ${layer.name} ${result.digest}: ${result.size} bytes, diffID ${result.diffID}`,
    );
    const record = { digest: result.digest, size: result.size, diffID: result.diffID };
    cache?.set(key, record);
    const streamed = await tee.finish(result.digest);
    built.push({ name: layer.name, ...record, file, ...(streamed ? { streamed } : {}) });
  }

  await cache?.save().catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn(`could not write the layer cache ${options.layerCacheFile}: ${reason}`);
  });
  return built;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Returns a sink writing to `file` and, while it works, to `copy`. A failed copy is cancelled
 * and dropped: the file alone decides whether the archive succeeded.
 */
function teeSink(
  file: string,
  copy: LayerCopy | undefined,
  onCopyError: (error: unknown) => void,
): { sink: Writable; finish(digest: string): Promise<boolean> } {
  const out = createWriteStream(file);
  let copyFailed = copy === undefined;
  const dropCopy = (error: unknown) => {
    if (copyFailed) return;
    copyFailed = true;
    onCopyError(error);
    void copy?.cancel().catch(() => {});
  };
  const sink = new Writable({
    write(chunk: Uint8Array, _encoding, callback) {
      let pending = 2;
      let failed = false;
      const done = (error?: Error | null) => {
        if (failed) return;
        if (error) {
          failed = true;
          callback(error);
          return;
        }
        if (--pending === 0) callback();
      };
      out.write(chunk, done);
      if (copyFailed) {
        done();
        return;
      }
      copy!.write(chunk).then(
        () => done(),
        (error: unknown) => {
          dropCopy(error);
          done();
        },
      );
    },
    final(callback) {
      out.end(callback);
    },
    destroy(error, callback) {
      // Node destroys a finished stream too (autoDestroy), with no error; only a failure drops
      // the copy.
      if (error) {
        out.destroy(error);
        dropCopy(error);
      }
      callback(error);
    },
  });
  return {
    sink,
    async finish(digest) {
      if (copyFailed || !copy) return false;
      try {
        const committed = await copy.finish();
        if (committed.digest === digest) return true;
        onCopyError(new Error(`the copy received ${committed.digest}, the file is ${digest}`));
        return false;
      } catch (error) {
        onCopyError(error);
        return false;
      }
    },
  };
}
