import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { constants, crc32 as nodeCrc32, gunzipSync, gzipSync } from "node:zlib";

import { crc32, gzipParallel, looksRandom } from "../../../src/context/gzip-parallel.ts";

/** Returns `size` deterministic bytes that deflate shrinks: CSV-like text. */
function text(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = i % 40 === 39 ? 10 : i % 8 === 7 ? 44 : 48 + ((state >>> 16) % 10);
  }
  return out;
}

/** Returns `size` deterministic incompressible bytes. */
function random(size: number): Uint8Array {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16));
  return new Uint8Array(cipher.update(Buffer.alloc(size)));
}

async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size)
    yield bytes.subarray(offset, offset + size);
}

async function gzip(bytes: Uint8Array, chunk: number, options = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of gzipParallel(chunks(bytes, chunk), options)) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

describe("gzipParallel", () => {
  const input = new Uint8Array(Buffer.concat([text(700_000), random(300_000), text(100_001, 2)]));

  test("round trip", async () => {
    const output = await gzip(input, 65_536, { blockSize: 65_536 });
    assert.deepEqual(new Uint8Array(gunzipSync(output)), input);
  });

  test("chunking does not matter", async () => {
    const a = await gzip(input, 1000, { blockSize: 65_536 });
    const b = await gzip(input, 300_000, { blockSize: 65_536 });
    assert.deepEqual(a, b);
  });

  test("concurrency does not matter", async () => {
    const a = await gzip(input, 65_536, { blockSize: 65_536, concurrency: 2 });
    const b = await gzip(input, 65_536, { blockSize: 65_536, concurrency: 8 });
    assert.deepEqual(a, b);
  });

  test("reused output keeps the bytes", async () => {
    const mixed = new Uint8Array(Buffer.concat([random(400_000), text(200_000), random(200_000)]));
    const copies: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const options = { blockSize: 65_536, reuseOutput: true };
    for await (const part of gzipParallel(chunks(mixed, 65_536), options)) {
      if (part.length > 65_536) buffers.add(part.buffer);
      copies.push(new Uint8Array(part));
    }
    const reused = new Uint8Array(Buffer.concat(copies));
    assert.deepEqual(reused, await gzip(mixed, 65_536, { blockSize: 65_536 }));
    assert.deepEqual(new Uint8Array(gunzipSync(reused)), mixed);
    // Every stored block went through the same buffer.
    assert.equal(buffers.size, 1);
  });

  test("size close to serial gzip", async () => {
    // Random bytes filling default-sized blocks: a block mixing them with much text can be
    // stored whole, and is then larger than serial gzip's output.
    const block = 768 * 1024;
    const aligned = new Uint8Array(
      Buffer.concat([text(2 * block), random(block), text(100_001, 2)]),
    );
    const output = await gzip(aligned, 65_536);
    const serial = gzipSync(aligned, { level: 6 });
    assert.ok(output.length <= serial.length * 1.01, `${output.length} vs ${serial.length}`);
  });

  test("empty input", async () => {
    const output = await gzip(new Uint8Array(0), 10);
    assert.equal(gunzipSync(output).length, 0);
  });

  test("level 0 stores", async () => {
    const output = await gzip(input, 65_536, { level: 0 });
    assert.ok(output.length >= input.length);
    assert.deepEqual(new Uint8Array(gunzipSync(output)), input);
  });

  test("random tail stored final", async () => {
    const bytes = new Uint8Array(Buffer.concat([text(600_000), random(1_200_000)]));
    const output = await gzip(bytes, 100_000);
    assert.ok(output.length < bytes.length, `${output.length} of ${bytes.length}`);
    assert.deepEqual(new Uint8Array(gunzipSync(output)), bytes);
    // gzip(1) is a second, independent decoder. Through a file: a large stdin and stdout over
    // pipes at once can deadlock spawnSync.
    const file = join(tmpdir(), `fairing-gzip-${process.pid}.gz`);
    writeFileSync(file, output);
    const decoded = spawnSync("gzip", ["-dc", file], { maxBuffer: 4 * bytes.length });
    rmSync(file);
    assert.equal(decoded.status, 0, String(decoded.stderr));
    assert.deepEqual(new Uint8Array(decoded.stdout), bytes);
  });

  test("header has no name or time", async () => {
    const output = await gzip(text(10), 10);
    assert.deepEqual([...output.subarray(0, 4)], [0x1f, 0x8b, 8, 0]);
    assert.deepEqual([...output.subarray(4, 8)], [0, 0, 0, 0]);
  });

  test("source error rejects", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield text(300_000);
      throw new Error("read failed");
    }
    const drain = async () => {
      for await (const part of gzipParallel(failing(), { blockSize: 65_536 })) void part;
    };
    await assert.rejects(drain(), /read failed/);
  });

  test("gunzip checks the trailer", async () => {
    const output = await gzip(input, 65_536);
    output[output.length - 8] = output[output.length - 8]! ^ 0xff;
    assert.throws(() => gunzipSync(output, { finishFlush: constants.Z_FINISH }));
  });
});

describe("looksRandom", () => {
  test("random bytes", () => {
    assert.equal(looksRandom(random(256 * 1024)), true);
  });

  test("text", () => {
    assert.equal(looksRandom(text(256 * 1024)), false);
  });

  test("short blocks deflate", () => {
    assert.equal(looksRandom(random(1000)), false);
  });
});

describe("crc32", () => {
  test("known value", () => {
    assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  });

  test("continues a value", () => {
    const data = text(5000);
    assert.equal(crc32(data.subarray(2000), crc32(data.subarray(0, 2000))), crc32(data));
  });

  test("matches zlib", () => {
    const data = random(4096);
    assert.equal(crc32(data), nodeCrc32(data));
  });
});
