/**
 * Parallel gzip in the manner of pigz. The input is cut into blocks of a fixed size. Each block
 * is deflated on its own with the previous 32 KiB as its preset dictionary and ends on a byte
 * boundary (a sync flush), so the raw deflate blocks join into one gzip member with one CRC-32.
 * Blocks are deflated with zlib's asynchronous calls, which run on the runtime's thread pool,
 * so several blocks are compressed at once on different cores.
 *
 * A block whose bytes look random (order-0 entropy above `STORE_ENTROPY_BITS` bits per byte,
 * measured on a fixed sample of the block) is written as stored deflate blocks instead, without
 * zlib: model weights, archives and images do not shrink under deflate, and storing them costs a
 * copy.
 *
 * The output depends only on the input bytes, the level, the block size and the runtime's zlib
 * build: never on chunk boundaries, timing or the number of blocks in flight.
 */
import { availableParallelism } from "node:os";
import * as zlib from "node:zlib";

/**
 * Uncompressed bytes per block. Each block primes zlib with the 32 KiB before it, so larger
 * blocks spend less time on priming. A first build of the bench corpus took about 70 ms less
 * with 768 KiB than with 512 KiB, and 1 MiB was no faster but peaked 6 MiB higher.
 */
export const DEFAULT_BLOCK_SIZE = 768 * 1024;
/** Bytes of history each block gets from the block before it: deflate's whole window. */
const WINDOW = 32 * 1024;
/** Blocks whose sampled entropy exceeds this many bits per byte are stored, not deflated. */
export const STORE_ENTROPY_BITS = 7.5;
/** Bytes sampled from each block to estimate its entropy. */
const SAMPLE_BYTES = 16 * 1024;

/** Options of `gzipParallel`. */
export interface ParallelGzipOptions {
  /** Deflate level from 0 to 9; default 6. */
  level?: number;
  /** Uncompressed bytes per block; default 768 KiB. At least 64 KiB. */
  blockSize?: number;
  /**
   * Blocks deflated at once; default twice the number of cores, from 4 to 16. Node runs them on
   * its libuv thread pool, which has 4 threads unless `UV_THREADPOOL_SIZE` sets another number.
   */
  concurrency?: number;
  /**
   * Called with each uncompressed block, in order, before it is compressed, e.g. to hash the
   * input. The block is valid only during the call.
   */
  onBlock?: (block: Uint8Array) => void;
  /**
   * Frames stored blocks into one reused buffer instead of a new buffer per block, so a yielded
   * chunk is valid only until the consumer requests the next one. Without it every chunk stays
   * valid, and a context of model files leaves one garbage buffer per block, which the garbage
   * collector frees late.
   */
  reuseOutput?: boolean;
}

/**
 * Compresses `source` into one gzip member and yields its bytes in order. The gzip header
 * carries no file name and mtime 0.
 */
export async function* gzipParallel(
  source: AsyncIterable<Uint8Array>,
  options: ParallelGzipOptions = {},
): AsyncGenerator<Uint8Array> {
  const level = options.level ?? 6;
  const blockSize = Math.max(options.blockSize ?? DEFAULT_BLOCK_SIZE, 64 * 1024);
  const concurrency = Math.min(Math.max(options.concurrency ?? availableParallelism() * 2, 4), 16);

  yield gzipHeader(level);

  let crc = 0;
  let length = 0;
  let previousTail: Uint8Array | undefined;
  // The last 32 KiB of each block, the next block's dictionary, go into a ring of buffers
  // allocated once. A slot is written again only when the block that read it as its dictionary
  // has finished, because no more than `concurrency` blocks are in flight.
  const tails = Array.from({ length: concurrency + 1 }, () => new Uint8Array(WINDOW));
  let blockCount = 0;
  // A block without a deflate promise is stored: it is framed when its turn comes.
  const inFlight: { block: Uint8Array; last: boolean; deflated?: Promise<Uint8Array> }[] = [];
  let pending: Uint8Array | undefined;
  // Blocks whose deflate finished are filled again, so memory stays at a few blocks and the
  // garbage collector has little to do.
  const free: Uint8Array[] = [];
  let frame: Uint8Array | undefined;
  const finishOldest = async () => {
    const { block, last, deflated } = inFlight.shift()!;
    let output: Uint8Array;
    if (deflated) {
      output = await deflated;
    } else if (options.reuseOutput) {
      frame ??= new Uint8Array(storedCapacity(blockSize));
      output = storedBlocks(block, last, frame);
    } else {
      output = storedBlocks(block, last);
    }
    if (block.length === blockSize) free.push(block);
    return output;
  };

  const dispatch = (block: Uint8Array, last: boolean) => {
    options.onBlock?.(block);
    crc = crc32(block, crc);
    length = (length + block.length) % 0x100000000;
    if (level === 0 || looksRandom(block)) {
      inFlight.push({ block, last });
    } else {
      const deflated = deflateBlock(block, level, previousTail, last);
      // The failure surfaces when the block's turn comes; until then it must not count as
      // unhandled, and it must not either when the consumer stops reading early.
      deflated.catch(() => {});
      inFlight.push({ block, last, deflated });
    }
    // A copy, because the block is refilled once its deflate finishes. Only the last block can
    // be shorter than the window, and no block follows it.
    if (block.length >= WINDOW) {
      previousTail = tails[blockCount++ % tails.length]!;
      previousTail.set(block.subarray(block.length - WINDOW));
    }
  };

  const blocks = fixedBlocks(source, blockSize, () => free.pop() ?? new Uint8Array(blockSize));
  for await (const block of blocks) {
    if (pending) dispatch(pending, false);
    pending = block;
    while (inFlight.length >= concurrency) yield await finishOldest();
  }
  dispatch(pending ?? new Uint8Array(0), true);
  while (inFlight.length > 0) yield await finishOldest();

  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, crc >>> 0, true);
  view.setUint32(4, length >>> 0, true);
  yield trailer;
}

/** Returns the 10-byte gzip header: no name, mtime 0, the extra flags zlib uses, OS Unix. */
function gzipHeader(level: number): Uint8Array {
  let extraFlags = 0;
  if (level === 9) extraFlags = 2;
  if (level === 1) extraFlags = 4;
  return Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extraFlags, 3);
}

/** Largest stored deflate block: its length field has 16 bits. */
const MAX_STORED = 65535;

/**
 * Returns `block` as stored deflate blocks: each piece of up to 64 KiB gets a byte-aligned
 * header (final bit, type 00) and its length and the length's complement. The previous block
 * ended on a byte boundary, so the pieces continue the stream. Only the last piece of the last
 * block is final; an empty last block becomes one empty final stored block.
 */
export function storedBlocks(
  block: Uint8Array,
  last: boolean,
  out: Uint8Array = new Uint8Array(storedCapacity(block.length)),
): Uint8Array {
  const pieces = Math.max(1, Math.ceil(block.length / MAX_STORED));
  let offset = 0;
  for (let piece = 0; piece < pieces; piece++) {
    const start = piece * MAX_STORED;
    const size = Math.min(MAX_STORED, block.length - start);
    out[offset] = last && piece === pieces - 1 ? 1 : 0;
    out[offset + 1] = size & 0xff;
    out[offset + 2] = size >>> 8;
    out[offset + 3] = ~size & 0xff;
    out[offset + 4] = (~size >>> 8) & 0xff;
    out.set(block.subarray(start, start + size), offset + 5);
    offset += 5 + size;
  }
  return out.subarray(0, offset);
}

/**
 * Returns the output buffer size for a block of `length` bytes: zlib's deflateBound plus margin,
 * so one buffer holds the whole deflated block.
 */
function outputCapacity(length: number): number {
  return length + (length >> 10) + 1024;
}

/**
 * Returns the buffer size for the stored blocks of `length` bytes: at least the data and a
 * 5-byte header per 64 KiB. It is the size of zlib's output buffers, so the allocator can hand
 * the memory of one kind of output to the other once it is freed.
 */
function storedCapacity(length: number): number {
  return Math.max(outputCapacity(length), length + Math.max(1, Math.ceil(length / MAX_STORED)) * 5);
}

/** Deflates one block; all blocks but the last end with a sync flush, the last one finishes. */
function deflateBlock(
  block: Uint8Array,
  level: number,
  dictionary: Uint8Array | undefined,
  last: boolean,
): Promise<Uint8Array> {
  const options: zlib.ZlibOptions = {
    level,
    // zlib's largest hash table and match buffer: 2.5% less deflate time than the default of 8
    // on the CSV blocks of the bench corpus, and 0.01% smaller output, for about 300 KiB more
    // memory per block in flight.
    memLevel: 9,
    finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    // One output buffer that fits the whole deflated block (zlib's deflateBound plus margin):
    // with the default 16 KiB, Node returns to the main thread after every 16 KiB of output.
    // Buffers sized to the block's expected compressed size made the corpus archive slower, and
    // their varying sizes left the allocator's heap fragmented.
    chunkSize: outputCapacity(block.length),
  };
  const primed = dictionary && dictionary.length > 0 ? dictionary : undefined;
  if (primed && !dictionarySupported()) return deflatePrimed(block, options, primed);
  if (primed) options.dictionary = primed;
  return new Promise((resolve, reject) => {
    zlib.deflateRaw(block, options, (error, result) => {
      if (error) reject(error);
      else resolve(new Uint8Array(result.buffer, result.byteOffset, result.length));
    });
  });
}

let dictionaryWorks: boolean | undefined;

/** Returns whether this runtime's `deflateRaw` honours the `dictionary` option. */
function dictionarySupported(): boolean {
  if (dictionaryWorks === undefined) {
    const sample = new TextEncoder().encode(
      "a preset dictionary shortens repeated text. ".repeat(4),
    );
    const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
    const plain = zlib.deflateRawSync(sample, flush).length;
    dictionaryWorks = zlib.deflateRawSync(sample, { ...flush, dictionary: sample }).length < plain;
  }
  return dictionaryWorks;
}

/**
 * Deflates `block` after the history `dictionary` on a runtime whose zlib ignores preset
 * dictionaries (Deno 2): the history is compressed first and sync-flushed, and the bytes up to
 * that flush are dropped. What remains is the same raw deflate continuation a preset dictionary
 * gives, at the cost of compressing the history once more.
 */
function deflatePrimed(
  block: Uint8Array,
  options: zlib.ZlibOptions,
  dictionary: Uint8Array,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const stream = zlib.createDeflateRaw(options);
    const parts: Uint8Array[] = [];
    let skip = -1;
    let total = 0;
    stream.on("data", (chunk: Uint8Array) => {
      parts.push(chunk);
      total += chunk.length;
    });
    stream.on("error", reject);
    stream.on("end", () => {
      const joined = new Uint8Array(total);
      let offset = 0;
      for (const part of parts) {
        joined.set(part, offset);
        offset += part.length;
      }
      resolve(joined.subarray(skip));
    });
    stream.write(dictionary);
    stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      skip = total;
      stream.end(block);
    });
  });
}

/**
 * Cuts a stream of chunks into blocks of exactly `size` bytes, and a shorter last one, filling
 * buffers from `allocate`.
 */
async function* fixedBlocks(
  source: AsyncIterable<Uint8Array>,
  size: number,
  allocate: () => Uint8Array,
): AsyncGenerator<Uint8Array> {
  let block = allocate();
  let filled = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(size - filled, chunk.length - offset);
      block.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield block;
        block = allocate();
        filled = 0;
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}

/**
 * Decides from a fixed sample of the block whether its bytes look random: the order-0 entropy
 * of every 16th 1 KiB-aligned run of bytes, up to `SAMPLE_BYTES`, above `STORE_ENTROPY_BITS`.
 */
export function looksRandom(block: Uint8Array): boolean {
  if (block.length < SAMPLE_BYTES) return false;
  const counts = new Uint32Array(256);
  const stride = Math.floor(block.length / (SAMPLE_BYTES / 1024)) & ~1023;
  let sampled = 0;
  for (let start = 0; start + 1024 <= block.length && sampled < SAMPLE_BYTES; start += stride) {
    for (let i = start; i < start + 1024; i++) counts[block[i]!]!++;
    sampled += 1024;
  }
  let entropy = 0;
  for (const count of counts) {
    if (count === 0) continue;
    const p = count / sampled;
    entropy -= p * Math.log2(p);
  }
  return entropy > STORE_ENTROPY_BITS;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let crcTable: Uint32Array | undefined;

/** Continues the CRC-32 (gzip's polynomial) of `value` over `data`. */
export function crc32(data: Uint8Array, value = 0): number {
  if (nativeCrc32) return nativeCrc32(data, value);
  crcTable ??= makeCrcTable();
  let crc = ~value >>> 0;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

function makeCrcTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}
