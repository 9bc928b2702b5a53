import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { InputError } from "../../../src/errors.ts";
import { BasePreProcessor } from "../../../src/context/preprocessor.ts";
import type { ContextEntry } from "../../../src/context/entries.ts";
import { tarDigest, writeArchive } from "../../../src/context/archive.ts";
import { contextDigest } from "../../../src/context/digest.ts";
import { tarStream } from "../../../src/context/tar.ts";
import { makeTempDir, removeDir, which } from "../../services/common.ts";

const repository = resolve(fileURLToPath(import.meta.url), "../../../..");

function sha256File(path: string): string {
  const result = spawnSync("sha256sum", [path], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return `sha256:${result.stdout.split(" ")[0]}`;
}

/** A sink that accepts each chunk only on a later turn of the event loop, so the archive must wait. */
class SlowSink extends Writable {
  received = 0;
  constructor(private readonly onChunk: (received: number) => void) {
    super({ highWaterMark: 64 * 1024 });
  }
  override _write(chunk: Uint8Array, _encoding: string, callback: () => void): void {
    this.received += chunk.length;
    this.onChunk(this.received);
    setImmediate(callback);
  }
}

let base: string;
let entries: ContextEntry[];

before(async () => {
  base = await makeTempDir("archive");
  const root = join(base, "project");
  await mkdir(join(root, "data"), { recursive: true });
  await writeFile(join(root, "train.py"), "print('train')\n");
  await writeFile(join(root, "data/values.csv"), "a,b\n".repeat(5000));
  await writeFile(join(root, "data/café.txt"), "unicode\n");
  entries = await new BasePreProcessor({ root, inputFiles: ["train.py", "data"] }).collect();
});

after(async () => {
  await removeDir(base);
});

describe("writeArchive", () => {
  test("digests match sha256sum", async () => {
    const file = join(base, "layer.tar.gz");
    const result = await writeArchive(entries, createWriteStream(file));
    assert.equal(result.digest, sha256File(file));
    const tar = gunzipSync(await readFile(file));
    assert.equal(result.diffID, `sha256:${createHash("sha256").update(tar).digest("hex")}`);
    assert.equal(result.uncompressedSize, tar.length);
    assert.equal(result.size, (await readFile(file)).length);
  });

  test("diffID matches gunzip output", async (t) => {
    if (!which("gunzip") || !which("sha256sum")) return t.skip("gunzip or sha256sum missing");
    const file = join(base, "gunzip.tar.gz");
    const result = await writeArchive(entries, createWriteStream(file), { level: 9 });
    const piped = spawnSync("sh", ["-c", 'gunzip -c "$1" | sha256sum', "sh", file], {
      encoding: "utf8",
    });
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(result.diffID, `sha256:${piped.stdout.split(" ")[0]}`);
  });

  test("diffID equals tarDigest", async () => {
    const result = await writeArchive(
      entries,
      new Writable({ write: (_c, _e, callback) => callback() }),
    );
    const digest = await tarDigest(entries);
    assert.equal(result.diffID, digest.diffID);
    assert.equal(result.uncompressedSize, digest.uncompressedSize);
  });

  test("gzip header has no name or time", async () => {
    const file = join(base, "header.tar.gz");
    await writeArchive(entries, createWriteStream(file));
    const bytes = await readFile(file);
    assert.equal(bytes[0], 0x1f);
    assert.equal(bytes[1], 0x8b);
    assert.equal(bytes[3], 0, "FLG: no name, comment or extra field");
    assert.equal(bytes.readUInt32LE(4), 0, "MTIME");
  });

  test("same bytes twice", async () => {
    const first = join(base, "first.tar.gz");
    const second = join(base, "second.tar.gz");
    const a = await writeArchive(entries, createWriteStream(first));
    const b = await writeArchive(entries, createWriteStream(second));
    assert.equal(a.digest, b.digest);
    assert.deepEqual(await readFile(first), await readFile(second));
  });

  test("web stream sink", async () => {
    const chunks: Uint8Array[] = [];
    const sink = new WritableStream<Uint8Array>({ write: (chunk) => void chunks.push(chunk) });
    const result = await writeArchive(entries, sink);
    const bytes = Buffer.concat(chunks);
    assert.equal(result.size, bytes.length);
    assert.equal(result.digest, `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    assert.equal(result.diffID, (await tarDigest(entries)).diffID);
  });

  test("progress reports bytes", async () => {
    // Progress comes once per 768 KiB block of the tar, so the context spans several blocks.
    const root = join(base, "progress");
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "values.csv"), "1,2,3\n".repeat(600_000));
    const large = await new BasePreProcessor({ root, inputFiles: ["values.csv"] }).collect();
    const reported: number[] = [];
    const result = await writeArchive(
      large,
      new Writable({ write: (_c, _e, callback) => callback() }),
      {
        onProgress: (bytes) => reported.push(bytes),
      },
    );
    assert.ok(reported.length >= 4, `${reported.length} reports`);
    assert.ok(reported.every((bytes, index) => index === 0 || bytes > reported[index - 1]!));
    assert.equal(reported.at(-1), result.uncompressedSize);
  });

  test("rewrite after hashing rejected", async () => {
    const root = join(base, "rewritten");
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "weights.bin"), "version one\n");
    const hashed = await new BasePreProcessor({ root, inputFiles: ["weights.bin"] }).collect();
    await contextDigest(hashed);
    // Same size, other bytes: only the file times tell the archive that the tag is stale.
    await writeFile(join(root, "weights.bin"), "version two\n");
    const sink = new Writable({ write: (_c, _e, callback) => callback() });
    await assert.rejects(
      writeArchive(hashed, sink),
      (error: unknown) =>
        error instanceof InputError && /weights\.bin\) was written to/.test(error.message),
    );
  });

  test("deleted file named", async () => {
    const root = join(base, "deleted");
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "gone.py"), "print('gone')\n");
    const collected = await new BasePreProcessor({ root, inputFiles: ["gone.py"] }).collect();
    await rm(join(root, "gone.py"));
    const sink = new Writable({ write: (_c, _e, callback) => callback() });
    await assert.rejects(
      writeArchive(collected, sink),
      (error: unknown) =>
        error instanceof InputError && /gone\.py\) was deleted/.test(error.message),
    );
    await assert.rejects(
      contextDigest(collected),
      (error: unknown) => error instanceof InputError && /was deleted/.test(error.message),
    );
  });

  test("invalid level rejected", async () => {
    const sink = new Writable({ write: (_c, _e, callback) => callback() });
    await assert.rejects(
      writeArchive(entries, sink, { level: 11 }),
      (error: unknown) => error instanceof InputError && error.message.includes("11"),
    );
  });

  test("abort signal rejects", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stopped by test"));
    const sink = new Writable({ write: (_c, _e, callback) => callback() });
    await assert.rejects(writeArchive(entries, sink, { signal: controller.signal }));
  });

  test("large file streams bounded", async () => {
    const path = join(base, "sparse.bin");
    const size = 64 * 1024 * 1024;
    await writeFile(path, "");
    await truncate(path, size);
    const large: ContextEntry[] = [
      { path: "app/sparse.bin", type: "file", source: path, mode: 0o644, size },
    ];

    let largestChunk = 0;
    for await (const chunk of tarStream(large)) largestChunk = Math.max(largestChunk, chunk.length);
    assert.ok(largestChunk <= 256 * 1024, `largest tar chunk ${largestChunk} bytes`);

    // With gzip level 0 the sink receives about as many bytes as were archived, so the gap
    // between archived and received bytes is what the pipeline holds in memory.
    let archived = 0;
    let maxAhead = 0;
    const sink = new SlowSink((received) => {
      maxAhead = Math.max(maxAhead, archived - received);
    });
    const result = await writeArchive(large, sink, {
      level: 0,
      onProgress: (bytes) => {
        archived = bytes;
      },
    });
    assert.equal(result.uncompressedSize, size + 1024 + 512);
    assert.ok(maxAhead < 4 * 1024 * 1024, `archive ran ${maxAhead} bytes ahead of the sink`);
  });
});

describe("tarDigest across runtimes", () => {
  const runtimes: [string, string[]][] = [
    ["node", [process.platform === "win32" ? "node.exe" : "node", "--import", "tsx"]],
    ["deno", [join(repository, "node_modules/.bin/deno"), "run", "-A", "--no-check"]],
    ["bun", [join(repository, "node_modules/.bin/bun")]],
  ];

  for (const [name, command] of runtimes) {
    test(`same diffID on ${name}`, async (t) => {
      if (name === "node" ? !which("node") : !existsSync(command[0]!)) {
        return t.skip(`${name} is not installed`);
      }
      const script = join(base, `digest-${name}.mts`);
      const entriesFile = join(base, `entries-${name}.json`);
      await writeFile(entriesFile, JSON.stringify(entries));
      await writeFile(
        script,
        [
          `import { readFileSync } from "node:fs";`,
          `import { tarDigest } from ${JSON.stringify(join(repository, "src/context/archive.ts"))};`,
          `const entries = JSON.parse(readFileSync(${JSON.stringify(entriesFile)}, "utf8"));`,
          `const { diffID } = await tarDigest(entries, { mtime: 0 });`,
          `process.stdout.write(diffID);`,
        ].join("\n"),
      );
      const [program, ...args] = command;
      const result = spawnSync(program!, [...args, script], { cwd: repository, encoding: "utf8" });
      assert.equal(result.status, 0, `${name} failed: ${result.stderr}`);
      assert.equal(result.stdout, (await tarDigest(entries, { mtime: 0 })).diffID);
    });
  }
});
