import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError } from "../../../src/errors.ts";
import {
  DOCKER_MANIFEST,
  OCI_INDEX,
  parseManifestJson,
  parsePlatform,
  selectPlatform,
  type Index,
} from "../../../src/registry/manifest.ts";

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

const index: Index = {
  schemaVersion: 2,
  mediaType: OCI_INDEX,
  manifests: [
    {
      mediaType: DOCKER_MANIFEST,
      digest: digest(1),
      size: 1,
      platform: { os: "linux", architecture: "amd64" },
    },
    {
      mediaType: DOCKER_MANIFEST,
      digest: digest(2),
      size: 1,
      platform: { os: "linux", architecture: "arm64" },
    },
    {
      mediaType: DOCKER_MANIFEST,
      digest: digest(3),
      size: 1,
      platform: { os: "linux", architecture: "arm", variant: "v6" },
    },
    {
      mediaType: DOCKER_MANIFEST,
      digest: digest(4),
      size: 1,
      platform: { os: "unknown", architecture: "unknown" },
    },
  ],
};

describe("parsePlatform", () => {
  test("parses os and architecture", () => {
    assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  });

  test("parses a variant", () => {
    assert.deepEqual(parsePlatform("linux/arm64/v8"), {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
    });
  });

  test("rejects a bare architecture", () => {
    assert.throws(() => parsePlatform("amd64"), InputError);
  });

  test("rejects four parts", () => {
    assert.throws(() => parsePlatform("linux/arm/v7/x"), /invalid platform "linux\/arm\/v7\/x"/);
  });
});

describe("selectPlatform", () => {
  test("selects linux/amd64", () => {
    assert.equal(selectPlatform(index, "linux/amd64").digest, digest(1));
  });

  test("treats arm64 as v8", () => {
    assert.equal(selectPlatform(index, "linux/arm64/v8").digest, digest(2));
  });

  test("matches an explicit variant", () => {
    assert.equal(selectPlatform(index, "linux/arm/v6").digest, digest(3));
  });

  test("rejects a wrong variant", () => {
    assert.throws(() => selectPlatform(index, "linux/arm/v7"), /not found/);
  });

  test("lists available platforms", () => {
    assert.throws(
      () => selectPlatform(index, "windows/amd64", "127.0.0.1:5000/base:1"),
      /platform windows\/amd64 not found in 127\.0\.0\.1:5000\/base:1; available platforms: linux\/amd64, linux\/arm64, linux\/arm\/v6\./,
    );
  });
});

describe("parseManifestJson", () => {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

  test("recognises an index", () => {
    const parsed = parseManifestJson(encode(index), "test");
    assert.equal("manifests" in parsed, true);
  });

  test("rejects schema 1", () => {
    assert.throws(
      () => parseManifestJson(encode({ schemaVersion: 1 }), "old/image"),
      /schemaVersion must be 2/,
    );
  });

  test("rejects non-JSON", () => {
    assert.throws(() => parseManifestJson(new TextEncoder().encode("<html>"), "proxy"), /not JSON/);
  });
});
