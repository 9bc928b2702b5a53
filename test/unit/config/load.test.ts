import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError, formatProblem } from "../../../src/errors.ts";
import { configFromObject, loadConfig } from "../../../src/config/index.ts";
import { DEFAULT_EXECUTOR_IMAGE } from "../../../src/config/defaults.ts";
import { makeTempDir, removeDir } from "../../services/common.ts";

let project: string;

// A project with the files the configs below refer to.
async function writeProject(dir: string): Promise<void> {
  await writeFile(join(dir, "main.sh"), "echo hello\n");
  await writeFile(join(dir, "model.py"), "print('model')\n");
  await writeFile(join(dir, "util.py"), "X = 1\n");
  await mkdir(join(dir, "data"));
  await writeFile(join(dir, "data", "greeting.txt"), "hello\n");
  await mkdir(join(dir, "conf"));
  await writeFile(join(dir, "conf", "prod.json"), "{}\n");
  await writeFile(join(dir, "Dockerfile"), "FROM scratch\n");
  await writeFile(join(dir, "blocker"), "a file where a directory is expected\n");
  await mkdir(join(dir, "base-layout"));
  await writeFile(join(dir, "base-layout", "index.json"), '{"schemaVersion":2,"manifests":[]}\n');
  await writeFile(join(dir, "base-layout", "oci-layout"), '{"imageLayoutVersion":"1.0.0"}\n');
  await mkdir(join(dir, "not-a-layout"));
}

// A config without a `preprocessor` section runs plain `python`, which is a problem of its own.
// Cases about other problems get a section naming the program, after their last line so the
// positions they expect stay the same.
const PROGRAM = "preprocessor: { inputFiles: [main.sh], command: [sh] }";

function withProgram(lines: string[]): string[] {
  const hasSection = lines.some((line) => line.startsWith("preprocessor:"));
  const isConfig = lines.some((line) => /^(apiVersion|baseImage):/.test(line));
  return hasSection || !isConfig ? lines : [...lines, PROGRAM];
}

async function problemsOf(lines: string[], name = "fairing.yaml"): Promise<ConfigError> {
  const file = join(project, name);
  await writeFile(file, withProgram(lines).join("\n") + "\n");
  try {
    await loadConfig(file, { env: {} });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  assert.fail(`expected a ConfigError for:\n${lines.join("\n")}`);
}

const HEAD = ["apiVersion: fairing/v1", "baseImage: scratch", "registry: 127.0.0.1:5000/team"];

interface Expected {
  line: number;
  column: number;
  path: string;
  /** Fragments the message contains: the value and the fix. */
  says: string[];
}

interface Case {
  name: string;
  yaml: string[];
  problems: Expected[];
}

const cases: Case[] = [
  {
    name: "boolean as string",
    yaml: [...HEAD, "builder:", "  kind: append", "  push: yes"],
    problems: [
      { line: 6, column: 9, path: "builder.push", says: ['must be true or false (got "yes")'] },
    ],
  },
  {
    name: "empty value",
    yaml: [...HEAD, "builder:", "  kind: append", "  push:"],
    problems: [
      {
        line: 6,
        column: 3,
        path: "builder.push",
        says: ["must be true or false", "got an empty value"],
      },
    ],
  },
  {
    name: "typo in preprocessor key",
    yaml: [...HEAD, "preprocessor:", "  inpuFiles: [main.sh]", "  command: [sh]"],
    problems: [
      {
        line: 5,
        column: 3,
        path: "preprocessor.inpuFiles",
        says: ["unknown key `inpuFiles`", "did you mean `inputFiles`?"],
      },
    ],
  },
  {
    name: "typo in top-level key",
    yaml: ["apiVersion: fairing/v1", "baseimage: scratch", "registry: 127.0.0.1:5000/team"],
    problems: [
      {
        line: 1,
        column: 1,
        path: "",
        says: [
          "missing required key `baseImage`",
          "e.g. `baseImage: 127.0.0.1:5000/base/python:3.12`",
        ],
      },
      {
        line: 2,
        column: 1,
        path: "baseimage",
        says: ["unknown key `baseimage`", "did you mean `baseImage`?"],
      },
    ],
  },
  {
    name: "unknown key without near match",
    yaml: [...HEAD, "registries:", '  "127.0.0.1:5000": { insecure: true, verify: false }'],
    problems: [
      {
        line: 5,
        column: 39,
        path: 'registries["127.0.0.1:5000"].verify',
        says: ["unknown key `verify`", "allowed keys are insecure"],
      },
    ],
  },
  {
    name: "unknown builder kind",
    yaml: [...HEAD, "builder:", "  kind: kaniko"],
    problems: [
      {
        line: 5,
        column: 9,
        path: "builder.kind",
        says: ['must be one of append, docker, podman, cluster (got "kaniko")'],
      },
    ],
  },
  {
    name: "field of another builder kind",
    yaml: [...HEAD, "builder:", "  kind: append", "  dockerfilePath: Dockerfile"],
    problems: [
      {
        line: 6,
        column: 3,
        path: "builder.dockerfilePath",
        says: [
          "unknown key `dockerfilePath` for builder kind append",
          "applies only to kind docker, podman, cluster",
          "change `kind`",
        ],
      },
    ],
  },
  {
    name: "cluster field on docker",
    yaml: [...HEAD, "builder:", "  kind: docker", "  executorImage: ghcr.io/x/kaniko:v1"],
    problems: [
      {
        line: 6,
        column: 3,
        path: "builder.executorImage",
        says: ["for builder kind docker", "applies only to kind cluster"],
      },
    ],
  },
  {
    name: "typo in builder field",
    yaml: [...HEAD, "builder:", "  kind: docker", "  dockerfilepath: Dockerfile"],
    problems: [
      {
        line: 6,
        column: 3,
        path: "builder.dockerfilepath",
        says: ["did you mean `dockerfilePath`?"],
      },
    ],
  },
  {
    name: "builder without kind",
    yaml: [...HEAD, "builder:", "  push: true"],
    problems: [
      {
        line: 5,
        column: 3,
        path: "builder",
        says: ["missing required key `kind`", "append, docker, podman, cluster"],
      },
    ],
  },
  {
    name: "builder as a string",
    yaml: [...HEAD, "builder: append"],
    problems: [
      {
        line: 4,
        column: 10,
        path: "builder",
        says: ["must be a mapping with a `kind`", 'got "append"', "builder: { kind: append }"],
      },
    ],
  },
  {
    name: "file output without path",
    yaml: [...HEAD, "output:", "  kind: oci-layout"],
    problems: [
      {
        line: 5,
        column: 3,
        path: "output",
        says: ["missing required key `path`", "e.g. `path: .fairing/image`"],
      },
    ],
  },
  {
    name: "unknown output kind",
    yaml: [...HEAD, "output: { kind: tarball, path: x.tar }"],
    problems: [
      {
        line: 4,
        column: 17,
        path: "output.kind",
        says: ["must be one of registry, oci-layout, docker-archive", '(got "tarball")'],
      },
    ],
  },
  {
    name: "wrong apiVersion",
    yaml: ["apiVersion: fairing/v2", "baseImage: scratch", "registry: 127.0.0.1:5000/team"],
    problems: [
      { line: 1, column: 13, path: "apiVersion", says: ['must be fairing/v1 (got "fairing/v2")'] },
    ],
  },
  {
    name: "missing apiVersion",
    yaml: ["baseImage: scratch", "registry: 127.0.0.1:5000/team"],
    problems: [
      {
        line: 1,
        column: 1,
        path: "",
        says: ["missing required key `apiVersion`", "apiVersion: fairing/v1"],
      },
    ],
  },
  {
    name: "empty file",
    yaml: [""],
    problems: [
      { line: 1, column: 1, path: "", says: ["the config is empty", "apiVersion: fairing/v1"] },
    ],
  },
  {
    name: "list document",
    yaml: ["- apiVersion: fairing/v1", "- baseImage: scratch"],
    problems: [
      { line: 1, column: 1, path: "", says: ["must be a mapping of settings, not a list"] },
    ],
  },
  {
    name: "scalar document",
    yaml: ["fairing"],
    problems: [
      { line: 1, column: 1, path: "", says: ['must be a mapping of settings (got "fairing")'] },
    ],
  },
  {
    name: "unclosed flow sequence",
    yaml: [...HEAD, "preprocessor: { inputFiles: [main.sh }"],
    problems: [{ line: 4, column: 38, path: "", says: ["invalid YAML", "end with a ]"] }],
  },
  {
    name: "duplicate key",
    yaml: [...HEAD, "registry: 127.0.0.1:5000/other"],
    problems: [
      {
        line: 4,
        column: 1,
        path: "",
        says: ["Map keys must be unique", "remove or rename one of the duplicate keys"],
      },
    ],
  },
  {
    name: "tab indentation",
    yaml: [...HEAD, "builder:", "\tkind: append"],
    problems: [{ line: 5, column: 1, path: "", says: ["invalid YAML", "indent with spaces"] }],
  },
  {
    name: "two documents",
    yaml: [...HEAD, "---", "tag: v1"],
    problems: [{ line: 4, column: 1, path: "", says: ["keep one YAML document", "`---`"] }],
  },
  {
    name: "missing input file",
    yaml: [...HEAD, "preprocessor:", "  inputFiles: [main.sh, train.py]"],
    problems: [
      {
        line: 5,
        column: 25,
        path: "preprocessor.inputFiles[1]",
        says: ['input file "train.py" not found', "fix the path (relative to `context`)"],
      },
    ],
  },
  {
    name: "input file outside context",
    yaml: [...HEAD, "preprocessor:", "  inputFiles:", "    - ../outside.txt"],
    problems: [
      {
        line: 6,
        column: 7,
        path: "preprocessor.inputFiles[0]",
        says: ['"../outside.txt" is outside the context', "relative to `context`"],
      },
    ],
  },
  {
    name: "missing output-map source",
    yaml: [
      ...HEAD,
      "preprocessor:",
      "  outputMap:",
      "    conf/dev.json: /app/conf.json",
      "  command: [sh]",
    ],
    problems: [
      {
        line: 6,
        column: 5,
        path: 'preprocessor.outputMap["conf/dev.json"]',
        says: ['output-map source "conf/dev.json" not found', "remove the entry"],
      },
    ],
  },
  {
    name: "relative output-map target",
    yaml: [
      ...HEAD,
      "preprocessor:",
      "  outputMap:",
      "    conf/prod.json: app/conf.json",
      "  command: [sh]",
    ],
    problems: [
      {
        line: 6,
        column: 21,
        path: 'preprocessor.outputMap["conf/prod.json"]',
        says: ['target "app/conf.json"', "absolute path in the image", '"/app/conf.json"'],
      },
    ],
  },
  {
    name: "missing Dockerfile",
    yaml: [...HEAD, "builder:", "  kind: docker", "  dockerfilePath: docker/Dockerfile"],
    problems: [
      {
        line: 6,
        column: 19,
        path: "builder.dockerfilePath",
        says: ['Dockerfile "docker/Dockerfile" not found', "remove dockerfilePath to generate one"],
      },
    ],
  },
  {
    name: "missing context directory",
    yaml: [...HEAD, "context: missing-dir"],
    problems: [
      {
        line: 4,
        column: 10,
        path: "context",
        says: ['missing-dir" not found', "set `context` to the project directory"],
      },
    ],
  },
  {
    name: "context is a file",
    yaml: [...HEAD, "context: main.sh"],
    problems: [{ line: 4, column: 10, path: "context", says: ['main.sh" is not a directory'] }],
  },
  {
    name: "uppercase base image",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: 127.0.0.1:5000/Base/Python:3.12",
      "registry: 127.0.0.1:5000/team",
    ],
    problems: [
      {
        line: 2,
        column: 12,
        path: "baseImage",
        says: ['"127.0.0.1:5000/Base/Python:3.12"', "must be lowercase", "scratch"],
      },
    ],
  },
  {
    name: "oci base layout missing",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: oci:no-such-layout:v1",
      "registry: 127.0.0.1:5000/team",
    ],
    problems: [
      {
        line: 2,
        column: 12,
        path: "baseImage",
        says: ['no-such-layout" not found', "oci:PATH[:TAG]"],
      },
    ],
  },
  {
    name: "oci base without index.json",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: oci:not-a-layout",
      "registry: 127.0.0.1:5000/team",
    ],
    problems: [
      {
        line: 2,
        column: 12,
        path: "baseImage",
        says: ['not-a-layout" is not an OCI image layout', "no index.json"],
      },
    ],
  },
  {
    name: "registry with scheme",
    yaml: ["apiVersion: fairing/v1", "baseImage: scratch", "registry: http://127.0.0.1:5000/team"],
    problems: [
      {
        line: 3,
        column: 11,
        path: "registry",
        says: ['"http://127.0.0.1:5000/team" must not include a scheme', "insecure: true"],
      },
    ],
  },
  {
    name: "registry with tag",
    yaml: ["apiVersion: fairing/v1", "baseImage: scratch", "registry: 127.0.0.1:5000/team:v1"],
    problems: [
      {
        line: 3,
        column: 11,
        path: "registry",
        says: ["without tag or digest", '"127.0.0.1:5000/team"'],
      },
    ],
  },
  {
    name: "uppercase image name",
    yaml: [...HEAD, "imageName: MNIST"],
    problems: [
      {
        line: 4,
        column: 12,
        path: "imageName",
        says: ['"MNIST" must be lowercase', 'use "mnist"'],
      },
    ],
  },
  {
    name: "invalid tag",
    yaml: [...HEAD, "tag: -release"],
    problems: [
      { line: 4, column: 6, path: "tag", says: ['"-release" is not a valid tag', '"auto"'] },
    ],
  },
  {
    name: "executable not an input file",
    yaml: [...HEAD, "preprocessor:", "  inputFiles: [main.sh]", "  executable: train.py"],
    problems: [
      {
        line: 6,
        column: 15,
        path: "preprocessor.executable",
        says: [
          'executable "train.py" is not one of preprocessor.inputFiles',
          "input files: main.sh",
          "add it to inputFiles",
        ],
      },
    ],
  },
  {
    name: "output path under a file",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: scratch",
      "output:",
      "  kind: oci-layout",
      "  path: blocker/image",
    ],
    problems: [
      {
        line: 5,
        column: 9,
        path: "output.path",
        says: ['blocker" is a file', "choose another path"],
      },
    ],
  },
  {
    name: "docker-archive path is a directory",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: scratch",
      "output: { kind: docker-archive, path: data }",
    ],
    problems: [
      { line: 3, column: 39, path: "output.path", says: ["is a directory", "name a file"] },
    ],
  },
  {
    name: "push false to registry",
    yaml: [...HEAD, "builder:", "  kind: append", "  push: false"],
    problems: [
      {
        line: 6,
        column: 9,
        path: "builder.push",
        says: [
          "push is false but output.kind is registry",
          "set output.kind to oci-layout or docker-archive, or push: true",
        ],
      },
    ],
  },
  {
    name: "file output with docker builder",
    yaml: [...HEAD, "builder: { kind: docker }", "output: { kind: oci-layout, path: out }"],
    problems: [
      {
        line: 5,
        column: 17,
        path: "output.kind",
        says: [
          "output kind oci-layout works only with the append builder",
          "set builder.kind: append",
        ],
      },
    ],
  },
  {
    name: "registry missing",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: scratch",
      "builder:",
      "  kind: docker",
      "  push: true",
    ],
    problems: [
      {
        line: 5,
        column: 9,
        path: "registry",
        says: ["set `registry` to a repository prefix", "builder.push: false"],
      },
    ],
  },
  {
    name: "cluster without context source",
    yaml: [...HEAD, "builder:", "  kind: cluster"],
    problems: [
      {
        line: 5,
        column: 9,
        path: "contextSource",
        says: ["missing: the cluster builder uploads the context", "kind: s3"],
      },
    ],
  },
  {
    name: "context source on append",
    yaml: [...HEAD, "contextSource:", "  kind: s3", "  bucket: builds"],
    problems: [
      {
        line: 5,
        column: 3,
        path: "contextSource",
        says: ["only the cluster builder uses a context source", "set builder.kind: cluster"],
      },
    ],
  },
  {
    name: "azure source without account",
    yaml: [
      ...HEAD,
      "builder: { kind: cluster }",
      "contextSource:",
      "  kind: azure",
      "  container: builds",
    ],
    problems: [
      {
        line: 6,
        column: 3,
        path: "contextSource",
        says: ["missing required key `account`", "account: acmebuilds"],
      },
    ],
  },
  {
    name: "s3 source without bucket",
    yaml: [...HEAD, "builder: { kind: cluster }", "contextSource: { kind: s3 }"],
    problems: [
      {
        line: 5,
        column: 16,
        path: "contextSource",
        says: ["needs `bucket`", "add `bucket: BUCKET`"],
      },
    ],
  },
  {
    name: "registries key with scheme",
    yaml: [...HEAD, "registries:", '  "http://127.0.0.1:5000": { insecure: true }'],
    problems: [
      {
        line: 5,
        column: 3,
        path: 'registries["http://127.0.0.1:5000"]',
        says: ["without a scheme", 'use "127.0.0.1:5000"'],
      },
    ],
  },
  {
    name: "registries key with path",
    yaml: [...HEAD, "registries:", '  "127.0.0.1:5000/team": { insecure: true }'],
    problems: [
      {
        line: 5,
        column: 3,
        path: 'registries["127.0.0.1:5000/team"]',
        says: ["without a path", 'use "127.0.0.1:5000"'],
      },
    ],
  },
  {
    name: "invalid env name",
    yaml: [...HEAD, "env:", '  MY-VAR: "1"', '  GOOD_NAME: "2"'],
    problems: [
      {
        line: 5,
        column: 3,
        path: 'env["MY-VAR"]',
        says: ['"MY-VAR" is not a valid environment variable name', 'letters, digits and "_"'],
      },
    ],
  },
  {
    name: "env value not a string",
    yaml: [...HEAD, "env:", "  WORKERS: 4"],
    problems: [{ line: 5, column: 12, path: "env.WORKERS", says: ["must be a string (got 4)"] }],
  },
  {
    name: "relative path prefix",
    yaml: [...HEAD, "preprocessor:", "  pathPrefix: app/", "  command: [sh]"],
    problems: [
      {
        line: 5,
        column: 15,
        path: "preprocessor.pathPrefix",
        says: ['"app/" must be an absolute directory', '"/app/"'],
      },
    ],
  },
  {
    name: "compression level too high",
    yaml: [...HEAD, "builder: { kind: append, compressionLevel: 11 }"],
    problems: [
      {
        line: 4,
        column: 44,
        path: "builder.compressionLevel",
        says: ["must be at most 9 (got 11)"],
      },
    ],
  },
  {
    name: "timeout as text",
    yaml: [
      ...HEAD,
      "builder: { kind: cluster, timeoutSeconds: 30m }",
      "contextSource: { kind: s3, bucket: b }",
    ],
    problems: [
      {
        line: 4,
        column: 43,
        path: "builder.timeoutSeconds",
        says: ['must be a whole number (got "30m")', "e.g. `1800`"],
      },
    ],
  },
  {
    name: "platform without os",
    yaml: [...HEAD, "platform: amd64"],
    problems: [
      {
        line: 4,
        column: 11,
        path: "platform",
        says: ['invalid value "amd64"', "e.g. `linux/amd64`"],
      },
    ],
  },
  {
    name: "empty command",
    yaml: [...HEAD, "preprocessor:", "  command: []"],
    problems: [
      {
        line: 5,
        column: 12,
        path: "preprocessor.command",
        says: ["must list at least 1 item", "python"],
      },
    ],
  },
  {
    name: "input files as a string",
    yaml: [...HEAD, "preprocessor:", "  inputFiles: main.sh"],
    problems: [
      {
        line: 5,
        column: 15,
        path: "preprocessor.inputFiles",
        says: ['must be a list (got "main.sh")'],
      },
    ],
  },
  {
    name: "executable not inferable",
    yaml: [...HEAD, "preprocessor:", "  inputFiles: [model.py, util.py, main.sh]"],
    problems: [
      {
        line: 5,
        column: 15,
        path: "preprocessor.inputFiles",
        says: [
          "none can be inferred from 2 candidates (model.py, util.py)",
          "plain `python`",
          "set preprocessor.executable",
        ],
      },
    ],
  },
  {
    name: "no inputs and no executable",
    yaml: [...HEAD, "preprocessor:", "  pathPrefix: /srv/"],
    problems: [
      {
        line: 5,
        column: 3,
        path: "preprocessor",
        says: ["no input files and no executable", "set preprocessor.executable"],
      },
    ],
  },
  {
    name: "tab before sequence item",
    yaml: [...HEAD, "preprocessor:", "  inputFiles:", "\t- main.sh"],
    problems: [{ line: 6, column: 1, path: "", says: ["invalid YAML", "indent with spaces"] }],
  },
  {
    name: "column counts code points",
    yaml: [...HEAD, 'labels: { "日本😀": 1 }'],
    problems: [{ line: 4, column: 18, path: 'labels["日本😀"]', says: ["must be a string"] }],
  },
  {
    name: "registry with credentials",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: scratch",
      "registry: user:s3cr3t-pass@127.0.0.1:5000/team",
    ],
    problems: [
      {
        line: 3,
        column: 11,
        path: "registry",
        says: [
          '"user:***@127.0.0.1:5000/team" contains credentials',
          'write "127.0.0.1:5000/team"',
          "Docker config with `docker login 127.0.0.1:5000`",
        ],
      },
    ],
  },
  {
    name: "base image with credentials",
    yaml: [
      "apiVersion: fairing/v1",
      "baseImage: bob@127.0.0.1:5000/base/python:3.12",
      "registry: 127.0.0.1:5000/team",
    ],
    problems: [
      {
        line: 2,
        column: 12,
        path: "baseImage",
        says: ['"bob@127.0.0.1:5000/base/python:3.12" contains credentials', "docker login"],
      },
    ],
  },
];

describe("loadConfig problems", () => {
  before(async () => {
    project = await makeTempDir("config");
    await writeProject(project);
  });
  after(async () => {
    await removeDir(project);
  });

  for (const { name, yaml, problems } of cases) {
    test(name, async () => {
      const error = await problemsOf(yaml);
      const lines = error.problems.map(formatProblem);
      assert.equal(error.problems.length, problems.length, `got:\n${lines.join("\n")}`);
      for (const [index, expected] of problems.entries()) {
        const problem = error.problems[index];
        assert.ok(problem, `missing problem ${index}`);
        const where = `${join(project, "fairing.yaml")}:${expected.line}:${expected.column}`;
        assert.equal(`${problem.file}:${problem.line}:${problem.column}`, where, lines[index]);
        assert.equal(problem.path, expected.path, lines[index]);
        for (const fragment of expected.says) {
          assert.ok(problem.message.includes(fragment), `"${fragment}" not in: ${lines[index]}`);
        }
      }
    });
  }

  test("problems reported together", async () => {
    const error = await problemsOf([
      "apiVersion: fairing/v1",
      "baseImage: scratch",
      "imageName: Mnist",
      "builder: { kind: append, push: maybe }",
      "preprocessor: { inputFiles: [nope.py] }",
    ]);
    const paths = error.problems.map((problem) => problem.path);
    assert.deepEqual(paths.sort(), ["builder.push", "imageName", "preprocessor.inputFiles[0]"]);
    assert.match(error.message, /invalid config \(3 problems\)/);
    assert.equal(error.exitCode, 2);
  });

  test("tab reported once", async () => {
    const error = await problemsOf([...HEAD, "builder:", "\tkind: append"]);
    assert.equal(error.problems.length, 1, error.message);
    const message = error.problems[0]?.message ?? "";
    assert.equal(message.split("indent with spaces").length, 2, message);
    assert.equal(message.split(/tabs?\b/i).length, 2, message);
  });

  test("missing preprocessor section", async () => {
    const file = join(project, "bare.yaml");
    await writeFile(file, [...HEAD, "output: { kind: oci-layout, path: out }"].join("\n"));
    const error = await loadConfig(file, { env: {} }).then(
      () => assert.fail("expected a ConfigError"),
      (rejection: unknown) => rejection,
    );
    assert.ok(error instanceof ConfigError);
    assert.equal(error.problems.length, 1, error.message);
    assert.equal(error.problems[0]?.path, "preprocessor");
    assert.equal(error.problems[0]?.line, 1);
    assert.match(error.problems[0]?.message ?? "", /no input files and no executable/);
  });

  test("message format", async () => {
    const error = await problemsOf([...HEAD, "builder:", "  kind: append", "  push: yes"]);
    const file = join(project, "fairing.yaml");
    assert.equal(
      formatProblem(error.problems[0]!),
      `${file}:6:9: builder.push: must be true or false (got "yes")`,
    );
  });

  test("missing file", async () => {
    const missing = join(project, "nope.yaml");
    await assert.rejects(loadConfig(missing), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems[0]?.file, missing);
      assert.match(error.problems[0]?.message ?? "", /file not found/);
      return true;
    });
  });

  test("directory instead of file", async () => {
    await assert.rejects(loadConfig(project), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.problems[0]?.message ?? "", /is a directory/);
      return true;
    });
  });

  test("unwritable output directory", async (t) => {
    const locked = join(project, "locked");
    await mkdir(locked, { recursive: true });
    // Root writes to directories whatever their mode, so as root the directory becomes a
    // read-only tmpfs mount instead, which access(W_OK) rejects for every user.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", locked]);
      if (mounted.status !== 0) {
        t.skip(`running as root and cannot mount a read-only tmpfs: ${mounted.stderr}`);
        return;
      }
    } else {
      await chmod(locked, 0o500);
    }
    try {
      const error = await problemsOf([
        "apiVersion: fairing/v1",
        "baseImage: scratch",
        "output: { kind: oci-layout, path: locked/image }",
      ]);
      assert.equal(error.problems[0]?.path, "output.path");
      assert.match(error.problems[0]?.message ?? "", /is not writable/);
    } finally {
      if (asRoot) spawnSync("umount", [locked]);
      else await chmod(locked, 0o700);
    }
  });
});

describe("loadConfig secrets", () => {
  before(async () => {
    project = await makeTempDir("config-secrets");
    await writeProject(project);
  });
  after(async () => {
    await removeDir(project);
  });

  const secretCases: {
    name: string;
    yaml: string[];
    secret: string;
    line: number;
    column: number;
    path: string;
  }[] = [
    {
      name: "password under registries",
      yaml: [
        ...HEAD,
        "registries:",
        '  "127.0.0.1:5000": { insecure: true, password: hunter2-secret }',
      ],
      secret: "hunter2-secret",
      line: 5,
      column: 49,
      path: 'registries["127.0.0.1:5000"].password',
    },
    {
      name: "token in env",
      yaml: [...HEAD, "env:", "  GITHUB_TOKEN: ghp_abcdefghijklmnop"],
      secret: "ghp_abcdefghijklmnop",
      line: 5,
      column: 17,
      path: "env.GITHUB_TOKEN",
    },
    {
      name: "access key in build args",
      yaml: [
        ...HEAD,
        "builder:",
        "  kind: docker",
        "  buildArgs: { AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMIK7MDENG }",
      ],
      secret: "wJalrXUtnFEMIK7MDENG",
      line: 6,
      column: 39,
      path: "builder.buildArgs.AWS_SECRET_ACCESS_KEY",
    },
    {
      name: "password in registry URL",
      yaml: [
        "apiVersion: fairing/v1",
        "baseImage: scratch",
        "registry: https://bob:s3cr3t-pass@127.0.0.1:5000/team",
      ],
      secret: "s3cr3t-pass",
      line: 3,
      column: 11,
      path: "registry",
    },
  ];

  test("registry credentials redacted", async () => {
    const error = await problemsOf([
      "apiVersion: fairing/v1",
      "baseImage: scratch",
      "registry: alice:pw-9f8e7d6c@127.0.0.1:5000/team",
    ]);
    assert.equal(error.problems.length, 1, error.message);
    assert.match(error.message, /alice:\*\*\*@/);
    assert.ok(!error.message.includes("pw-9f8e7d6c"), error.message);
    assert.ok(!JSON.stringify(error.problems).includes("pw-9f8e7d6c"));
  });

  for (const { name, yaml, secret, line, column, path } of secretCases) {
    test(name, async () => {
      const error = await problemsOf(yaml);
      const problem = error.problems.find((candidate) => candidate.path === path);
      assert.ok(problem, error.message);
      assert.equal(problem.line, line);
      assert.equal(problem.column, column);
      assert.match(problem.message, /Docker config/);
      assert.match(problem.message, /environment variable/);
      assert.ok(!error.message.includes(secret), `secret printed in: ${error.message}`);
      assert.ok(!JSON.stringify(error.problems).includes(secret));
    });
  }

  test("registry secret name allowed", async () => {
    const file = join(project, "cluster.yaml");
    await writeFile(
      file,
      [
        ...HEAD,
        "builder: { kind: cluster, registrySecret: push-creds, createRegistrySecret: false }",
        "contextSource: { kind: s3, bucket: builds }",
        'env: { DISABLE_AUTH: "1" }',
        PROGRAM,
      ].join("\n"),
    );
    const config = await loadConfig(file, { env: {} });
    assert.equal(config.builder.kind, "cluster");
  });
});

describe("loadConfig valid", () => {
  before(async () => {
    project = await makeTempDir("config-valid");
    await writeProject(project);
  });
  after(async () => {
    await removeDir(project);
  });

  test("defaults filled", async () => {
    const file = join(project, "fairing.yaml");
    await writeFile(file, [...HEAD, "preprocessor:", "  inputFiles: [main.sh]"].join("\n"));
    const config = await loadConfig(file, { env: {} });
    assert.equal(config.apiVersion, "fairing/v1");
    assert.equal(config.file, file);
    assert.equal(config.root, project);
    assert.equal(config.baseImage, "scratch");
    assert.equal(config.registry, "127.0.0.1:5000/team");
    assert.equal(config.imageName, "fairing-job");
    assert.equal(config.tag, "auto");
    assert.equal(config.platform, "linux/amd64");
    assert.deepEqual(config.env, {});
    assert.deepEqual(config.labels, {});
    assert.equal(config.user, undefined);
    assert.deepEqual(config.preprocessor, {
      inputFiles: ["main.sh"],
      command: ["python"],
      pathPrefix: "/app/",
      outputMap: {},
      ignore: [],
      allowOutsideRoot: false,
    });
    assert.deepEqual(config.builder, { kind: "append", push: true, compressionLevel: 6 });
    assert.deepEqual(config.output, { kind: "registry" });
    assert.deepEqual(config.registries, {});
    assert.equal(config.contextSource, undefined);
  });

  test("cluster defaults filled", async () => {
    const file = join(project, "cluster.yaml");
    await writeFile(
      file,
      [
        ...HEAD,
        "builder: { kind: cluster }",
        "contextSource: { kind: s3, bucket: builds }",
        PROGRAM,
      ].join("\n"),
    );
    const config = await loadConfig(file, { env: { AWS_REGION: "eu-central-1" } });
    assert.deepEqual(config.builder, {
      kind: "cluster",
      push: true,
      buildArgs: {},
      executorImage: DEFAULT_EXECUTOR_IMAGE,
      cache: false,
      timeoutSeconds: 1800,
      startTimeoutSeconds: 300,
      cleanup: { job: true, secrets: true, context: true },
      createRegistrySecret: false,
      podSpec: {},
    });
    assert.deepEqual(config.contextSource, {
      kind: "s3",
      bucket: "builds",
      region: "eu-central-1",
      prefix: "fairing/",
    });
  });

  test("s3 region fallback", async () => {
    const file = join(project, "cluster.yaml");
    await writeFile(
      file,
      [
        ...HEAD,
        "builder: { kind: cluster }",
        'contextSource: { kind: s3, account: "123456789012" }',
        PROGRAM,
      ].join("\n"),
    );
    const config = await loadConfig(file, { env: {} });
    assert.equal(config.contextSource?.kind === "s3" && config.contextSource.region, "us-east-1");
  });

  test("daemon builder defaults", async () => {
    const file = join(project, "podman.yaml");
    await writeFile(
      file,
      [...HEAD, "builder: { kind: podman, dockerfilePath: Dockerfile }"].join("\n"),
    );
    const config = await loadConfig(file, { env: {} });
    assert.deepEqual(config.builder, {
      kind: "podman",
      push: true,
      buildArgs: {},
      installRequirementsBeforeCopy: true,
      globalArgs: [],
      dockerfilePath: "Dockerfile",
    });
  });

  test("paths resolved", async () => {
    const file = join(project, "paths.yaml");
    await writeFile(
      file,
      [
        "apiVersion: fairing/v1",
        "baseImage: oci:base-layout:v2",
        "registry: 127.0.0.1:5000/team/",
        "preprocessor: { inputFiles: [main.sh, data/], executable: main.sh, pathPrefix: /srv }",
        "output: { kind: docker-archive, path: out/image.tar }",
      ].join("\n"),
    );
    const config = await loadConfig(file, { env: {} });
    assert.equal(config.baseImage, `oci:${join(project, "base-layout")}:v2`);
    assert.equal(config.registry, "127.0.0.1:5000/team");
    assert.equal(config.preprocessor.pathPrefix, "/srv/");
    assert.deepEqual(config.output, {
      kind: "docker-archive",
      path: join(project, "out", "image.tar"),
    });
  });

  test("explicit command without executable", async () => {
    const file = join(project, "gunicorn.yaml");
    await writeFile(
      file,
      [
        ...HEAD,
        "preprocessor:",
        "  inputFiles: [model.py, util.py]",
        "  command: [gunicorn, app:app]",
      ].join("\n"),
    );
    const config = await loadConfig(file, { env: {} });
    assert.deepEqual(config.preprocessor.command, ["gunicorn", "app:app"]);
    assert.equal(config.preprocessor.executable, undefined);
  });

  test("merge keys and extension keys", async () => {
    const file = join(project, "merge.yaml");
    await writeFile(
      file,
      [
        "apiVersion: fairing/v1",
        "baseImage: scratch",
        "x-builder: &builder",
        "  kind: append",
        "  push: false",
        "builder:",
        "  <<: *builder",
        "  compressionLevel: 9",
        "output: { kind: oci-layout, path: out }",
        "preprocessor: { inputFiles: [main.sh], command: [sh] }",
      ].join("\n"),
    );
    const config = await loadConfig(file, { env: {} });
    assert.deepEqual(config.builder, { kind: "append", push: false, compressionLevel: 9 });
    assert.equal("x-builder" in config, false);
    assert.deepEqual(config.locate(["builder", "compressionLevel"]), { file, line: 8, column: 21 });
  });

  test("locate positions", async () => {
    const file = join(project, "fairing.yaml");
    await writeFile(
      file,
      [...HEAD, "preprocessor:", "  inputFiles: [main.sh, data/]", "  executable: main.sh"].join(
        "\n",
      ),
    );
    const config = await loadConfig(file, { env: {} });
    assert.deepEqual(config.locate(["baseImage"]), { file, line: 2, column: 12 });
    assert.deepEqual(config.locate(["preprocessor", "inputFiles", 1]), {
      file,
      line: 5,
      column: 25,
    });
    assert.deepEqual(config.locate(["preprocessor", "executable"]), { file, line: 6, column: 15 });
    assert.deepEqual(config.locate(["builder", "push"]), { file, line: 1, column: 1 });
  });
});

describe("configFromObject", () => {
  before(async () => {
    project = await makeTempDir("config-object");
    await writeProject(project);
  });
  after(async () => {
    await removeDir(project);
  });

  test("valid object", async () => {
    const config = await configFromObject(
      {
        apiVersion: "fairing/v1",
        baseImage: "scratch",
        preprocessor: { inputFiles: ["main.sh"], command: ["sh"] },
        output: { kind: "oci-layout", path: "out" },
      },
      { root: project },
    );
    assert.equal(config.file, "<inline>");
    assert.equal(config.root, project);
    assert.deepEqual(config.output, { kind: "oci-layout", path: join(project, "out") });
    assert.deepEqual(config.locate(["baseImage"]), { file: "<inline>", line: 1, column: 1 });
  });

  test("invalid object", async () => {
    await assert.rejects(
      configFromObject(
        {
          apiVersion: "fairing/v1",
          baseImage: "scratch",
          builder: { kind: "append", push: "no" },
          preprocessor: { inputFiles: ["main.sh"] },
        },
        { root: project, file: "sdk" },
      ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 1);
        assert.equal(
          formatProblem(error.problems[0]!),
          'sdk:1:1: builder.push: must be true or false (got "no")',
        );
        return true;
      },
    );
  });
});
