import { execFileSync } from "node:child_process";
import { chmod, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { InputError } from "../../../src/errors.ts";
import type { Logger } from "../../../src/log.ts";
import { BasePreProcessor, inferExecutable } from "../../../src/context/preprocessor.ts";
import type { ContextEntry } from "../../../src/context/entries.ts";
import { makeTempDir, removeDir } from "../../services/common.ts";

/** Writes `files` (relative path -> content) under `root`, creating parent directories. */
async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** A logger that records warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn: (message) => warnings.push(message),
    error() {},
    progress() {},
  };
}

function paths(entries: ContextEntry[]): string[] {
  return entries.map((entry) => entry.path);
}

let base: string;
let counter = 0;

/** Creates a fresh project root holding `files`. */
async function project(files: Record<string, string>): Promise<string> {
  const root = join(base, `p${counter++}`);
  await mkdir(root, { recursive: true });
  await writeTree(root, files);
  return root;
}

before(async () => {
  base = await makeTempDir("preprocessor");
});

after(async () => {
  await removeDir(base);
});

describe("inferExecutable", () => {
  const cases: [string[], string | undefined][] = [
    [["train.py"], "train.py"],
    [["data"], "data"],
    [["train.py", "requirements.txt"], "train.py"],
    [["train.py", "util.py"], undefined],
    [["pkg/__init__.py", "main.py", "data"], "main.py"],
    [["pkg/__init__.py", "notes.txt"], undefined],
    [["run.sh", "data"], undefined],
    [[], undefined],
  ];
  for (const [inputs, expected] of cases) {
    test(`infers ${JSON.stringify(inputs)}`, () => {
      assert.equal(inferExecutable(inputs), expected);
    });
  }
});

describe("BasePreProcessor options", () => {
  test("command defaults to python", () => {
    const pre = new BasePreProcessor({ root: "/tmp/x", inputFiles: ["train.py"] });
    assert.deepEqual(pre.getCommand(), ["python", "/app/train.py"]);
  });

  test("command with explicit executable", () => {
    const pre = new BasePreProcessor({
      root: "/tmp/x",
      inputFiles: ["main.sh", "data/"],
      executable: "./main.sh",
      command: ["sh", "-e"],
      pathPrefix: "/srv/job",
    });
    assert.deepEqual(pre.getCommand(), ["sh", "-e", "/srv/job/main.sh"]);
  });

  test("command without executable", () => {
    const pre = new BasePreProcessor({ root: "/tmp/x", inputFiles: ["a.py", "b.py"] });
    assert.deepEqual(pre.getCommand(), ["python"]);
  });

  test("inputs normalised and deduplicated", () => {
    const pre = new BasePreProcessor({
      root: "/tmp/x",
      inputFiles: ["./data/", "data", "src//main.py", "requirements.txt"],
    });
    assert.deepEqual(pre.inputFiles, ["data", "src/main.py", "requirements.txt"]);
    assert.equal(pre.executable, "src/main.py");
  });

  test("relative path prefix rejected", () => {
    assert.throws(
      () => new BasePreProcessor({ root: "/tmp/x", inputFiles: ["a"], pathPrefix: "app/" }),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.ok(error.message.includes('"app/"'), error.message);
        assert.ok(error.message.includes("preprocessor.pathPrefix"), error.message);
        assert.deepEqual(error.configPath, ["preprocessor", "pathPrefix"]);
        return true;
      },
    );
  });

  test("empty input rejected", () => {
    assert.throws(
      () => new BasePreProcessor({ root: "/tmp/x", inputFiles: ["a", ""] }),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.ok(error.message.includes("preprocessor.inputFiles[1]"), error.message);
        assert.deepEqual(error.configPath, ["preprocessor", "inputFiles", 1]);
        return true;
      },
    );
  });
});

describe("BasePreProcessor.collect", () => {
  test("walks inputs under the prefix", async () => {
    const root = await project({
      "train.py": "print(1)\n",
      "requirements.txt": "numpy\n",
      "data/a.csv": "1,2\n",
      "data/deep/b.csv": "3,4\n",
      "other.txt": "not listed\n",
    });
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["train.py", "requirements.txt", "data/"],
    });
    const entries = await pre.collect();
    assert.deepEqual(paths(entries), [
      "app",
      "app/data",
      "app/data/a.csv",
      "app/data/deep",
      "app/data/deep/b.csv",
      "app/requirements.txt",
      "app/train.py",
    ]);
    const train = entries.find((entry) => entry.path === "app/train.py");
    assert.equal(train?.type, "file");
    assert.equal(train?.source, join(root, "train.py"));
    assert.equal(train?.size, 9);
    assert.equal(train?.mode, 0o644);
    assert.equal(entries[0]?.source, undefined);
    assert.equal(entries[0]?.mode, 0o755);
    assert.equal(pre.hasRequirements(entries), true);
  });

  test("requirements absent", async () => {
    const root = await project({ "train.py": "x", "data/requirements.txt": "y" });
    const pre = new BasePreProcessor({ root, inputFiles: ["train.py", "data"] });
    assert.equal(pre.hasRequirements(await pre.collect()), false);
  });

  test("modes normalised", async () => {
    const root = await project({ "run.sh": "#!/bin/sh\n", "lib.sh": "x", "dir/f": "y" });
    await chmod(join(root, "run.sh"), 0o700);
    await chmod(join(root, "lib.sh"), 0o600);
    await chmod(join(root, "dir"), 0o700);
    const entries = await new BasePreProcessor({
      root,
      inputFiles: ["run.sh", "lib.sh", "dir"],
    }).collect();
    const mode = (path: string) => entries.find((entry) => entry.path === path)?.mode;
    assert.equal(mode("app/run.sh"), 0o755);
    assert.equal(mode("app/lib.sh"), 0o644);
    assert.equal(mode("app/dir"), 0o755);
  });

  test("sorted by UTF-8 bytes", async () => {
    const root = await project({
      "d/B.txt": "1",
      "d/a.txt": "2",
      "d/a-b.txt": "3",
      "d/a/x.txt": "4",
      "d/é.txt": "5",
      "d/z.txt": "6",
      "d/\u{1F600}.txt": "7",
      "d/\uFB01.txt": "8",
    });
    const entries = await new BasePreProcessor({ root, inputFiles: ["d"] }).collect();
    assert.deepEqual(paths(entries), [
      "app",
      "app/d",
      "app/d/B.txt",
      "app/d/a",
      "app/d/a-b.txt",
      "app/d/a.txt",
      "app/d/a/x.txt",
      "app/d/z.txt",
      "app/d/é.txt",
      "app/d/\uFB01.txt",
      "app/d/\u{1F600}.txt",
    ]);
  });

  test("output map adds entries", async () => {
    const root = await project({ "main.sh": "x", "conf/prod.json": "{}", "conf/extra/a": "a" });
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["main.sh"],
      outputMap: { "conf/prod.json": "/app/conf.json", "./conf/extra/": "/etc/extra/" },
    });
    const entries = await pre.collect();
    assert.deepEqual(paths(entries), [
      "app",
      "app/conf.json",
      "app/main.sh",
      "etc",
      "etc/extra",
      "etc/extra/a",
    ]);
    const map = await pre.contextMap();
    assert.equal(map[join(root, "conf/prod.json")], "/app/conf.json");
    assert.equal(map[join(root, "main.sh")], "/app/main.sh");
    assert.equal(map[join(root, "conf/extra/a")], "/etc/extra/a");
    assert.equal(Object.keys(map).length, 3);
  });

  test("dockerignore with ** and !", async () => {
    const root = await project({
      ".dockerignore": "# comment\n**/__pycache__\n*.log\n!keep.log\n",
      "src/main.py": "x",
      "src/__pycache__/main.pyc": "x",
      "src/deep/__pycache__/a.pyc": "x",
      "debug.log": "x",
      "keep.log": "x",
      "src/nested.log": "x",
    });
    const entries = await new BasePreProcessor({ root, inputFiles: ["."] }).collect();
    assert.deepEqual(paths(entries), [
      "app",
      "app/.dockerignore",
      "app/keep.log",
      "app/src",
      "app/src/deep",
      "app/src/main.py",
      "app/src/nested.log",
    ]);
  });

  test("config ignore after dockerignore", async () => {
    const root = await project({
      ".dockerignore": "data/*.csv\n",
      "data/a.csv": "x",
      "data/b.csv": "x",
      "data/c.txt": "x",
      "data/tmp/t": "x",
    });
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["data"],
      ignore: ["!data/b.csv", "data/tmp"],
    });
    assert.deepEqual(paths(await pre.collect()), [
      "app",
      "app/data",
      "app/data/b.csv",
      "app/data/c.txt",
    ]);
  });

  test("exception below ignored directory", async () => {
    const root = await project({ "data/x/a.txt": "x", "data/x/keep.txt": "x", "data/y.txt": "x" });
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["data"],
      ignore: ["data/x", "!data/x/keep.txt"],
    });
    assert.deepEqual(paths(await pre.collect()), [
      "app",
      "app/data",
      "app/data/x",
      "app/data/x/keep.txt",
      "app/data/y.txt",
    ]);
  });

  test("ignored explicit input warns", async () => {
    const root = await project({ "train.py": "x", "secret.env": "x" });
    const logger = recordingLogger();
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["train.py", "secret.env"],
      ignore: ["*.env"],
      logger,
    });
    assert.deepEqual(paths(await pre.collect()), ["app", "app/train.py"]);
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0]!, /"secret\.env"/);
    assert.match(logger.warnings[0]!, /preprocessor\.inputFiles\[1\]/);
  });

  test("symlink kept as symlink", async () => {
    const root = await project({ "data/real.txt": "x" });
    await symlink("real.txt", join(root, "data/link.txt"));
    const entries = await new BasePreProcessor({ root, inputFiles: ["data"] }).collect();
    const link = entries.find((entry) => entry.path === "app/data/link.txt");
    assert.equal(link?.type, "symlink");
    assert.equal(link?.linkTarget, "real.txt");
    assert.equal(link?.size, 0);
  });

  test("output target directory for file", async () => {
    const root = await project({ "main.sh": "x", "secret.txt": "s", "conf/a.json": "{}" });
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["main.sh"],
      outputMap: { "secret.txt": "/app/sec/", conf: "/etc/conf/" },
    });
    const entries = await pre.collect();
    assert.deepEqual(paths(entries), [
      "app",
      "app/main.sh",
      "app/sec",
      "app/sec/secret.txt",
      "etc",
      "etc/conf",
      "etc/conf/a.json",
    ]);
    const secret = entries.find((entry) => entry.path === "app/sec/secret.txt");
    assert.equal(secret?.source, join(root, "secret.txt"));
    assert.equal(entries.find((entry) => entry.path === "app/sec")?.type, "directory");
  });

  test("output target without slash", async () => {
    const root = await project({ "main.sh": "x", "secret.txt": "s" });
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["main.sh"],
      outputMap: { "secret.txt": "/app/sec" },
    });
    const secret = (await pre.collect()).find((entry) => entry.path === "app/sec");
    assert.equal(secret?.type, "file");
    assert.equal(secret?.source, join(root, "secret.txt"));
  });

  test("same file twice is one entry", async () => {
    const root = await project({ "data/a.txt": "x" });
    const pre = new BasePreProcessor({ root, inputFiles: ["data", "data/a.txt"] });
    assert.deepEqual(paths(await pre.collect()), ["app", "app/data", "app/data/a.txt"]);
  });
});

describe("BasePreProcessor.collect rejections", () => {
  async function rejects(
    pre: BasePreProcessor,
    configPath: (string | number)[],
    ...fragments: string[]
  ): Promise<void> {
    await assert.rejects(pre.collect(), (error: unknown) => {
      assert.ok(error instanceof InputError, `expected InputError, got ${String(error)}`);
      for (const fragment of fragments) {
        assert.ok(error.message.includes(fragment), `"${fragment}" missing in: ${error.message}`);
      }
      assert.deepEqual(error.configPath, configPath, error.message);
      return true;
    });
  }

  test("missing input", async () => {
    const root = await project({ "train.py": "x" });
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["train.py", "missing.py"] }),
      ["preprocessor", "inputFiles", 1],
      '"missing.py"',
      "preprocessor.inputFiles[1]",
      "not found",
    );
  });

  test("two sources one path", async () => {
    const root = await project({ "conf.json": "a", "conf/prod.json": "b" });
    await rejects(
      new BasePreProcessor({
        root,
        inputFiles: ["conf.json"],
        outputMap: { "conf/prod.json": "/app/conf.json" },
      }),
      ["preprocessor", "outputMap", "conf/prod.json"],
      "/app/conf.json",
      "preprocessor.inputFiles[0]",
      'preprocessor.outputMap["conf/prod.json"]',
    );
  });

  test("file where directory needed", async () => {
    const root = await project({ "a.txt": "a", "b.txt": "b" });
    await rejects(
      new BasePreProcessor({
        root,
        inputFiles: ["a.txt"],
        outputMap: { "b.txt": "/app/a.txt/b.txt" },
      }),
      ["preprocessor", "outputMap", "b.txt"],
      "/app/a.txt",
      "directory",
    );
  });

  test("relative output target", async () => {
    const root = await project({ "a.txt": "a" });
    await rejects(
      new BasePreProcessor({ root, inputFiles: [], outputMap: { "a.txt": "app/a.txt" } }),
      ["preprocessor", "outputMap", "a.txt"],
      '"app/a.txt"',
      'preprocessor.outputMap["a.txt"]',
      "absolute",
    );
  });

  test("output target with ..", async () => {
    const root = await project({ "a.txt": "a" });
    await rejects(
      new BasePreProcessor({ root, inputFiles: [], outputMap: { "a.txt": "/app/../etc/passwd" } }),
      ["preprocessor", "outputMap", "a.txt"],
      '"/app/../etc/passwd"',
      'preprocessor.outputMap["a.txt"]',
      "..",
    );
  });

  test("input outside root", async () => {
    const root = await project({ "a.txt": "a" });
    await writeFile(join(root, "..", "outside.txt"), "o");
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["a.txt", "../outside.txt"] }),
      ["preprocessor", "inputFiles", 1],
      '"../outside.txt"',
      "preprocessor.inputFiles[1]",
      "allowOutsideRoot",
    );
  });

  test("input outside root allowed", async () => {
    const root = await project({ "a.txt": "a" });
    await writeFile(join(root, "..", "allowed.txt"), "o");
    const pre = new BasePreProcessor({
      root,
      inputFiles: ["a.txt", "../allowed.txt"],
      allowOutsideRoot: true,
    });
    assert.deepEqual(paths(await pre.collect()), ["app", "app/a.txt", "app/allowed.txt"]);
  });

  test("output source outside root", async () => {
    const root = await project({ "a.txt": "a" });
    await writeFile(join(root, "..", "conf-outside.json"), "o");
    await rejects(
      new BasePreProcessor({
        root,
        inputFiles: ["a.txt"],
        outputMap: { "../conf-outside.json": "/app/c.json" },
      }),
      ["preprocessor", "outputMap", "../conf-outside.json"],
      '"../conf-outside.json"',
      'preprocessor.outputMap["../conf-outside.json"]',
      "outside the project root",
    );
  });

  test("symlinked parent outside root", async () => {
    const root = await project({ "a.txt": "a" });
    const elsewhere = join(base, `elsewhere${counter++}`);
    await writeTree(elsewhere, { "secret.txt": "s" });
    await symlink(elsewhere, join(root, "linked"));
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["linked/secret.txt"] }),
      ["preprocessor", "inputFiles", 0],
      '"linked/secret.txt"',
      "preprocessor.inputFiles[0]",
      "outside the project root",
    );
  });

  test("symlink escaping root", async () => {
    const root = await project({ "data/a.txt": "a" });
    await symlink("../../../etc/passwd", join(root, "data/passwd"));
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["data"] }),
      ["preprocessor", "inputFiles", 0],
      join(root, "data/passwd"),
      '"../../../etc/passwd"',
      "preprocessor.inputFiles[0]",
    );
  });

  test("absolute symlink rejected", async () => {
    const root = await project({ "a.txt": "a" });
    await symlink(join(root, "a.txt"), join(root, "abs-link"));
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["abs-link"] }),
      ["preprocessor", "inputFiles", 0],
      "abs-link",
      "allowOutsideRoot",
    );
  });

  test("escaping symlink allowed", async () => {
    const root = await project({ "a.txt": "a" });
    await symlink("/etc/hostname", join(root, "host"));
    const entries = await new BasePreProcessor({
      root,
      inputFiles: ["host"],
      allowOutsideRoot: true,
    }).collect();
    assert.equal(entries.find((entry) => entry.path === "app/host")?.linkTarget, "/etc/hostname");
  });

  test("fifo rejected", async (t) => {
    const root = await project({ "data/a.txt": "a" });
    try {
      execFileSync("mkfifo", [join(root, "data/pipe")]);
    } catch {
      t.skip("mkfifo is not available");
      return;
    }
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["data"] }),
      ["preprocessor", "inputFiles", 0],
      join(root, "data/pipe"),
      "FIFO",
    );
  });

  test("missing root", async () => {
    await rejects(
      new BasePreProcessor({ root: join(base, "no-such-root"), inputFiles: ["a.py"] }),
      ["context"],
      join(base, "no-such-root"),
      "context",
    );
  });

  test("executable ignored", async () => {
    const root = await project({ "train.py": "x", "data/a.csv": "1" });
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["train.py", "data"], ignore: ["*.py"] }),
      ["preprocessor", "executable"],
      '"train.py"',
      "/app/train.py",
      "ignore rule",
      '"!train.py"',
    );
  });

  test("executable replaced by output map", async () => {
    const root = await project({ "a.py": "a", "b.py": "b", "train.py": "t" });
    await rejects(
      new BasePreProcessor({
        root,
        inputFiles: ["a.py", "b.py"],
        executable: "train.py",
        outputMap: { "a.py": "/app/train.py" },
      }),
      ["preprocessor", "executable"],
      '"train.py"',
      join(root, "a.py"),
      'preprocessor.outputMap["a.py"]',
      "preprocessor.executable",
    );
  });

  test("executable not an input", async () => {
    const root = await project({ "a.py": "a", "b.py": "b", "run.py": "r" });
    await rejects(
      new BasePreProcessor({ root, inputFiles: ["a.py", "b.py"], executable: "run.py" }),
      ["preprocessor", "executable"],
      '"run.py"',
      "preprocessor.inputFiles",
    );
  });

  test("executable inside input directory", async () => {
    const root = await project({ "src/run.py": "r", "src/util.py": "u" });
    const pre = new BasePreProcessor({ root, inputFiles: ["src"], executable: "src/run.py" });
    assert.ok(paths(await pre.collect()).includes("app/src/run.py"));
    assert.deepEqual(pre.getCommand(), ["python", "/app/src/run.py"]);
  });
});

describe("BasePreProcessor abort", () => {
  test("aborted signal stops the walk", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 600; i++) files[`tree/d${i}/f.py`] = `print(${i})\n`;
    const root = await project(files);
    const controller = new AbortController();
    const reason = new Error("interrupted");
    // Aborted while the walk runs: it gives the event loop a turn every 256 directories.
    setImmediate(() => controller.abort(reason));
    const pre = new BasePreProcessor({ root, inputFiles: ["tree"], signal: controller.signal });
    await assert.rejects(pre.collect(), (error: unknown) => error === reason);
  });
});
