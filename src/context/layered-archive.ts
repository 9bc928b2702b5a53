/**
 * Writes a context as several gzip tar layers (see `splitLayers`) and skips a layer whose files
 * are unchanged since an earlier build when the caller says its blob is still where it is
 * needed. This is what makes a rebuild after a one-file edit archive and upload only the layer
 * holding that file.
 */
import { createWriteStream } from "node:fs";
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
    const result = await writeArchive(layer.entries, createWriteStream(file), {
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
    built.push({ name: layer.name, ...record, file });
  }

  await cache?.save().catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn(`could not write the layer cache ${options.layerCacheFile}: ${reason}`);
  });
  return built;
}
