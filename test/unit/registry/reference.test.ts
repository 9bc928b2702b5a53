import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError } from "../../../src/errors.ts";
import {
  formatReference,
  isLoopbackRegistry,
  isValidTag,
  parseReference,
  registryApiBase,
  withTag,
  type ImageReference,
} from "../../../src/registry/reference.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

const valid: [string, ImageReference][] = [
  ["busybox", { registry: "docker.io", repository: "library/busybox", tag: "latest" }],
  ["ubuntu:22.04", { registry: "docker.io", repository: "library/ubuntu", tag: "22.04" }],
  ["team/app", { registry: "docker.io", repository: "team/app", tag: "latest" }],
  ["docker.io/busybox", { registry: "docker.io", repository: "library/busybox", tag: "latest" }],
  ["index.docker.io/team/app:v1", { registry: "docker.io", repository: "team/app", tag: "v1" }],
  ["localhost/app", { registry: "localhost", repository: "app", tag: "latest" }],
  ["localhost:5000/team/app:v2", { registry: "localhost:5000", repository: "team/app", tag: "v2" }],
  [
    "127.0.0.1:5000/team/mnist",
    { registry: "127.0.0.1:5000", repository: "team/mnist", tag: "latest" },
  ],
  ["[::1]:5000/app:1.0", { registry: "[::1]:5000", repository: "app", tag: "1.0" }],
  ["[::1]/app", { registry: "[::1]", repository: "app", tag: "latest" }],
  ["gcr.io/project/a/b/c", { registry: "gcr.io", repository: "project/a/b/c", tag: "latest" }],
  [
    "example.com/a.b_c__d-e--f",
    { registry: "example.com", repository: "a.b_c__d-e--f", tag: "latest" },
  ],
  [`busybox@${DIGEST}`, { registry: "docker.io", repository: "library/busybox", digest: DIGEST }],
  [
    `127.0.0.1:5000/app:v1@${DIGEST}`,
    { registry: "127.0.0.1:5000", repository: "app", tag: "v1", digest: DIGEST },
  ],
  [
    "Registry.Example.COM/app",
    { registry: "Registry.Example.COM", repository: "app", tag: "latest" },
  ],
];

const invalid: [string, RegExp][] = [
  ["", /empty/],
  ["Busybox", /must be lowercase/],
  ["127.0.0.1:5000/Team/app", /must be lowercase/],
  ["app:bad tag", /tag "bad tag"/],
  ["app:-x", /tag "-x"/],
  [`app:${"a".repeat(129)}`, /tag/],
  ["app@sha256:1234", /digest "sha256:1234"/],
  [`app@sha256:${"AB".repeat(32)}`, /digest/],
  ["a//b", /repository component ""/],
  ["app_/x", /repository component "app_"/],
  ["-host.com/app", /registry "-host.com"/],
  ["host.com:port/app", /registry "host.com:port"/],
  ["127.0.0.1:5000/", /repository name is empty/],
  [`x.io/${"a".repeat(260)}`, /longer than 255/],
];

describe("parseReference", () => {
  for (const [input, expected] of valid) {
    test(`parses ${input}`, () => {
      assert.deepEqual(parseReference(input), expected);
    });
  }

  for (const [input, message] of invalid) {
    test(`rejects ${JSON.stringify(input).slice(0, 40)}`, () => {
      assert.throws(() => parseReference(input), InputError);
      assert.throws(() => parseReference(input), message);
    });
  }

  test("error names the input", () => {
    assert.throws(() => parseReference("Team/App"), /"Team\/App"/);
  });
});

describe("formatReference", () => {
  test("keeps docker.io/library explicit", () => {
    assert.equal(formatReference(parseReference("busybox")), "docker.io/library/busybox:latest");
  });

  test("formats tag and digest", () => {
    const text = `127.0.0.1:5000/team/mnist:v1@${DIGEST}`;
    assert.equal(formatReference(parseReference(text)), text);
  });

  test("formats digest only", () => {
    const text = `[::1]:5000/app@${DIGEST}`;
    assert.equal(formatReference(parseReference(text)), text);
  });
});

describe("withTag", () => {
  test("drops the digest", () => {
    const ref = withTag(parseReference(`127.0.0.1:5000/app:v1@${DIGEST}`), "v2");
    assert.deepEqual(ref, { registry: "127.0.0.1:5000", repository: "app", tag: "v2" });
  });

  test("rejects an invalid tag", () => {
    assert.throws(() => withTag(parseReference("app"), "a/b"), InputError);
  });
});

describe("isValidTag", () => {
  test("accepts word characters", () => {
    assert.equal(isValidTag("v1.2_3-rc"), true);
  });

  test("accepts 128 characters", () => {
    assert.equal(isValidTag("a".repeat(128)), true);
  });

  test("rejects 129 characters", () => {
    assert.equal(isValidTag("a".repeat(129)), false);
  });

  test("rejects a leading period", () => {
    assert.equal(isValidTag(".x"), false);
  });
});

describe("isLoopbackRegistry", () => {
  const cases: [string, boolean][] = [
    ["localhost", true],
    ["localhost:5000", true],
    ["127.0.0.1", true],
    ["127.0.0.1:5000", true],
    ["127.255.1.2:80", true],
    ["[::1]", true],
    ["[::1]:5000", true],
    ["::1", true],
    ["128.0.0.1:5000", false],
    ["127.0.0.1.example.com", false],
    ["localhost.example.com:5000", false],
    ["docker.io", false],
    ["[::2]:5000", false],
  ];
  for (const [registry, expected] of cases) {
    test(`${registry} is ${expected ? "loopback" : "remote"}`, () => {
      assert.equal(isLoopbackRegistry(registry), expected);
    });
  }
});

describe("registryApiBase", () => {
  test("maps docker.io to registry-1", () => {
    assert.equal(registryApiBase("docker.io", false), "https://registry-1.docker.io");
  });

  test("uses http for loopback", () => {
    assert.equal(registryApiBase("127.0.0.1:5000", false), "http://127.0.0.1:5000");
  });

  test("uses https for remote", () => {
    assert.equal(registryApiBase("registry.example.com", false), "https://registry.example.com");
  });

  test("uses http when insecure", () => {
    assert.equal(
      registryApiBase("registry.example.com:5000", true),
      "http://registry.example.com:5000",
    );
  });
});
