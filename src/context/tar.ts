/**
 * A reproducible tar writer. Headers are POSIX ustar, and a PAX extended header carries a path or
 * link target that does not fit ustar's 100-byte name plus 155-byte prefix or is not ASCII, and
 * a size of 8 GiB or more. Owner, group, user names and times are fixed, so the same entries
 * give the same bytes on every machine and runtime.
 */
import { closeSync, fstatSync, readSync } from "node:fs";

import { InputError } from "../errors.ts";
import { hashedStatsOf, openContextFile, sameFileVersion, type ContextEntry } from "./entries.ts";

const BLOCK = 512;
const READ_CHUNK = 256 * 1024;
/** Largest value of an 11-digit octal field: 8 GiB - 1. */
const MAX_OCTAL_11 = 0o77777777777;
const encoder = new TextEncoder();

/** Options of `tarStream`. */
export interface TarOptions {
  /** Modification time of every entry, in seconds since the epoch. Default: `archiveMtime()`. */
  mtime?: number;
  /**
   * Reads files into one buffer that is filled again for the next read, so a yielded chunk is
   * valid only until the next chunk is requested. For consumers that copy or hash each chunk
   * at once; a consumer that queues chunks (a stream piped to a socket) must leave it off.
   */
  reuseBuffers?: boolean;
}

/**
 * Returns the modification time written into archives: `SOURCE_DATE_EPOCH` when it is set,
 * else 0. Rejects with an `InputError` when `SOURCE_DATE_EPOCH` is not a whole number.
 */
export function archiveMtime(): number {
  const value = process.env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === "") return 0;
  if (!/^\d+$/.test(value) || Number(value) > MAX_OCTAL_11) {
    throw new InputError(
      `invalid SOURCE_DATE_EPOCH=${JSON.stringify(value)} in the environment: it must be a ` +
        `whole number of seconds since 1970-01-01 UTC, e.g. 1700000000. Fix or unset it`,
    );
  }
  return Number(value);
}

/**
 * Streams the tar archive of `entries`, in the given order, as chunks of bytes. File contents
 * are read from `entry.source` in chunks of at most 256 KiB, and a file whose size differs from
 * `entry.size` makes the stream fail with an `InputError` naming the file.
 */
export async function* tarStream(
  entries: readonly ContextEntry[],
  options: TarOptions = {},
): AsyncGenerator<Uint8Array> {
  const mtime = options.mtime ?? archiveMtime();
  checkMtime(mtime);

  const readBuffer = options.reuseBuffers ? new Uint8Array(READ_CHUNK) : undefined;
  for (const entry of entries) {
    yield* entryHeaders(entry, mtime);
    if (entry.type === "file") {
      yield* fileContent(entry, readBuffer);
      const padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      if (padding > 0) yield new Uint8Array(padding);
    }
  }

  yield new Uint8Array(2 * BLOCK);
}

/** Returns the number of bytes `tarStream` produces for `entries`, without reading any file. */
export function tarSize(entries: readonly ContextEntry[]): number {
  let total = 2 * BLOCK;
  for (const entry of entries) {
    for (const header of entryHeaders(entry, 0)) total += header.length;
    if (entry.type === "file") total += Math.ceil(entry.size / BLOCK) * BLOCK;
  }
  return total;
}

function checkMtime(mtime: number): void {
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_11) {
    throw new InputError(
      `invalid archive mtime ${mtime}: it must be a whole number of seconds from 0 to ` +
        `${MAX_OCTAL_11}. Pass a valid mtime option or SOURCE_DATE_EPOCH`,
    );
  }
}

/** Builds the PAX header (when needed) and the ustar header of one entry. */
function* entryHeaders(entry: ContextEntry, mtime: number): Generator<Uint8Array> {
  const name = entry.type === "directory" ? `${entry.path}/` : entry.path;
  const linkTarget = entry.type === "symlink" ? (entry.linkTarget ?? "") : "";
  const size = entry.type === "file" ? entry.size : 0;

  const nameBytes = encoder.encode(name);
  const split = isAscii(name) ? splitUstarName(nameBytes) : undefined;
  const linkBytes = encoder.encode(linkTarget);
  const linkFits = isAscii(linkTarget) && linkBytes.length <= 100;
  const sizeFits = size <= MAX_OCTAL_11;

  const records: [string, string][] = [];
  if (!split) records.push(["path", name]);
  if (!linkFits) records.push(["linkpath", linkTarget]);
  if (!sizeFits) records.push(["size", String(size)]);

  if (records.length > 0) {
    const body = paxRecords(records);
    yield header({
      name: paxHeaderName(entry.path),
      prefix: new Uint8Array(0),
      mode: 0o644,
      size: body.length,
      mtime,
      typeflag: "x",
      linkname: new Uint8Array(0),
    });
    const padded = new Uint8Array(Math.ceil(body.length / BLOCK) * BLOCK);
    padded.set(body);
    yield padded;
  }

  const fallback = split ?? { prefix: new Uint8Array(0), name: asciiFallback(name, 100) };
  yield header({
    name: fallback.name,
    prefix: fallback.prefix,
    mode: entry.mode,
    size,
    mtime,
    typeflag: entry.type === "file" ? "0" : entry.type === "directory" ? "5" : "2",
    linkname: linkFits ? linkBytes : asciiFallback(linkTarget, 100),
  });
}

/** Splits a path into ustar's name (at most 100 bytes) and prefix (at most 155 bytes) at a `/`. */
function splitUstarName(bytes: Uint8Array): { name: Uint8Array; prefix: Uint8Array } | undefined {
  if (bytes.length <= 100) return { name: bytes, prefix: new Uint8Array(0) };
  if (bytes.length > 256) return undefined;

  // The last byte is skipped so that a directory's trailing "/" stays in the name part.
  for (let i = bytes.length - 2; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    const prefix = bytes.subarray(0, i);
    const name = bytes.subarray(i + 1);
    if (prefix.length > 155) continue;
    if (name.length > 100) return undefined;
    return { name, prefix };
  }
  return undefined;
}

/** Encodes PAX records as `<length> <key>=<value>\n`, where length counts the whole record. */
function paxRecords(records: [string, string][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of records) {
    const rest = encoder.encode(` ${key}=${value}\n`);
    let length = rest.length + 1;
    while (String(length).length + rest.length !== length)
      length = String(length).length + rest.length;
    parts.push(encoder.encode(String(length)), rest);
  }
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const body = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.length;
  }
  return body;
}

/** Names a PAX header entry after the entry's base name, which readers only display. */
function paxHeaderName(path: string): Uint8Array {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return asciiFallback(`PaxHeaders/${base}`, 100);
}

/** Replaces non-ASCII and control characters with `_` and truncates to `max` bytes. */
function asciiFallback(text: string, max: number): Uint8Array {
  let ascii = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    ascii += code >= 0x20 && code < 0x7f ? char : "_";
  }
  return encoder.encode(ascii.slice(0, max));
}

function isAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

interface HeaderFields {
  name: Uint8Array;
  prefix: Uint8Array;
  mode: number;
  size: number;
  mtime: number;
  typeflag: "0" | "2" | "5" | "x";
  linkname: Uint8Array;
}

/** Builds one 512-byte ustar header block. */
function header(fields: HeaderFields): Uint8Array {
  const block = new Uint8Array(BLOCK);
  block.set(fields.name.subarray(0, 100), 0);
  writeOctal(block, 100, 8, fields.mode & 0o7777);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (fields.size <= MAX_OCTAL_11) {
    writeOctal(block, 124, 12, fields.size);
  } else {
    writeBase256(block, 124, 12, fields.size);
  }
  writeOctal(block, 136, 12, fields.mtime);
  block.set(encoder.encode("        "), 148);
  block[156] = fields.typeflag.charCodeAt(0);
  block.set(fields.linkname.subarray(0, 100), 157);
  block.set(encoder.encode("ustar\u000000"), 257);
  // uname (265) and gname (297) stay empty.
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  block.set(fields.prefix.subarray(0, 155), 345);

  let checksum = 0;
  for (const byte of block) checksum += byte;
  block.set(encoder.encode(checksum.toString(8).padStart(6, "0") + "\u0000 "), 148);
  return block;
}

/** Writes `value` as zero-padded octal digits followed by a NUL, filling `length` bytes. */
function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  block.set(encoder.encode(value.toString(8).padStart(length - 1, "0") + "\u0000"), offset);
}

/** Writes `value` in the GNU base-256 form: a 0x80 marker byte, then big-endian bytes. */
function writeBase256(block: Uint8Array, offset: number, length: number, value: number): void {
  let remaining = BigInt(value);
  for (let i = offset + length - 1; i > offset; i--) {
    block[i] = Number(remaining & 0xffn);
    remaining >>= 8n;
  }
  block[offset] = 0x80;
}

/**
 * Streams a file's bytes and fails when the file is shorter or longer than `entry.size`. Reads
 * into `reused` when it is given, else into a new buffer for each chunk.
 *
 * The reads are synchronous, because the tar is written in order and nothing else could be
 * read meanwhile. An asynchronous read waits for a thread of the pool, which is busy deflating
 * earlier blocks: with `FileHandle.read` the bench corpus took 10% longer to archive.
 */
function* fileContent(entry: ContextEntry, reused: Uint8Array | undefined): Generator<Uint8Array> {
  if (!entry.source) {
    throw new InputError(`context entry ${entry.path} is a file without a source path`);
  }
  const fd = openContextFile(entry, "archived");
  try {
    // The version the context digest was computed from, or else the one opened now: a write
    // that keeps the size must not put other bytes under the image's tag.
    const expected = hashedStatsOf(entry) ?? fstatSync(fd);
    let total = 0;
    for (;;) {
      // One byte more than the rest of the file reveals a file that grew since the walk.
      const length = Math.min(READ_CHUNK, Math.max(entry.size - total, 0) + 1);
      const buffer = reused ?? new Uint8Array(length);
      const bytesRead = readSync(fd, buffer, 0, length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > entry.size) throw sizeChanged(entry, `more than ${entry.size}`);
      yield buffer.subarray(0, bytesRead);
    }
    if (total !== entry.size) throw sizeChanged(entry, String(total));
    if (!sameFileVersion(fstatSync(fd), expected)) {
      throw new InputError(
        `file ${entry.source} (context path ${entry.path}) was written to after its content ` +
          `was hashed or while it was archived. Stop whatever writes to it and run the build again`,
      );
    }
  } finally {
    closeSync(fd);
  }
}

function sizeChanged(entry: ContextEntry, found: string): InputError {
  return new InputError(
    `file ${entry.source} (context path ${entry.path}) changed while it was archived: ` +
      `expected ${entry.size} bytes, read ${found}. Stop whatever writes to it and run the build again`,
  );
}
