import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { LayerCache, layerCacheKey, runtimeIdentity } from "../../../src/context/layer-cache.ts";

const layer = {
  digest: `sha256:${"a".repeat(64)}`,
  size: 123,
  diffID: `sha256:${"b".repeat(64)}`,
};
const inputs = { contextDigest: `sha256:${"c".repeat(64)}`, level: 6, mtime: 0 };

describe("LayerCache", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "layer-cache-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("saved record reads back", async () => {
    const file = join(dir, "a", "layers.json");
    const cache = await LayerCache.open(file);
    cache.set(layerCacheKey(inputs), layer);
    await cache.save();
    const again = await LayerCache.open(file);
    assert.deepEqual(again.get(layerCacheKey(inputs)), layer);
  });

  test("pushed repository reads back", async () => {
    const file = join(dir, "b", "layers.json");
    const cache = await LayerCache.open(file);
    const pushed = { ...layer, repository: "registry.example:5000/team/app" };
    cache.set(layerCacheKey(inputs), pushed);
    await cache.save();
    assert.deepEqual((await LayerCache.open(file)).get(layerCacheKey(inputs)), pushed);
  });

  test("missing file is empty", async () => {
    const cache = await LayerCache.open(join(dir, "missing.json"));
    assert.equal(cache.get(layerCacheKey(inputs)), undefined);
  });

  test("malformed file is empty", async () => {
    const file = join(dir, "broken.json");
    await writeFile(file, "{not json");
    const cache = await LayerCache.open(file);
    assert.equal(cache.get(layerCacheKey(inputs)), undefined);
  });

  test("bad record dropped", async () => {
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify({ version: 1, layers: [["k", { digest: "x" }]] }));
    const cache = await LayerCache.open(file);
    assert.equal(cache.get("k"), undefined);
  });
});

describe("layerCacheKey", () => {
  test("stable", () => {
    assert.equal(layerCacheKey(inputs), layerCacheKey({ ...inputs }));
  });

  test("level changes key", () => {
    assert.notEqual(layerCacheKey(inputs), layerCacheKey({ ...inputs, level: 9 }));
  });

  test("mtime changes key", () => {
    assert.notEqual(layerCacheKey(inputs), layerCacheKey({ ...inputs, mtime: 1 }));
  });

  test("runtime named", () => {
    assert.match(runtimeIdentity(), /^(node|deno|bun) \S+ zlib /);
  });
});
