import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { ContextEntry } from "../../../src/context/entries.ts";
import { LARGE_FILE_BYTES, splitLayers } from "../../../src/context/layers.ts";

const dir = (path: string): ContextEntry => ({ path, type: "directory", mode: 0o755, size: 0 });
const file = (path: string, size = 100): ContextEntry => ({
  path,
  type: "file",
  mode: 0o644,
  size,
  source: `/project/${path}`,
});

const entries: ContextEntry[] = [
  dir("app"),
  dir("app/data"),
  file("app/data/big.csv", LARGE_FILE_BYTES),
  file("app/data/small.csv", 10),
  dir("app/empty"),
  file("app/pkg/requirements.txt"),
  file("app/requirements-dev.txt"),
  file("app/requirements.txt"),
  file("app/setup.py"),
  file("app/train.py"),
  { path: "app/link", type: "symlink", mode: 0o777, size: 0, linkTarget: "train.py" },
];

const paths = (layer: { entries: ContextEntry[] } | undefined) => layer?.entries.map((e) => e.path);

describe("splitLayers", () => {
  const layers = splitLayers(entries, "/app/");

  test("layer order", () => {
    assert.deepEqual(
      layers.map((layer) => layer.name),
      ["dependencies", "data", "code"],
    );
  });

  test("dependency manifests", () => {
    assert.deepEqual(paths(layers[0]), [
      "app",
      "app/requirements-dev.txt",
      "app/requirements.txt",
      "app/setup.py",
    ]);
  });

  test("large files", () => {
    assert.deepEqual(paths(layers[1]), ["app", "app/data", "app/data/big.csv"]);
  });

  test("code and the rest", () => {
    assert.deepEqual(paths(layers[2]), [
      "app",
      "app/data",
      "app/data/small.csv",
      "app/empty",
      "app/pkg/requirements.txt",
      "app/train.py",
      "app/link",
    ]);
  });

  test("every file once", () => {
    const files = layers.flatMap((layer) => layer.entries).filter((e) => e.type !== "directory");
    assert.equal(files.length, entries.filter((e) => e.type !== "directory").length);
    assert.equal(new Set(files).size, files.length);
  });

  test("empty layers left out", () => {
    const only = splitLayers([dir("app"), file("app/main.py")], "/app/");
    assert.deepEqual(
      only.map((layer) => layer.name),
      ["code"],
    );
  });

  test("only directories", () => {
    const only = splitLayers([dir("app")], "/app/");
    assert.deepEqual(only, [{ name: "code", entries: [dir("app")] }]);
  });

  test("same input same layers", () => {
    assert.deepEqual(splitLayers([...entries], "/app/"), layers);
  });

  test("prefix without slashes", () => {
    assert.deepEqual(splitLayers(entries, "app"), layers);
  });

  test("nested prefix", () => {
    const nested = splitLayers([dir("srv"), dir("srv/app"), file("srv/app/setup.py")], "/srv/app");
    assert.equal(nested[0]?.name, "dependencies");
  });
});
