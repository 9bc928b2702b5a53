/**
 * `plan()` and `apply()` with `builder.kind: docker` on the example project, against a real
 * dockerd and registry on loopback: the steps, the push, and "up to date" on the second run.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { configFromObject } from "../../src/config/load.ts";
import { apply, plan } from "../../src/plan/plan.ts";
import { importBusyboxImage, startDockerd, type DockerdService } from "../services/dockerd.ts";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { startRegistry, type TestRegistry } from "../services/registry.ts";

const EXAMPLE = fileURLToPath(new URL("../../example/", import.meta.url));
const BASE = "local/busybox-plan:1";

let dockerd: DockerdService | undefined;
let registry: TestRegistry | undefined;
let unavailable = "";
let cacheDir = "";
const previousCacheDir = process.env.FAIRING_CACHE_DIR;

before(async () => {
  cacheDir = await makeTempDir("docker-plan-cache");
  process.env.FAIRING_CACHE_DIR = cacheDir;
  const started = await startDockerd();
  if ("unavailable" in started) {
    unavailable = started.unavailable;
    return;
  }
  dockerd = started;
  await importBusyboxImage(dockerd, BASE);
  registry = await startRegistry();
  if (!registry) unavailable = "docker-registry is not installed";
});

after(async () => {
  await registry?.stop();
  await dockerd?.stop();
  if (previousCacheDir === undefined) delete process.env.FAIRING_CACHE_DIR;
  else process.env.FAIRING_CACHE_DIR = previousCacheDir;
  if (cacheDir) await removeDir(cacheDir);
});

async function exampleConfig(builder: Record<string, unknown>, top: Record<string, unknown> = {}) {
  return await configFromObject(
    {
      apiVersion: "fairing/v1",
      baseImage: BASE,
      registry: `${registry!.host}/team`,
      imageName: "example",
      env: { STAGE: "test" },
      ...top,
      preprocessor: {
        inputFiles: ["main.sh", "data/"],
        executable: "main.sh",
        command: ["sh"],
        outputMap: { "conf/prod.json": "/etc/example/prod.json" },
      },
      builder: { kind: "docker", dockerHost: dockerd!.host, ...builder },
    },
    { root: EXAMPLE },
  );
}

describe("docker planner", { concurrency: false }, () => {
  test("plans, pushes, then is up to date", async (t) => {
    if (!dockerd || !registry) return serviceUnavailable(t, unavailable);
    const config = await exampleConfig({});

    const first = await plan(config);
    assert.deepEqual(
      first.steps.map((step) => step.name),
      ["write-dockerfile", "archive-context", "docker-build", "docker-push"],
    );
    assert.match(first.steps[0]?.detail ?? "", /^FROM local\/busybox-plan:1$/m);
    assert.match(first.steps[0]?.detail ?? "", /^CMD \["sh","\/app\/main\.sh"\]$/m);
    assert.equal(first.upToDate, false);
    assert.equal(first.image, `${registry.host}/team/example:${first.tag}`);

    const result = await apply(first);
    assert.equal(result.upToDate, false);
    assert.equal(result.image, `${first.image}@${result.digest}`);
    assert.deepEqual(
      result.steps.map((step) => step.name),
      ["docker-build", "docker-push"],
    );

    const output = await dockerd.docker(["run", "--rm", result.image]);
    assert.match(output, /^Hello from fairing!$/m);
    assert.match(output, /^working directory: \/app$/m);
    assert.match(output, /^FAIRING_RUNTIME=1$/m);
    const mapped = await dockerd.docker([
      "run",
      "--rm",
      result.image,
      "cat",
      "/etc/example/prod.json",
    ]);
    assert.match(mapped, /"environment": "prod"/);
    const env = await dockerd.docker(["run", "--rm", result.image, "env"]);
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

  test("push false keeps the image in the engine", async (t) => {
    if (!dockerd || !registry) return serviceUnavailable(t, unavailable);
    const config = await exampleConfig({ push: false, buildArgs: { UNUSED: "1" } });

    const first = await plan(config);
    assert.deepEqual(
      first.steps.map((step) => step.name),
      ["write-dockerfile", "archive-context", "docker-build"],
    );
    const result = await apply(first);
    assert.match(result.digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal(result.image, first.image, "an image id is no manifest digest for the reference");
    assert.match(await dockerd.docker(["run", "--rm", result.image]), /^FAIRING_RUNTIME=1$/m);
    const inspected = await dockerd.docker(["image", "inspect", "-f", "{{.Id}}", first.image]);
    assert.equal(inspected.trim(), result.digest);
    const tags = await fetch(`${registry.url}/v2/team/example/tags/list`);
    const body = (await tags.json()) as { tags?: string[] };
    assert.ok(!(body.tags ?? []).includes(first.tag), "the tag was not pushed");

    const second = await plan(config);
    assert.equal(second.upToDate, true);
  });

  test("fixed tag rebuilt on settings change", async (t) => {
    if (!dockerd || !registry) return serviceUnavailable(t, unavailable);
    const first = await apply(
      await plan(await exampleConfig({}, { tag: "fixed", labels: { stage: "a" } })),
    );
    assert.equal(first.upToDate, false);

    const changed = await plan(await exampleConfig({}, { tag: "fixed", labels: { stage: "b" } }));
    assert.equal(changed.tag, "fixed");
    assert.equal(changed.upToDate, false, "a label change makes the fixed tag out of date");
    const second = await apply(changed);
    assert.equal(second.upToDate, false);
    assert.notEqual(second.digest, first.digest);
    const label = await dockerd.docker([
      "image",
      "inspect",
      "-f",
      "{{.Config.Labels.stage}}",
      second.image,
    ]);
    assert.equal(label.trim(), "b");
    assert.equal(
      (await plan(await exampleConfig({}, { tag: "fixed", labels: { stage: "b" } }))).upToDate,
      true,
    );
  });

  test("missing blob is not up to date", async (t) => {
    if (!dockerd || !registry) return serviceUnavailable(t, unavailable);
    const config = await exampleConfig({}, { imageName: "blobs" });
    const result = await apply(await plan(config));
    const manifest = (await (
      await fetch(`${registry.url}/v2/team/blobs/manifests/${result.digest}`, {
        headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
      })
    ).json()) as { layers: { digest: string }[] };
    const top = manifest.layers[manifest.layers.length - 1]!.digest;
    const deleted = await fetch(`${registry.url}/v2/team/blobs/blobs/${top}`, { method: "DELETE" });
    assert.equal(deleted.status, 202);

    const again = await plan(config);
    assert.equal(again.upToDate, false);
    assert.match(again.reason, /exists in registry .* but its blob sha256:[0-9a-f]{64} is missing/);
  });
});
