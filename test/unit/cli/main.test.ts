import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { runCliInProcess as run } from "../../integration/cli-runtimes.ts";

describe("cli usage errors", () => {
  test("unknown option exits 2", async () => {
    const result = await run(["apply", "--bogus"]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /--bogus/);
  });

  test("json unknown option", async () => {
    const result = await run(["apply", "--json", "--bogus"]);
    assert.equal(result.code, 2);
    const error = JSON.parse(result.stdout).error;
    assert.equal(error.type, "UsageError");
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /--bogus/);
  });

  test("json unknown command", async () => {
    const result = await run(["deploy", "--json"]);
    assert.equal(result.code, 2);
    assert.match(JSON.parse(result.stdout).error.message, /unknown command "deploy"/);
  });

  test("json extra argument", async () => {
    const result = await run(["plan", "fairing.yaml", "--json"]);
    assert.equal(result.code, 2);
    assert.match(JSON.parse(result.stdout).error.message, /-f FILE/);
  });
});

describe("bin/fairing.js", () => {
  const onNode = !process.versions.bun && !("Deno" in globalThis);
  test(
    "starts on Node without warnings",
    { skip: onNode ? false : "the bin file sets a V8 flag on Node only" },
    () => {
      const bin = fileURLToPath(new URL("../../../bin/fairing.js", import.meta.url));
      const result = spawnSync(process.execPath, [bin, "--version"], { encoding: "utf8" });
      // A V8 flag this Node does not know would print "unrecognized flag" here.
      assert.equal(result.stderr, "");
      assert.equal(result.status, 0);
      assert.match(result.stdout, /^\d+\.\d+\.\d+/);
    },
  );
});
