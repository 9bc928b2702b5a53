/**
 * The context digest: a sha256 over a canonical listing of the context (path, type, mode, size,
 * link target and the sha256 of each file's content). It does not depend on the tar format or on
 * file times, and the default image tag derives from it.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, readSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, basename, join } from "node:path";

import { InputError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  compareEntryPaths,
  contextFileError,
  openContextFile,
  rememberHashedStats,
  sameFileVersion,
  takeWalkedStats,
  type ContextEntry,
  type FileVersion,
} from "./entries.ts";

/**
 * How many files are hashed at the same time. The reads are synchronous, so this overlaps the
 * stat of files the walk did not record and the turns each hash gives the event loop.
 */
const PARALLEL_HASHES = 8;
/** Bytes read from a file at a time, into a buffer that each hash in flight reuses. */
const READ_CHUNK = 256 * 1024;
const CACHE_VERSION = 2;
/**
 * A record whose file changed less than this long before it was hashed is not trusted: a second
 * change within the same timestamp tick (a whole second for Deno's ctime) would leave size,
 * mtime and ctime as they were. Git treats such "racily clean" index entries the same way.
 */
const RACY_WINDOW_MS = 2000;

/** Options of `contextDigest`. */
export interface ContextDigestOptions {
  /**
   * JSON file that maps (absolute path, size, mtimeMs, ctimeMs, inode) to a content sha256, so that
   * unchanged files are not read again. A missing or corrupt cache is ignored and rewritten.
   */
  cacheFile?: string;
  /** Receives a warning when the cache file cannot be written. Default `silentLogger`. */
  logger?: Logger;
  /**
   * Content sha256 of entries hashed earlier in this process, e.g. by the plan an apply runs:
   * their files are neither stat'ed nor looked up in the cache again, which is safe because the
   * archive checks each file against the stat fields it had when it was hashed. The map receives
   * the hash of every other file entry. When it contains every file entry, the cache file is
   * neither read nor written.
   */
  contentHashes?: Map<ContextEntry, string>;
  /** Stops the digest: it rejects with the signal's reason before the next file or 16 MiB. */
  signal?: AbortSignal;
}

interface CacheRecord {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  /** When the file was hashed, in milliseconds since the epoch. */
  hashedAt: number;
  sha256: string;
}

interface CacheDocument {
  version: number;
  files: Record<string, CacheRecord>;
}

/**
 * Computes `sha256:<hex>` over the canonical listing of `entries`, sorted by the UTF-8 bytes of
 * their path. Each listing line is the JSON array `[path, type, mode, size, linkTarget, sha256]`,
 * where `linkTarget` and `sha256` are "" when they do not apply.
 */
export async function contextDigest(
  entries: readonly ContextEntry[],
  options: ContextDigestOptions = {},
): Promise<string> {
  const [digest] = await contextDigests([entries], options);
  return digest!;
}

/**
 * Computes the context digest of each group of entries (for example the layers of a split
 * context), reading and writing the cache once and hashing a file shared by groups once.
 * Returns the digests in the order of `groups`.
 */
export async function contextDigests(
  groups: readonly (readonly ContextEntry[])[],
  options: ContextDigestOptions = {},
): Promise<string[]> {
  const known = options.contentHashes ?? new Map<ContextEntry, string>();
  const cacheFile = groups.every((entries) =>
    entries.every((entry) => entry.type !== "file" || known.has(entry)),
  )
    ? undefined
    : options.cacheFile;
  const cache = cacheFile ? await readCache(cacheFile) : {};
  const updated: Record<string, CacheRecord> = {};
  const hashes = new Map<ContextEntry, Promise<string>>();
  const contentHash = (entry: ContextEntry): Promise<string> => {
    const sha256 = known.get(entry);
    if (sha256 !== undefined) return Promise.resolve(sha256);
    let hash = hashes.get(entry);
    if (!hash) {
      hash = hashFile(entry, cache, updated, options.signal).then((hex) => {
        known.set(entry, hex);
        return hex;
      });
      hashes.set(entry, hash);
    }
    return hash;
  };

  const digests: string[] = [];
  for (const entries of groups) {
    const sorted = [...entries].sort((a, b) => compareEntryPaths(a.path, b.path));
    const contentHashes = await mapBounded(sorted, PARALLEL_HASHES, async (entry) => {
      if (entry.type !== "file") return "";
      return await contentHash(entry);
    });

    const listing = createHash("sha256");
    sorted.forEach((entry, index) => {
      const line = [
        entry.path,
        entry.type,
        entry.mode,
        entry.size,
        entry.linkTarget ?? "",
        contentHashes[index],
      ];
      listing.update(JSON.stringify(line) + "\n");
    });
    digests.push(`sha256:${listing.digest("hex")}`);
  }

  if (cacheFile && !sameRecords(cache, updated)) {
    // The digest is correct without the cache, so a read-only project only loses the speed-up.
    await writeCache(cacheFile, updated).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      (options.logger ?? silentLogger).warn(
        `could not write the context hash cache ${cacheFile}: ${reason}`,
      );
    });
  }
  return digests;
}

/** Returns the content sha256 of a file entry, from the cache when size, mtime and inode match. */
async function hashFile(
  entry: ContextEntry,
  cache: Record<string, CacheRecord>,
  updated: Record<string, CacheRecord>,
  signal: AbortSignal | undefined,
): Promise<string> {
  signal?.throwIfAborted();
  if (!entry.source) {
    throw new InputError(`context entry ${entry.path} is a file without a source path`);
  }
  const info =
    takeWalkedStats(entry) ??
    (await stat(entry.source).catch((error: unknown) => {
      throw contextFileError(entry, error, "hashed");
    }));
  if (info.size !== entry.size) {
    throw new InputError(
      `file ${entry.source} (context path ${entry.path}) changed after the context was ` +
        `collected: expected ${entry.size} bytes, found ${info.size}. Run the build again`,
    );
  }

  const key = entry.source;
  const cached = cache[key];
  const ino = Number(info.ino ?? 0);
  if (
    cached &&
    cached.size === info.size &&
    cached.mtimeMs === info.mtimeMs &&
    cached.ctimeMs === info.ctimeMs &&
    cached.ino === ino &&
    cached.hashedAt - Math.max(cached.mtimeMs, cached.ctimeMs) >= RACY_WINDOW_MS
  ) {
    updated[key] = cached;
    rememberHashedStats(entry, info);
    return cached.sha256;
  }

  const { sha256, stats } = await hashContent(entry, signal);
  rememberHashedStats(entry, stats);
  // ctime cannot be set by tools such as `touch -d` or `cp -p`, so a rewrite that restores the
  // size and mtime still misses the cache.
  updated[key] = {
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    ino: Number(stats.ino ?? 0),
    hashedAt: Date.now(),
    sha256,
  };
  return sha256;
}

/** Read buffers of finished hashes, taken by the next ones: memory stays at a few chunks. */
const freeBuffers: Uint8Array[] = [];

/**
 * Reads a file once and returns the hex sha256 of its bytes with the file's stat fields, which
 * the cache records and the archive checks. Fails when the file changes while it is read.
 *
 * The reads are synchronous, because asynchronous ones cost a thread-pool round trip per
 * 256 KiB: a cold digest of the bench corpus took 235 ms with them, 170 ms without.
 */
async function hashContent(
  entry: ContextEntry,
  signal: AbortSignal | undefined,
): Promise<{ sha256: string; stats: FileVersion }> {
  const hash = createHash("sha256");
  const fd = openContextFile(entry, "hashed");
  const buffer = freeBuffers.pop() ?? new Uint8Array(READ_CHUNK);
  let stats: FileVersion;
  let total = 0;
  let rewritten = false;

  try {
    stats = fstatSync(fd);
    for (let chunks = 1; ; chunks++) {
      const bytesRead = readSync(fd, buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > entry.size) break;
      hash.update(buffer.subarray(0, bytesRead));
      if (chunks % 64 === 0) {
        await new Promise((resolve) => setImmediate(resolve));
        signal?.throwIfAborted();
      }
    }
    // A write that keeps the size shows in the times.
    rewritten = !sameFileVersion(fstatSync(fd), stats);
  } finally {
    freeBuffers.push(buffer);
    closeSync(fd);
  }

  // The reads are synchronous, so the event loop gets a turn after each file and every 16 MiB
  // (Ctrl-C, timers).
  await new Promise((resolve) => setImmediate(resolve));
  if (total !== entry.size || rewritten) {
    const found =
      total > entry.size
        ? `read more than ${entry.size} bytes`
        : total < entry.size
          ? `read ${total} of ${entry.size} bytes`
          : "it was written to";
    throw new InputError(
      `file ${entry.source} (context path ${entry.path}) changed while it was hashed: ` +
        `${found}. Stop whatever writes to it and run the build again`,
    );
  }
  return { sha256: hash.digest("hex"), stats };
}

/** Runs `work` over `items` with at most `limit` calls in flight, keeping the input order in the results. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Returns whether `updated` contains exactly the records of `cache`, so the file needs no rewrite. */
function sameRecords(
  cache: Record<string, CacheRecord>,
  updated: Record<string, CacheRecord>,
): boolean {
  const keys = Object.keys(updated);
  if (keys.length !== Object.keys(cache).length) return false;
  return keys.every((key) => cache[key] === updated[key]);
}

/** Reads the hash cache, or returns an empty one when the file is missing, unreadable or malformed. */
async function readCache(file: string): Promise<Record<string, CacheRecord>> {
  let document: unknown;
  try {
    document = JSON.parse(await readFile(file, "utf8"));
  } catch {
    return {};
  }
  if (!isCacheDocument(document)) return {};
  const files: Record<string, CacheRecord> = {};
  for (const [path, record] of Object.entries(document.files)) {
    if (isCacheRecord(record)) files[path] = record;
  }
  return files;
}

/** Replaces the cache file atomically: write a temporary file beside it, then rename. */
async function writeCache(file: string, files: Record<string, CacheRecord>): Promise<void> {
  const document: CacheDocument = { version: CACHE_VERSION, files };
  const temporary = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
  );
  await mkdir(dirname(file), { recursive: true });
  try {
    await writeFile(temporary, JSON.stringify(document) + "\n");
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

function isCacheDocument(value: unknown): value is CacheDocument {
  if (typeof value !== "object" || value === null) return false;
  const document = value as Partial<CacheDocument>;
  return (
    document.version === CACHE_VERSION &&
    typeof document.files === "object" &&
    document.files !== null &&
    !Array.isArray(document.files)
  );
}

function isCacheRecord(value: unknown): value is CacheRecord {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Partial<CacheRecord>;
  return (
    typeof record.size === "number" &&
    typeof record.mtimeMs === "number" &&
    typeof record.ctimeMs === "number" &&
    typeof record.hashedAt === "number" &&
    typeof record.ino === "number" &&
    typeof record.sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(record.sha256)
  );
}
