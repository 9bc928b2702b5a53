import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { BasePreProcessor } from "../../../src/context/preprocessor.ts";
import { makeTempDir, removeDir, which } from "../../services/common.ts";

const exampleRoot = resolve(fileURLToPath(import.meta.url), "../../../../example");

/** The preprocessor settings a fairing.yaml for the bundled example uses. */
function examplePreprocessor(): BasePreProcessor {
  return new BasePreProcessor({
    root: exampleRoot,
    inputFiles: ["main.sh", "data/"],
    executable: "main.sh",
    command: ["sh"],
    outputMap: { "conf/prod.json": "/app/conf.json" },
  });
}

let base: string;

before(async () => {
  base = await makeTempDir("example");
});

after(async () => {
  await removeDir(base);
});

describe("bundled example", () => {
  test("context entries", async () => {
    const entries = await examplePreprocessor().collect();
    assert.deepEqual(
      entries.map((entry) => `${entry.type} ${entry.path} ${entry.mode.toString(8)}`),
      [
        "directory app 755",
        "file app/conf.json 644",
        "directory app/data 755",
        "file app/data/greeting.txt 644",
        "file app/main.sh 755",
      ],
    );
  });

  test("command", () => {
    assert.deepEqual(examplePreprocessor().getCommand(), ["sh", "/app/main.sh"]);
  });

  test("extracted script runs", async (t) => {
    if (!which("tar") || !which("sh")) return t.skip("tar or sh is not installed");
    const archive = join(base, "example.tar.gz");
    const target = join(base, "root");
    await mkdir(target);
    await examplePreprocessor().contextArchive(createWriteStream(archive));
    const extract = spawnSync("tar", ["-xzf", archive, "-C", target], { encoding: "utf8" });
    assert.equal(extract.status, 0, extract.stderr);

    const run = spawnSync("sh", [join(target, "app/main.sh")], {
      cwd: join(target, "app"),
      env: { PATH: process.env.PATH, FAIRING_RUNTIME: "1" },
      encoding: "utf8",
    });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.equal(lines[0], "Hello from fairing!");
    assert.equal(lines[1], `working directory: ${join(target, "app")}`);
    assert.equal(lines[2], "FAIRING_RUNTIME=1");
  });
});
