import { createHash } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { InputError } from "../../../src/errors.ts";
import { BasePreProcessor } from "../../../src/context/preprocessor.ts";
import { contextDigest } from "../../../src/context/digest.ts";
import type { ContextEntry } from "../../../src/context/entries.ts";
import { makeTempDir, removeDir } from "../../services/common.ts";

let base: string;
let counter = 0;

/** Creates a project with `files` and returns its root and collected entries. */
async function project(
  files: Record<string, string>,
): Promise<{ root: string; entries: ContextEntry[] }> {
  const root = join(base, `p${counter++}`);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return { root, entries: await collect(root) };
}

async function collect(root: string): Promise<ContextEntry[]> {
  return await new BasePreProcessor({ root, inputFiles: ["."] }).collect();
}

const files = { "train.py": "print(1)\n", "data/a.csv": "1,2\n", "data/b.csv": "3,4\n" };

before(async () => {
  base = await makeTempDir("digest");
});

after(async () => {
  await removeDir(base);
});

describe("contextDigest", () => {
  test("format and stability", async () => {
    const { entries } = await project(files);
    const digest = await contextDigest(entries);
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await contextDigest(entries), digest);
  });

  test("same content same digest", async () => {
    const first = await project(files);
    const second = await project(files);
    await utimes(join(second.root, "train.py"), 5, 5);
    assert.equal(await contextDigest(first.entries), await contextDigest(second.entries));
  });

  test("entry order ignored", async () => {
    const { entries } = await project(files);
    assert.equal(await contextDigest([...entries].reverse()), await contextDigest(entries));
  });

  test("content change same size", async () => {
    const { root, entries } = await project(files);
    const before = await contextDigest(entries);
    await writeFile(join(root, "train.py"), "print(2)\n");
    assert.notEqual(await contextDigest(await collect(root)), before);
  });

  test("mode change", async () => {
    const { root, entries } = await project(files);
    const before = await contextDigest(entries);
    await chmod(join(root, "train.py"), 0o755);
    assert.notEqual(await contextDigest(await collect(root)), before);
  });

  test("rename changes digest", async () => {
    const a = await project({ "x.txt": "same" });
    const b = await project({ "y.txt": "same" });
    assert.notEqual(await contextDigest(a.entries), await contextDigest(b.entries));
  });

  test("changed size rejected", async () => {
    const { root, entries } = await project(files);
    await writeFile(join(root, "train.py"), "print('longer')\n");
    await assert.rejects(
      contextDigest(entries),
      (error: unknown) =>
        error instanceof InputError && error.message.includes(join(root, "train.py")),
    );
  });

  test("cache skips unchanged files", async () => {
    const { root, entries } = await project(files);
    const path = join(root, "train.py");
    await utimes(path, 1000, 1000);
    const cacheFile = join(base, `cache-${counter++}`, "hashes.json");
    const digest = await contextDigest(entries, { cacheFile });
    const cache = JSON.parse(await readFile(cacheFile, "utf8"));
    assert.equal(Object.keys(cache.files).length, 3);
    assert.equal(await contextDigest(entries, { cacheFile }), digest);

    // Same size, mtime and inode but new bytes, as `cp -p` or `touch -d` leave a file: the
    // ctime still changes, so the cache misses and the new content is hashed.
    await writeFile(path, "print(9)\n");
    await utimes(path, 1000, 1000);
    const rewritten = await contextDigest(entries, { cacheFile });
    assert.notEqual(rewritten, digest);
    assert.equal(rewritten, await contextDigest(entries));
  });

  test("unchanged cache not rewritten", async () => {
    const { entries } = await project(files);
    const cacheFile = join(base, `same-${counter++}.json`);
    const digest = await contextDigest(entries, { cacheFile });
    // Records made right after a change are not trusted; date them ten seconds later.
    const document = JSON.parse(await readFile(cacheFile, "utf8"));
    for (const record of Object.values(document.files) as { hashedAt: number }[]) {
      record.hashedAt += 10_000;
    }
    await writeFile(cacheFile, JSON.stringify(document));
    const before = await stat(cacheFile);
    assert.equal(await contextDigest(entries, { cacheFile }), digest);
    const after = await stat(cacheFile);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeMs, before.mtimeMs);
  });

  test("known hashes skip files and cache", async () => {
    const { root, entries } = await project(files);
    const cacheFile = join(base, `known-${counter++}.json`);
    const contentHashes = new Map<ContextEntry, string>();
    const digest = await contextDigest(entries, { cacheFile, contentHashes });
    assert.equal(contentHashes.size, 3);
    for (const hash of contentHashes.values()) assert.match(hash, /^[0-9a-f]{64}$/);

    // With every file known, neither the files nor the cache are looked at again: a removed
    // file and a removed cache go unnoticed (the archive checks the files), and no cache is
    // written.
    await rm(cacheFile);
    await rm(join(root, "data/a.csv"));
    assert.equal(await contextDigest(entries, { cacheFile, contentHashes }), digest);
    await assert.rejects(stat(cacheFile), { code: "ENOENT" });

    // A file entry the map lacks is hashed and added.
    contentHashes.delete(entries.find((entry) => entry.path.endsWith("data/a.csv"))!);
    await assert.rejects(contextDigest(entries, { cacheFile, contentHashes }), InputError);
    await writeFile(join(root, "data/a.csv"), "1,2\n");
    assert.equal(await contextDigest(entries, { cacheFile, contentHashes }), digest);
    assert.equal(contentHashes.size, 3);
  });

  test("content hash of files of many sizes", async () => {
    // Files are read in 256 KiB chunks, so the sizes lie around the chunk size, with an empty file.
    const sizes = [0, 1, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 7];
    const contents: Record<string, string> = {};
    for (const size of sizes) contents[`f${size}.bin`] = "x".repeat(size);
    const { entries } = await project(contents);
    const contentHashes = new Map<ContextEntry, string>();
    await contextDigest(entries, { contentHashes });
    for (const entry of entries.filter((item) => item.type === "file")) {
      const size = Number(/f(\d+)\.bin$/.exec(entry.path)![1]);
      const expected = createHash("sha256").update("x".repeat(size)).digest("hex");
      assert.equal(contentHashes.get(entry), expected, entry.path);
    }
  });

  test("aborted signal stops the digest", async () => {
    const { entries } = await project(files);
    const controller = new AbortController();
    const reason = new Error("interrupted");
    controller.abort(reason);
    await assert.rejects(
      contextDigest(entries, { signal: controller.signal }),
      (error: unknown) => error === reason,
    );
  });

  test("cache miss on mtime change", async () => {
    const { root, entries } = await project(files);
    const cacheFile = join(base, `cache-${counter++}.json`);
    const digest = await contextDigest(entries, { cacheFile });
    const path = join(root, "train.py");
    await writeFile(path, "print(7)\n");
    await utimes(path, 100, 100);
    assert.notEqual(await contextDigest(entries, { cacheFile }), digest);
  });

  test("corrupt cache ignored", async () => {
    const { entries } = await project(files);
    const expected = await contextDigest(entries);
    const cacheFile = join(base, `corrupt-${counter++}.json`);
    for (const content of ["{not json", "[]", '{"version":1,"files":{"/x":{"size":"a"}}}']) {
      await writeFile(cacheFile, content);
      assert.equal(await contextDigest(entries, { cacheFile }), expected);
      assert.equal(JSON.parse(await readFile(cacheFile, "utf8")).version, 2);
    }
  });

  test("cache leaves no temp files", async () => {
    const { entries } = await project(files);
    const directory = join(base, `tidy-${counter++}`);
    await contextDigest(entries, { cacheFile: join(directory, "hashes.json") });
    assert.deepEqual(await readdir(directory), ["hashes.json"]);
  });

  test("many files hashed", async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 50; i++) many[`f/${i}.txt`] = `file ${i}\n`;
    const { entries } = await project(many);
    const first = await contextDigest(entries);
    assert.equal(await contextDigest(entries), first);
  });
});
