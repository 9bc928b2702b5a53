/**
 * Remembers the layer blobs built from a context, so a rebuild skips archiving a layer whose
 * files did not change. A record maps a key (the layer's context digest, the gzip level, the
 * archive mtime and the runtime whose zlib compressed it) to the blob's digest, size and diffID.
 * The same inputs give the same gzip bytes only on the same zlib build, so the runtime and its
 * zlib version are part of the key.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

const CACHE_VERSION = 1;
/** Records kept; the oldest are dropped first. */
const MAX_RECORDS = 256;

/** A layer blob built earlier. */
export interface CachedLayer {
  /** `sha256:<hex>` of the gzip blob. */
  digest: string;
  /** Bytes of the gzip blob. */
  size: number;
  /** `sha256:<hex>` of the uncompressed tar. */
  diffID: string;
  /** `registry/repository` the blob was last pushed to, where it can be mounted from. */
  repository?: string;
}

/** What decides a layer's bytes besides its files. */
export interface LayerKeyInputs {
  /** Context digest of the layer's entries (`contextDigest`). */
  contextDigest: string;
  level: number;
  mtime: number;
}

/**
 * Returns the cache key of a layer: sha256 over its context digest, gzip level, mtime, the
 * archive format version and the runtime with its zlib version.
 */
export function layerCacheKey(inputs: LayerKeyInputs): string {
  const key = JSON.stringify({
    format: 1,
    context: inputs.contextDigest,
    level: inputs.level,
    mtime: inputs.mtime,
    runtime: runtimeIdentity(),
  });
  return createHash("sha256").update(key).digest("hex");
}

/** Returns the name and version of the running runtime and its zlib build. */
export function runtimeIdentity(): string {
  const versions = process.versions as Record<string, string | undefined>;
  const name = versions.bun
    ? `bun ${versions.bun}`
    : versions.deno
      ? `deno ${versions.deno}`
      : `node ${versions.node}`;
  return `${name} zlib ${versions.zlib ?? "unknown"}`;
}

/** A JSON file of layer records. A missing or malformed file reads as empty. */
export class LayerCache {
  private constructor(
    private readonly file: string,
    private readonly records: Map<string, CachedLayer>,
  ) {}

  /** Reads the cache at `file`; an unreadable or malformed file gives an empty cache. */
  static async open(file: string): Promise<LayerCache> {
    const records = new Map<string, CachedLayer>();
    try {
      const document = JSON.parse(await readFile(file, "utf8")) as {
        version?: unknown;
        layers?: unknown;
      };
      if (document.version === CACHE_VERSION && Array.isArray(document.layers)) {
        for (const item of document.layers as unknown[]) {
          if (isRecord(item)) records.set(item[0], item[1]);
        }
      }
    } catch {
      // A missing or broken cache only costs the speed-up.
    }
    return new LayerCache(file, records);
  }

  /** Returns the layer recorded under `key`, if any. */
  get(key: string): CachedLayer | undefined {
    return this.records.get(key);
  }

  /** Records `layer` under `key`, as the newest record. */
  set(key: string, layer: CachedLayer): void {
    this.records.delete(key);
    this.records.set(key, {
      digest: layer.digest,
      size: layer.size,
      diffID: layer.diffID,
      ...(layer.repository ? { repository: layer.repository } : {}),
    });
    while (this.records.size > MAX_RECORDS) {
      this.records.delete(this.records.keys().next().value!);
    }
  }

  /** Writes the cache atomically: a temporary file beside it, then a rename. */
  async save(): Promise<void> {
    const document = { version: CACHE_VERSION, layers: [...this.records] };
    const temporary = join(
      dirname(this.file),
      `.${basename(this.file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
    );
    await mkdir(dirname(this.file), { recursive: true });
    try {
      await writeFile(temporary, JSON.stringify(document) + "\n");
      await rename(temporary, this.file);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
}

function isRecord(value: unknown): value is [string, CachedLayer] {
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== "string") return false;
  const layer = value[1] as Partial<CachedLayer> | null;
  return (
    typeof layer === "object" &&
    layer !== null &&
    typeof layer.digest === "string" &&
    /^sha256:[0-9a-f]{64}$/.test(layer.digest) &&
    typeof layer.diffID === "string" &&
    /^sha256:[0-9a-f]{64}$/.test(layer.diffID) &&
    typeof layer.size === "number" &&
    (layer.repository === undefined || typeof layer.repository === "string")
  );
}
