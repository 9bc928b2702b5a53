/**
 * `plan()` and `apply()` with `builder.kind: podman` on the example project, against real
 * podman (storage in a temp folder) and a registry on loopback: the steps, the push, and
 * "up to date" on the second run.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { configFromObject } from "../../src/config/load.ts";
import { apply, plan } from "../../src/plan/plan.ts";
import { startPodman, type PodmanService } from "../services/podman.ts";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { startRegistry, type TestRegistry } from "../services/registry.ts";

const EXAMPLE = fileURLToPath(new URL("../../example/", import.meta.url));
const BASE = "localhost/busybox-plan:1";

let podman: PodmanService | undefined;
let registry: TestRegistry | undefined;
let unavailable = "";
let cacheDir = "";
const previousCacheDir = process.env.FAIRING_CACHE_DIR;

before(async () => {
  cacheDir = await makeTempDir("podman-plan-cache");
  process.env.FAIRING_CACHE_DIR = cacheDir;
  const started = await startPodman();
  if ("unavailable" in started) {
    unavailable = started.unavailable;
    return;
  }
  podman = started;
  await podman.importBusybox(BASE);
  registry = await startRegistry();
  if (!registry) unavailable = "docker-registry is not installed";
});

after(async () => {
  await registry?.stop();
  await podman?.stop();
  if (previousCacheDir === undefined) delete process.env.FAIRING_CACHE_DIR;
  else process.env.FAIRING_CACHE_DIR = previousCacheDir;
  if (cacheDir) await removeDir(cacheDir);
});

async function exampleConfig(builder: Record<string, unknown>) {
  return await configFromObject(
    {
      apiVersion: "fairing/v1",
      baseImage: BASE,
      registry: `${registry!.host}/team`,
      imageName: "example",
      env: { STAGE: "test" },
      preprocessor: {
        inputFiles: ["main.sh", "data/"],
        executable: "main.sh",
        command: ["sh"],
        outputMap: { "conf/prod.json": "/etc/example/prod.json" },
      },
      builder: { kind: "podman", globalArgs: podman!.globalArgs, network: "none", ...builder },
    },
    { root: EXAMPLE },
  );
}

describe("podman planner", { concurrency: false }, () => {
  test("plans, pushes, then is up to date", async (t) => {
    if (!podman || !registry) return serviceUnavailable(t, unavailable);
    const config = await exampleConfig({});

    const first = await plan(config);
    assert.deepEqual(
      first.steps.map((step) => step.name),
      ["write-dockerfile", "archive-context", "podman-build", "podman-push"],
    );
    assert.match(first.steps[0]?.detail ?? "", /^FROM localhost\/busybox-plan:1$/m);
    assert.match(first.steps[0]?.detail ?? "", /^CMD \["sh","\/app\/main\.sh"\]$/m);
    assert.equal(first.upToDate, false);
    assert.equal(first.image, `${registry.host}/team/example:${first.tag}`);

    const result = await apply(first);
    assert.equal(result.upToDate, false);
    assert.equal(result.image, `${first.image}@${result.digest}`);
    assert.deepEqual(
      result.steps.map((step) => step.name),
      ["podman-build", "podman-push"],
    );

    const head = await fetch(`${registry.url}/v2/team/example/manifests/${first.tag}`, {
      method: "HEAD",
      headers: {
        accept:
          "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
      },
    });
    assert.equal(head.headers.get("docker-content-digest"), result.digest);

    // podman stores the image under its tag; the pushed manifest digest is only in the registry.
    const output = await podman.run(first.image);
    assert.match(output, /^Hello from fairing!$/m);
    assert.match(output, /^working directory: \/app$/m);
    assert.match(output, /^FAIRING_RUNTIME=1$/m);
    const mapped = await podman.run(first.image, ["cat", "/etc/example/prod.json"]);
    assert.match(mapped, /"environment": "prod"/);
    const env = await podman.run(first.image, ["env"]);
    assert.match(env, /^STAGE=test$/m);

    const second = await plan(config);
    assert.equal(second.tag, first.tag);
    assert.equal(second.upToDate, true);
    assert.match(second.reason, /already exists/);
    const again = await apply(second);
    assert.equal(again.upToDate, true);
    assert.equal(again.digest, result.digest);
    assert.deepEqual(again.steps, []);
  });

  test("push false keeps the image in storage", async (t) => {
    if (!podman || !registry) return serviceUnavailable(t, unavailable);
    const config = await exampleConfig({ push: false, buildArgs: { UNUSED: "1" } });

    const first = await plan(config);
    assert.deepEqual(
      first.steps.map((step) => step.name),
      ["write-dockerfile", "archive-context", "podman-build"],
    );
    const result = await apply(first);
    assert.match(result.digest, /^sha256:[a-f0-9]{64}$/);
    const inspected = await podman.podman(["image", "inspect", "--format", "{{.Id}}", first.image]);
    assert.equal(`sha256:${inspected.trim()}`, result.digest);
    const tags = await fetch(`${registry.url}/v2/team/example/tags/list`);
    const body = (await tags.json()) as { tags?: string[] };
    assert.ok(!(body.tags ?? []).includes(first.tag), "the tag was not pushed");

    const second = await plan(config);
    assert.equal(second.upToDate, true);
  });
});
