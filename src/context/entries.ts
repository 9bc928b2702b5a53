/**
 * The entries of a build context: what goes into the archive, at which path, with which mode.
 * The preprocessor produces them sorted, and the tar writer, the archive and the context digest
 * consume them in the given order.
 */
import { openSync } from "node:fs";

import { InputError } from "../errors.ts";

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

/** The stat fields that tell one version of a file from another: size, times and inode. */
export interface FileVersion {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number | bigint;
}

const walkedStats = new WeakMap<ContextEntry, FileVersion>();

/**
 * Records the lstat result the walk saw for `entry`, for `takeWalkedStats`. Only the fields the
 * cache compares are kept, so a context of many files does not hold a whole `Stats` for each.
 */
export function rememberWalkedStats(entry: ContextEntry, stats: FileVersion): void {
  walkedStats.set(entry, fileVersion(stats));
}

/**
 * Returns, once, the lstat result the walk saw for `entry`, so the digest computed right after
 * a walk does not stat every file a second time. Later calls return undefined and callers stat
 * the file again.
 */
export function takeWalkedStats(entry: ContextEntry): FileVersion | undefined {
  const stats = walkedStats.get(entry);
  walkedStats.delete(entry);
  return stats;
}

const hashedStats = new WeakMap<ContextEntry, FileVersion>();

/**
 * Records the version of a file whose content was hashed, so the archive can check that it
 * writes the bytes the context digest (and the image tag) came from.
 */
export function rememberHashedStats(entry: ContextEntry, stats: FileVersion): void {
  hashedStats.set(entry, fileVersion(stats));
}

/** Returns the file version recorded when `entry` was hashed, if it was. */
export function hashedStatsOf(entry: ContextEntry): FileVersion | undefined {
  return hashedStats.get(entry);
}

/** Copies the `FileVersion` fields out of a stat result, which has many more. */
function fileVersion(stats: FileVersion): FileVersion {
  return { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino };
}

/** Returns whether two stat results describe the same version of a file. */
export function sameFileVersion(a: FileVersion, b: FileVersion): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    Number(a.ino) === Number(b.ino)
  );
}

/**
 * Opens a context file for reading, turning a file that is gone or unreadable into an
 * `InputError` that names it (see `contextFileError`).
 */
export function openContextFile(entry: ContextEntry, purpose: string): number {
  try {
    return openSync(entry.source!, "r");
  } catch (error) {
    throw contextFileError(entry, error, purpose);
  }
}

/**
 * Returns the `InputError` for a context file that failed to open or stat after the context was
 * collected: deleted, unreadable, or another failure. `purpose` completes "cannot be ...", e.g.
 * "archived".
 */
export function contextFileError(entry: ContextEntry, error: unknown, purpose: string): InputError {
  const code = (error as NodeJS.ErrnoException).code;
  const file = `file ${entry.source} (context path ${entry.path})`;
  let problem = `cannot be ${purpose}: ${(error as Error).message}`;
  if (code === "ENOENT") {
    problem = "was deleted after the context was collected. Run the build again";
  } else if (code === "EACCES" || code === "EPERM") {
    problem = "is not readable by this user. Fix its permissions or add it to .dockerignore";
  }
  return new InputError(`${file} ${problem}`, { cause: error });
}
