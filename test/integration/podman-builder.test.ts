/**
 * The podman builder against real podman (storage in a temp folder) and a real registry
 * (Debian's docker-registry) on loopback. Base images are busybox root filesystems imported
 * into podman's storage; `pip` and `python` in them are scripts that record how they were called.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PodmanBuilder } from "../../src/builders/podman/builder.ts";
import { BasePreProcessor } from "../../src/context/preprocessor.ts";
import { BuildError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import { startPodman, type PodmanService } from "../services/podman.ts";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { startRegistry, type TestRegistry } from "../services/registry.ts";

const BASE = "localhost/busybox-python:1";

let podman: PodmanService | undefined;
let registry: TestRegistry | undefined;
let authRegistry: TestRegistry | undefined;
let unavailable = "";
let workDir = "";

before(async () => {
  const started = await startPodman();
  if ("unavailable" in started) {
    unavailable = started.unavailable;
    return;
  }
  podman = started;
  await podman.importBusybox(BASE, { python: true });
  registry = await startRegistry();
  authRegistry = await startRegistry({ auth: "htpasswd" });
  if (!registry || !authRegistry) unavailable = "docker-registry or htpasswd is not installed";
  workDir = await makeTempDir("podman-builder");
});

after(async () => {
  await authRegistry?.stop();
  await registry?.stop();
  await podman?.stop();
  if (workDir) await removeDir(workDir);
});

/** Writes `files` into a new project folder and returns its path. */
async function writeProject(name: string, files: Record<string, string>): Promise<string> {
  const root = join(workDir, name);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

function captureLogger(lines: string[]) {
  return createLogger({ level: "debug", write: (line) => lines.push(line) });
}

describe("PodmanBuilder", { concurrency: false }, () => {
  test("builds and runs a shell project", async (t) => {
    if (!podman) return serviceUnavailable(t, unavailable);
    const root = await writeProject("shell", {
      "main.sh": 'echo "hello from main"\necho "cwd=$(pwd)"\necho "runtime=$FAIRING_RUNTIME"\n',
    });
    const preprocessor = new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] });
    const lines: string[] = [];
    const builder = new PodmanBuilder({
      preprocessor,
      baseImage: BASE,
      imageName: "shell",
      push: false,
      globalArgs: podman.globalArgs,
      network: "none",
      env: { GREETING: "hi there" },
      labels: { team: "ml" },
    });
    const result = await builder.build({ logger: captureLogger(lines) });

    assert.match(result.digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal(result.tag, builder.imageTag);
    const reference = `docker.io/library/shell:${result.tag}`;
    assert.equal(result.destination, reference);
    assert.ok(
      lines.some((line) => line.startsWith("STEP 1/")),
      "build output reaches the logger",
    );

    const output = await podman.run(reference);
    assert.match(output, /^hello from main$/m);
    assert.match(output, /^cwd=\/app$/m);
    assert.match(output, /^runtime=1$/m);

    const env = await podman.run(reference, ["env"]);
    assert.match(env, /^GREETING=hi there$/m);

    const listing = await podman.run(reference, ["ls", "-A", "/", "/app"]);
    assert.doesNotMatch(listing, /Dockerfile/, "the Dockerfile is not copied into the image");
    assert.doesNotMatch(
      listing,
      /\.dockerignore/,
      "the .dockerignore is not copied into the image",
    );

    const labels = JSON.parse(
      await podman.podman(["image", "inspect", "--format", "{{json .Labels}}", reference]),
    ) as Record<string, string>;
    assert.equal(labels.team, "ml");
    assert.match(labels["dev.fairing.context-digest"] ?? "", /^sha256:[a-f0-9]{64}$/);

    const podSpec = builder.generatePodSpec();
    assert.equal(podSpec.containers[0]?.image, result.image);
    assert.deepEqual(podSpec.containers[0]?.command, ["sh", "/app/main.sh"]);
  });

  test("installs requirements before copying code", async (t) => {
    if (!podman) return serviceUnavailable(t, unavailable);
    const root = await writeProject("requirements", {
      "train.py": 'echo "trained"\ncat /tmp/pip-record.log\n',
      "requirements.txt": "numpy==2.0\n",
    });
    const preprocessor = new BasePreProcessor({
      root,
      inputFiles: ["train.py", "requirements.txt"],
    });
    const builder = new PodmanBuilder({
      preprocessor,
      baseImage: BASE,
      imageName: "requirements",
      push: false,
      globalArgs: podman.globalArgs,
      network: "none",
    });
    const result = await builder.build();
    const output = await podman.run(`docker.io/library/requirements:${result.tag}`);

    assert.match(output, /^python: \/app\/train\.py$/m);
    assert.match(output, /^trained$/m);
    assert.match(output, /^args: install --no-cache-dir -r requirements\.txt$/m);
    assert.match(output, /^uid: 0$/m);
    assert.match(output, /^cwd: \/app$/m);
    assert.match(
      output,
      /^files: requirements\.txt $/m,
      "only requirements.txt exists when pip runs",
    );
  });

  test("uses pip --user for a non-root user", async (t) => {
    if (!podman) return serviceUnavailable(t, unavailable);
    const root = await writeProject("user", {
      "train.py": "cat /tmp/pip-record.log\nid -u\n",
      "requirements.txt": "requests\n",
    });
    const preprocessor = new BasePreProcessor({
      root,
      inputFiles: ["train.py", "requirements.txt"],
    });
    const builder = new PodmanBuilder({
      preprocessor,
      baseImage: BASE,
      imageName: "user",
      push: false,
      user: "worker",
      globalArgs: podman.globalArgs,
      network: "none",
    });
    const result = await builder.build();
    const output = await podman.run(`docker.io/library/user:${result.tag}`);

    assert.match(output, /^args: install --no-cache-dir --user -r requirements\.txt$/m);
    assert.match(output, /^uid: 1000$/m);
  });

  test("failing RUN is a BuildError", async (t) => {
    if (!podman) return serviceUnavailable(t, unavailable);
    const root = await writeProject("failing-run", {
      "main.sh": "echo never\n",
      Dockerfile: `FROM ${BASE}\nRUN echo about to fail && exit 3\nCOPY . /\n`,
    });
    const builder = new PodmanBuilder({
      preprocessor: new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] }),
      baseImage: BASE,
      imageName: "failing-run",
      dockerfilePath: "Dockerfile",
      push: false,
      globalArgs: podman.globalArgs,
      network: "none",
    });
    const error = await builder.build().catch((caught: unknown) => caught);

    assert.ok(error instanceof BuildError, `expected a BuildError, got ${String(error)}`);
    assert.match(error.message, /exit status 3/);
    assert.ok(error.outputTail.some((line) => line.includes("about to fail")));
    assert.equal(builder.result, undefined);
  });

  test("Dockerfile syntax error is a BuildError", async (t) => {
    if (!podman) return serviceUnavailable(t, unavailable);
    const root = await writeProject("syntax", {
      "main.sh": "echo never\n",
      Dockerfile: `FROM ${BASE}\nCOPPY . /\n`,
    });
    const builder = new PodmanBuilder({
      preprocessor: new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] }),
      baseImage: BASE,
      dockerfilePath: "Dockerfile",
      push: false,
      globalArgs: podman.globalArgs,
      network: "none",
    });
    const error = await builder.build().catch((caught: unknown) => caught);

    assert.ok(error instanceof BuildError, `expected a BuildError, got ${String(error)}`);
    assert.match(error.message, /unknown instruction: "?COPPY/i);
  });

  test("missing base image is a BuildError", async (t) => {
    if (!podman || !registry) return serviceUnavailable(t, unavailable);
    const root = await writeProject("missing-base", { "main.sh": "echo never\n" });
    const builder = new PodmanBuilder({
      preprocessor: new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] }),
      baseImage: `${registry.host}/missing/base:1`,
      push: false,
      globalArgs: podman.globalArgs,
      network: "none",
    });
    const error = await builder.build().catch((caught: unknown) => caught);

    assert.ok(error instanceof BuildError, `expected a BuildError, got ${String(error)}`);
    assert.match(error.message, /missing\/base/);
    assert.match(error.message, /manifest unknown|not found/i);
  });

  test("pushes to a loopback registry", async (t) => {
    if (!podman || !registry) return serviceUnavailable(t, unavailable);
    const root = await writeProject("push", { "main.sh": "echo pushed\n" });
    const builder = new PodmanBuilder({
      preprocessor: new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] }),
      baseImage: BASE,
      registry: `${registry.host}/team`,
      imageName: "push",
      globalArgs: podman.globalArgs,
      network: "none",
    });
    const result = await builder.build();

    assert.equal(result.destination, `${registry.host}/team/push:${result.tag}`);
    assert.equal(result.image, `${registry.host}/team/push:${result.tag}@${result.digest}`);
    const response = await fetch(`${registry.url}/v2/team/push/manifests/${result.tag}`, {
      method: "HEAD",
      headers: {
        accept:
          "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
      },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("docker-content-digest"), result.digest);
  });

  test("push without credentials is a BuildError", async (t) => {
    if (!podman || !authRegistry) return serviceUnavailable(t, unavailable);
    const root = await writeProject("unauthorized", { "main.sh": "echo secret\n" });
    const previous = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = join(workDir, "no-docker-config");
    try {
      const builder = new PodmanBuilder({
        preprocessor: new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] }),
        baseImage: BASE,
        registry: `${authRegistry.host}/team`,
        imageName: "unauthorized",
        globalArgs: podman.globalArgs,
        network: "none",
      });
      const error = await builder.build().catch((caught: unknown) => caught);

      assert.ok(error instanceof BuildError, `expected a BuildError, got ${String(error)}`);
      assert.match(error.message, /podman push of .*unauthorized/);
      assert.match(error.message, /authentication required|unauthorized/i);
    } finally {
      restoreEnv("DOCKER_CONFIG", previous);
    }
    const response = await fetch(`${authRegistry.url}/v2/team/unauthorized/tags/list`, {
      headers: { authorization: basicAuthorization(authRegistry) },
    });
    assert.equal(response.status, 404, "nothing was pushed");
  });

  test("push with Docker config credentials", async (t) => {
    if (!podman || !authRegistry) return serviceUnavailable(t, unavailable);
    const root = await writeProject("authorized", { "main.sh": "echo authorized\n" });
    const configDir = join(workDir, "docker-config");
    await mkdir(configDir, { recursive: true });
    const auth = Buffer.from(`${authRegistry.username}:${authRegistry.password}`).toString(
      "base64",
    );
    await writeFile(
      join(configDir, "config.json"),
      JSON.stringify({ auths: { [authRegistry.host]: { auth } } }),
    );
    const previous = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = configDir;
    const lines: string[] = [];
    try {
      const builder = new PodmanBuilder({
        preprocessor: new BasePreProcessor({ root, inputFiles: ["main.sh"], command: ["sh"] }),
        baseImage: BASE,
        registry: `${authRegistry.host}/team`,
        imageName: "authorized",
        globalArgs: podman.globalArgs,
        network: "none",
      });
      const result = await builder.build({ logger: captureLogger(lines) });
      assert.match(result.digest, /^sha256:[a-f0-9]{64}$/);
    } finally {
      restoreEnv("DOCKER_CONFIG", previous);
    }
    const logged = lines.join("\n");
    assert.ok(!logged.includes(authRegistry.password ?? "unset"), "the password is not logged");
    assert.ok(!logged.includes(auth), "the encoded credential is not logged");
  });
});

function basicAuthorization(target: TestRegistry): string {
  const pair = `${target.username ?? ""}:${target.password ?? ""}`;
  return `Basic ${Buffer.from(pair).toString("base64")}`;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
