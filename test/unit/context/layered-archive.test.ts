import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { tarDigest } from "../../../src/context/archive.ts";
import { InputError } from "../../../src/errors.ts";
import type { ContextEntry } from "../../../src/context/entries.ts";
import { writeLayers } from "../../../src/context/layered-archive.ts";
import { LARGE_FILE_BYTES, splitLayers } from "../../../src/context/layers.ts";

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

describe("writeLayers", () => {
  let dir = "";
  let project = "";
  const entries: ContextEntry[] = [];
  const options = () => ({
    dir: join(dir, "out"),
    pathPrefix: "/app/",
    mtime: 0,
    digestCacheFile: join(dir, "cache", "digests.json"),
    layerCacheFile: join(dir, "cache", "layers.json"),
    canReuse: async () => true,
  });

  const refresh = async () => {
    for (const entry of entries) {
      if (entry.type === "file") entry.size = (await stat(entry.source!)).size;
    }
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "layered-"));
    project = join(dir, "project");
    await mkdir(join(dir, "out"));
    await mkdir(project);
    const files: [string, string | Uint8Array][] = [
      ["requirements.txt", "numpy==1.26.4\n"],
      ["data.bin", new Uint8Array(LARGE_FILE_BYTES).fill(7)],
      ["train.py", "print('train')\n"],
    ];
    entries.push({ path: "app", type: "directory", mode: 0o755, size: 0 });
    for (const [name, content] of files) {
      await writeFile(join(project, name), content);
      entries.push({
        path: `app/${name}`,
        type: "file",
        mode: 0o644,
        size: 0,
        source: join(project, name),
      });
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : 1));
    await refresh();
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("first build archives all", async () => {
    const built = await writeLayers(entries, options());
    assert.deepEqual(
      built.map((layer) => layer.name),
      ["dependencies", "data", "code"],
    );
    assert.ok(built.every((layer) => layer.file !== undefined));
  });

  test("streaming copy gets every byte", async () => {
    const received = new Map<string, Uint8Array[]>();
    const streamed = await writeLayers(entries, {
      ...options(),
      layerCacheFile: undefined,
      streamTo: async (name) => {
        const parts: Uint8Array[] = [];
        received.set(name, parts);
        return {
          write: async (data) => void parts.push(Uint8Array.from(data)),
          finish: async (digest) => {
            // A registry checks the digest it is given against the bytes it received.
            if (digest !== `sha256:${sha256(Buffer.concat(parts))}`)
              throw new Error("DIGEST_INVALID");
          },
          cancel: async () => {},
        };
      },
    });
    const filed = await writeLayers(entries, { ...options(), layerCacheFile: undefined });
    for (const [index, layer] of streamed.entries()) {
      assert.equal(layer.streamed, true, `${layer.name} was streamed`);
      assert.equal(layer.file, undefined, `${layer.name} has no file`);
      assert.equal(layer.digest, filed[index]!.digest);
      const file = await readFile(filed[index]!.file!);
      assert.deepEqual(Buffer.concat(received.get(layer.name)!), file);
    }
  });

  test("failed copy falls back to a file", async () => {
    let cancelled = 0;
    const built = await writeLayers(entries, {
      ...options(),
      layerCacheFile: undefined,
      streamTo: async () => ({
        write: async () => {
          throw new Error("the registry went away");
        },
        finish: async () => {},
        cancel: async () => void cancelled++,
      }),
    });
    assert.equal(cancelled, built.length);
    for (const layer of built) {
      assert.equal(layer.streamed, undefined, `${layer.name} was not streamed`);
      const file = await readFile(layer.file!);
      assert.equal(`sha256:${sha256(file)}`, layer.digest);
    }
  });

  test("rejected commit falls back", async () => {
    let cancelled = 0;
    const built = await writeLayers(entries, {
      ...options(),
      layerCacheFile: undefined,
      streamTo: async () => ({
        write: async () => {},
        finish: async () => {
          throw new Error("DIGEST_INVALID: the registry computed another digest");
        },
        cancel: async () => void cancelled++,
      }),
    });
    assert.equal(cancelled, built.length);
    for (const layer of built) {
      assert.equal(layer.streamed, undefined, `${layer.name} was not streamed`);
      assert.equal(`sha256:${sha256(await readFile(layer.file!))}`, layer.digest);
    }
  });

  test("unreadable file cancels the copy", async () => {
    const missing: ContextEntry = {
      path: "app/gone.py",
      type: "file",
      source: join(project, "gone.py"),
      mode: 0o644,
      size: 10,
    };
    let opened = 0;
    let finished = 0;
    let cancelled = 0;
    await assert.rejects(
      writeLayers([...entries, missing], {
        ...options(),
        layerCacheFile: undefined,
        streamTo: async () => {
          opened++;
          const parts: Uint8Array[] = [];
          return {
            write: async (data) => void parts.push(Uint8Array.from(data)),
            finish: async (digest) => {
              // A registry checks the digest it is given against the bytes it received.
              if (digest !== `sha256:${sha256(Buffer.concat(parts))}`)
                throw new Error("DIGEST_INVALID");
              finished++;
            },
            cancel: async () => void cancelled++,
          };
        },
      }),
      (error: unknown) =>
        error instanceof InputError && /app\/gone\.py\) was deleted/.test(error.message),
    );
    // The failing layer's copy is cancelled, and so is the copy of a layer archived beside it.
    assert.ok(cancelled >= 1);
    assert.equal(finished + cancelled, opened);
  });

  test("diffIDs match the split", async () => {
    const built = await writeLayers(entries, { ...options(), layerCacheFile: undefined });
    const layers = splitLayers(entries, "/app/");
    for (const [index, layer] of layers.entries()) {
      const { diffID } = await tarDigest(layer.entries, { mtime: 0 });
      assert.equal(built[index]!.diffID, diffID);
    }
  });

  test("unchanged reuses all", async () => {
    const first = await writeLayers(entries, options());
    const again = await writeLayers(entries, options());
    assert.ok(again.every((layer) => layer.file === undefined));
    assert.deepEqual(
      again.map((layer) => layer.digest),
      first.map((layer) => layer.digest),
    );
  });

  test("edit rebuilds one layer", async () => {
    const first = await writeLayers(entries, options());
    await appendFile(join(project, "train.py"), "# edited\n");
    await refresh();
    const again = await writeLayers(entries, options());
    assert.deepEqual(
      again.map((layer) => layer.file !== undefined),
      [false, false, true],
    );
    assert.notEqual(again[2]!.digest, first[2]!.digest);
  });

  test("refused reuse rebuilds", async () => {
    await writeLayers(entries, options());
    const again = await writeLayers(entries, { ...options(), canReuse: async () => false });
    assert.ok(again.every((layer) => layer.file !== undefined));
  });
});
