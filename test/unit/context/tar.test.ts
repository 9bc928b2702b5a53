import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  mkdir,
  readFile,
  readlink,
  stat,
  symlink,
  truncate,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { InputError } from "../../../src/errors.ts";
import { BasePreProcessor } from "../../../src/context/preprocessor.ts";
import type { ContextEntry } from "../../../src/context/entries.ts";
import { archiveMtime, tarSize, tarStream } from "../../../src/context/tar.ts";
import { makeTempDir, removeDir, which } from "../../services/common.ts";

async function tarBytes(entries: ContextEntry[], mtime?: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of tarStream(entries, mtime === undefined ? {} : { mtime }))
    chunks.push(chunk);
  return Buffer.concat(chunks);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Runs GNU tar in UTC and returns its stdout; fails on any warning on stderr. */
function gnuTar(args: string[]): string {
  const result = spawnSync("tar", args, { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
  assert.equal(result.status, 0, `tar ${args.join(" ")} failed: ${result.stderr}`);
  assert.equal(result.stderr, "");
  return result.stdout;
}

const longDirectory = "d".repeat(120);
const longPath = `${"segment-".repeat(20)}/${"n".repeat(90)}.txt`;
const unicodePath = "données/café-日本.txt";

let base: string;
let root: string;
let entries: ContextEntry[];

before(async () => {
  base = await makeTempDir("tar");
  root = join(base, "project");
  const files: Record<string, string> = {
    "main.sh": "#!/bin/sh\necho hi\n",
    "data/empty.txt": "",
    "data/block.bin": "b".repeat(512),
    "data/odd.bin": "o".repeat(1000),
    [`${longDirectory}/file.txt`]: "long directory\n",
    [longPath]: "long path\n",
    [unicodePath]: "unicode\n",
  };
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
  execFileSync("chmod", ["755", join(root, "main.sh")]);
  await symlink("block.bin", join(root, "data/short-link"));
  await symlink(`../${longPath}`, join(root, "data/long-link"));
  entries = await new BasePreProcessor({ root, inputFiles: ["."] }).collect();
});

after(async () => {
  await removeDir(base);
});

describe("tarStream", () => {
  test("GNU tar lists entries", async (t) => {
    if (!which("tar")) return t.skip("GNU tar is not installed");
    const archive = join(base, "list.tar");
    await writeFile(archive, await tarBytes(entries));
    const listing = gnuTar(["--numeric-owner", "-tvf", archive]).trim().split("\n");
    assert.equal(listing.length, entries.length);
    const names = gnuTar(["-tf", archive]).trim().split("\n");
    const expected = entries.map((entry) =>
      entry.type === "directory" ? `${entry.path}/` : entry.path,
    );
    assert.deepEqual(names, expected);
    const main = listing.find((line) => line.endsWith(" app/main.sh"));
    assert.match(main ?? "", /^-rwxr-xr-x 0\/0 +18 1970-01-01 00:00 app\/main\.sh$/);
  });

  test("GNU tar extracts identical bytes", async (t) => {
    if (!which("tar")) return t.skip("GNU tar is not installed");
    const archive = join(base, "extract.tar");
    const target = join(base, "extracted");
    await mkdir(target);
    await writeFile(archive, await tarBytes(entries));
    gnuTar(["-xf", archive, "-C", target]);
    for (const entry of entries) {
      const extracted = join(target, entry.path);
      if (entry.type === "file") {
        const expected = await readFile(entry.source!);
        assert.deepEqual(await readFile(extracted), expected, entry.path);
        assert.equal((await stat(extracted)).mode & 0o777, entry.mode, entry.path);
      } else if (entry.type === "symlink") {
        assert.equal(await readlink(extracted), entry.linkTarget, entry.path);
      } else {
        assert.ok((await stat(extracted)).isDirectory(), entry.path);
      }
    }
  });

  test("PAX for long and non-ASCII paths", async () => {
    const bytes = Buffer.from(await tarBytes(entries));
    const text = bytes.toString("utf8");
    assert.ok(text.includes(` path=app/${longPath}\n`), "long path record");
    assert.ok(text.includes(` path=app/${unicodePath}\n`), "unicode path record");
    assert.ok(text.includes(` linkpath=../${longPath}\n`), "long link record");
    assert.ok(!text.includes(` path=app/${longDirectory}/file.txt\n`), "ustar prefix split used");
  });

  test("header fields fixed", async () => {
    const bytes = await tarBytes(entries.slice(0, 1));
    const header = Buffer.from(bytes.subarray(0, 512));
    assert.equal(header.toString("latin1", 0, 4), "app/");
    assert.equal(header.toString("latin1", 100, 108), "0000755\0");
    assert.equal(header.toString("latin1", 108, 116), "0000000\0");
    assert.equal(header.toString("latin1", 116, 124), "0000000\0");
    assert.equal(header.toString("latin1", 136, 148), "00000000000\0");
    assert.equal(header.toString("latin1", 156, 157), "5");
    assert.equal(header.toString("latin1", 257, 265), "ustar\u000000");
    assert.equal(
      header.subarray(265, 329).every((byte) => byte === 0),
      true,
    );
    assert.equal(bytes.length, 512 + 1024);
    assert.equal(
      bytes.subarray(512).every((byte) => byte === 0),
      true,
    );
  });

  test("tarSize matches output", async () => {
    assert.equal((await tarBytes(entries)).length, tarSize(entries));
  });

  test("same bytes twice", async () => {
    assert.equal(sha256(await tarBytes(entries)), sha256(await tarBytes(entries)));
  });

  test("file mtimes do not matter", async () => {
    const before = sha256(await tarBytes(entries));
    await utimes(join(root, "main.sh"), 1_000_000, 1_000_000);
    await utimes(join(root, "data/odd.bin"), new Date(), new Date());
    const again = await new BasePreProcessor({ root, inputFiles: ["."] }).collect();
    assert.equal(sha256(await tarBytes(again)), before);
  });

  test("SOURCE_DATE_EPOCH honoured", async () => {
    const previous = process.env.SOURCE_DATE_EPOCH;
    try {
      process.env.SOURCE_DATE_EPOCH = "1700000000";
      assert.equal(archiveMtime(), 1_700_000_000);
      const bytes = await tarBytes(entries.slice(0, 1));
      assert.equal(
        Buffer.from(bytes).toString("latin1", 136, 148),
        (1_700_000_000).toString(8) + "\0",
      );
      process.env.SOURCE_DATE_EPOCH = "yesterday";
      assert.throws(
        () => archiveMtime(),
        (error: unknown) => error instanceof InputError && error.message.includes('"yesterday"'),
      );
    } finally {
      if (previous === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = previous;
    }
  });

  test("mtime option overrides", async () => {
    const bytes = await tarBytes(entries.slice(0, 1), 42);
    assert.equal(Buffer.from(bytes).toString("latin1", 136, 148), "00000000052\0");
  });

  test("grown file rejected", async () => {
    const path = join(base, "grows.txt");
    await writeFile(path, "12345");
    const entry: ContextEntry = {
      path: "app/grows.txt",
      type: "file",
      source: path,
      mode: 0o644,
      size: 3,
    };
    await assert.rejects(
      tarBytes([entry]),
      (error: unknown) =>
        error instanceof InputError &&
        error.message.includes(path) &&
        error.message.includes("changed"),
    );
  });

  test("shrunk file rejected", async () => {
    const path = join(base, "shrinks.txt");
    await writeFile(path, "1");
    const entry: ContextEntry = {
      path: "app/shrinks.txt",
      type: "file",
      source: path,
      mode: 0o644,
      size: 4000,
    };
    await assert.rejects(
      tarBytes([entry]),
      (error: unknown) =>
        error instanceof InputError &&
        error.message.includes(path) &&
        error.message.includes("read 1"),
    );
  });

  test("size of 8 GiB uses PAX", async () => {
    const path = join(base, "huge.bin");
    const size = 9 * 1024 ** 3;
    await writeFile(path, "");
    await truncate(path, size);
    const entry: ContextEntry = {
      path: "app/huge.bin",
      type: "file",
      source: path,
      mode: 0o644,
      size,
    };
    const stream = tarStream([entry], { mtime: 0 });
    const pax = await stream.next();
    const body = await stream.next();
    const header = await stream.next();
    await stream.return(undefined);
    const paxHeader = Buffer.from(pax.value as Uint8Array);
    assert.equal(paxHeader.toString("latin1", 156, 157), "x");
    assert.ok(
      Buffer.from(body.value as Uint8Array)
        .toString("utf8")
        .includes(` size=${size}\n`),
    );
    const ustar = Buffer.from(header.value as Uint8Array);
    assert.equal(ustar[124], 0x80);
    assert.equal(ustar.readUIntBE(130, 6), size);
  });
});
