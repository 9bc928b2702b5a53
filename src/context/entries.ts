/**
 * The entries of a build context: what goes into the archive, at which path, with which mode.
 * The preprocessor produces them sorted, and the tar writer, the archive and the context digest
 * consume them in the given order.
 */
/** One file, directory or symlink of the build context. */
export interface ContextEntry {
  /** Path inside the archive: relative, no leading `/`, no trailing `/`, e.g. `app/train.py`. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Absolute local path of files, symlinks and walked directories, undefined for added parents. */
  source?: string;
  /** Permission bits: 0o644 for files, 0o755 for files with any execute bit and for directories. */
  mode: number;
  /** Size in bytes for files, 0 otherwise. */
  size: number;
  /** Target of a symlink, exactly as stored on disk. */
  linkTarget?: string;
}

const encoder = new TextEncoder();

/**
 * Compares two archive paths by the bytes of their UTF-8 encoding, so the order is the same on
 * every runtime and locale (unlike `localeCompare`, and unlike `<` on UTF-16 code units for
 * characters outside the Basic Multilingual Plane).
 */
export function compareEntryPaths(a: string, b: string): number {
  if (a === b) return 0;
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const difference = left[i]! - right[i]!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/** Sorts entries in place by the UTF-8 bytes of their path and returns them. */
export function sortEntries(entries: ContextEntry[]): ContextEntry[] {
  return entries.sort((a, b) => compareEntryPaths(a.path, b.path));
}

/** The lstat fields the content-digest cache compares. */
export interface WalkedStats {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number | bigint;
}

const walkedStats = new WeakMap<ContextEntry, WalkedStats>();

/**
 * Records the lstat result the walk saw for `entry`, for `takeWalkedStats`. Only the fields the
 * cache compares are kept, so a context of many files does not hold a whole `Stats` for each.
 */
export function rememberWalkedStats(entry: ContextEntry, stats: WalkedStats): void {
  walkedStats.set(entry, {
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    ino: stats.ino,
  });
}

/**
 * Returns, once, the lstat result the walk saw for `entry`, so the digest computed right after
 * a walk does not stat every file a second time. Later calls return undefined and callers stat
 * the file again.
 */
export function takeWalkedStats(entry: ContextEntry): WalkedStats | undefined {
  const stats = walkedStats.get(entry);
  walkedStats.delete(entry);
  return stats;
}

const hashedStats = new WeakMap<ContextEntry, WalkedStats>();

/**
 * Records the lstat fields of a file when its content was hashed, so the archive can check that
 * it writes the bytes the digest (and the image tag) came from.
 */
export function rememberHashedStats(entry: ContextEntry, stats: WalkedStats): void {
  hashedStats.set(entry, {
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    ino: stats.ino,
  });
}

/** Returns the lstat fields recorded when `entry` was hashed, if it was. */
export function hashedStatsOf(entry: ContextEntry): WalkedStats | undefined {
  return hashedStats.get(entry);
}

/** Returns whether two stat results describe the same version of a file. */
export function sameFileVersion(a: WalkedStats, b: WalkedStats): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    Number(a.ino) === Number(b.ino)
  );
}
