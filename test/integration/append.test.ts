/**
 * The append builder end to end against a real registry (Debian's docker-registry) and, when
 * it can start, a real Docker Engine that pulls and runs what fairing pushed.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { main } from "../../src/cli/main.ts";
import { loadConfig } from "../../src/config/load.ts";
import { apply, plan } from "../../src/plan/plan.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
} from "../../src/registry/manifest.ts";
import { makeTempDir, removeDir, serviceUnavailable, which } from "../services/common.ts";
import { startDockerd, type DockerdService } from "../services/dockerd.ts";
import { pushBusyboxBase, type BaseImageBlobs } from "../services/images.ts";
import {
  registryUnavailableReason,
  startRegistry,
  type TestRegistry,
} from "../services/registry.ts";

const execFileAsync = promisify(execFile);
const EXAMPLE = resolve(
  import.meta.dirname ?? new URL(".", import.meta.url).pathname,
  "../../example",
);

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function runCli(args: string[]): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

/** Copies the example project into `dir` and writes a config for it there. */
async function writeProject(dir: string, config: Record<string, unknown>): Promise<string> {
  await cp(EXAMPLE, join(dir, "example"), { recursive: true });
  const document = {
    apiVersion: "fairing/v1",
    context: "example",
    preprocessor: {
      inputFiles: ["main.sh", "data/"],
      executable: "main.sh",
      command: ["sh"],
      outputMap: { "conf/prod.json": "/app/conf.json" },
    },
    ...config,
  };
  const file = join(dir, "fairing.yaml");
  await writeFile(file, JSON.stringify(document, null, 2));
  return file;
}

async function catalog(registry: TestRegistry): Promise<string[]> {
  const response = await fetch(`${registry.url}/v2/_catalog`);
  return ((await response.json()) as { repositories: string[] }).repositories ?? [];
}

describe("append builder against a registry", () => {
  let registry: TestRegistry | undefined;
  let dockerd: DockerdService | undefined;
  let dockerReason = "";
  let work = "";
  let ociBase: BaseImageBlobs;
  let dockerBase: BaseImageBlobs;
  const unavailable = registryUnavailableReason();

  before(async () => {
    if (unavailable) return;
    registry = await startRegistry();
    work = await makeTempDir("append");
    ociBase = await pushBusyboxBase(registry!.host, "base/busybox", "1");
    dockerBase = await pushBusyboxBase(registry!.host, "base/busybox-docker", "1", {
      format: "docker",
    });
    await pushBusyboxBase(registry!.host, "base/busybox-multi", "1", { index: true });
    const started = await startDockerd();
    if ("unavailable" in started) dockerReason = started.unavailable;
    else dockerd = started;
  });

  after(async () => {
    await dockerd?.stop();
    await registry?.stop();
    if (work) await removeDir(work);
  });

  test("first push runs in docker", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "first");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "example",
    });

    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as {
      image: string;
      digest: string;
      tag: string;
      upToDate: boolean;
      blobs: { uploaded: number; mounted: number; uploadedBytes: number };
    };
    assert.equal(result.upToDate, false);
    assert.match(result.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(result.image, `${registry.host}/team/example:${result.tag}@${result.digest}`);
    assert.equal(result.blobs.mounted, 1, "the base layer is mounted, not uploaded");
    assert.equal(result.blobs.uploaded, 2, "the context layer and the config are uploaded");

    // The manifest's sizes, digests and media types match the blobs the registry serves.
    const client = new RegistryClient(registry.host, { credential: null });
    const fetched = await client.getManifest("team/example", result.tag);
    assert.equal(fetched.digest, result.digest);
    assert.equal(fetched.mediaType, OCI_MANIFEST);
    const manifest = JSON.parse(new TextDecoder().decode(fetched.bytes)) as {
      config: { mediaType: string; digest: string; size: number };
      layers: { mediaType: string; digest: string; size: number }[];
    };
    assert.equal(manifest.config.mediaType, OCI_CONFIG);
    const configBytes = await client.getBlobBytes("team/example", manifest.config.digest);
    assert.equal(configBytes.length, manifest.config.size);
    assert.equal(manifest.layers.length, 2);
    assert.equal(manifest.layers[0]!.digest, ociBase.layerDigest);
    for (const layer of manifest.layers) {
      assert.equal(layer.mediaType, OCI_LAYER_GZIP);
      const head: Response = await fetch(`${registry.url}/v2/team/example/blobs/${layer.digest}`, {
        method: "HEAD",
      });
      assert.equal(
        Number(head.headers.get("content-length")),
        layer.size,
        `size of ${layer.digest}`,
      );
    }
    const config = JSON.parse(new TextDecoder().decode(configBytes)) as {
      config: { Cmd: string[]; WorkingDir: string; Env: string[]; Entrypoint: unknown };
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(config.config.Cmd, ["sh", "/app/main.sh"]);
    assert.equal(config.config.WorkingDir, "/app/");
    assert.ok(config.config.Env.includes("FAIRING_RUNTIME=1"));
    assert.equal(config.rootfs.diff_ids.length, 2);
    assert.equal(config.rootfs.diff_ids[0], ociBase.diffID);

    if (which("skopeo")) {
      const { stdout } = await execFileAsync("skopeo", [
        "inspect",
        "--raw",
        "--tls-verify=false",
        `docker://${registry.host}/team/example:${result.tag}`,
      ]);
      assert.deepEqual(JSON.parse(stdout), manifest);
    }

    if (!dockerd) return serviceUnavailable(t, dockerReason);
    const output = await dockerd.docker([
      "run",
      "--rm",
      `${registry.host}/team/example:${result.tag}`,
    ]);
    const greeting = (await readFile(join(EXAMPLE, "data/greeting.txt"), "utf8")).trim();
    assert.match(output, new RegExp(greeting.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.match(output, /FAIRING_RUNTIME=1/);
    assert.match(output, /\/app/);
  });

  test("second apply uploads nothing", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "second");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "again",
    });
    const first = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const planned = await runCli(["plan", "-f", file, "--json"]);
    assert.equal(planned.code, 0, planned.stderr);
    assert.equal((JSON.parse(planned.stdout) as { upToDate: boolean }).upToDate, true);

    const second = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(second.code, 0, second.stderr);
    const one = JSON.parse(first.stdout) as { digest: string; tag: string };
    const two = JSON.parse(second.stdout) as {
      digest: string;
      tag: string;
      upToDate: boolean;
      blobs: { uploaded: number; mounted: number };
    };
    assert.equal(two.upToDate, true);
    assert.equal(two.tag, one.tag);
    assert.equal(two.digest, one.digest);
    assert.equal(two.blobs.uploaded, 0);
    assert.equal(two.blobs.mounted, 0);
  });

  test("renamed image mounts its layers", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "renamed");
    await mkdir(dir);
    const settings = {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
    };
    const file = await writeProject(dir, { ...settings, imageName: "before-rename" });
    const first = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(first.code, 0, first.stderr);

    // The same project under another name: the context layer is mounted from the repository
    // the layer cache recorded, so only the image config is uploaded.
    await writeProject(dir, { ...settings, imageName: "after-rename" });
    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const before = JSON.parse(first.stdout) as { digest: string };
    const renamed = JSON.parse(run.stdout) as {
      digest: string;
      upToDate: boolean;
      blobs: { uploaded: number; uploadedBytes: number };
    };
    assert.equal(renamed.upToDate, false);
    assert.equal(renamed.digest, before.digest);
    assert.equal(renamed.blobs.uploaded, 1, "only the config is uploaded");

    const again = await runCli(["apply", "-f", file, "--json"]);
    assert.equal((JSON.parse(again.stdout) as { upToDate: boolean }).upToDate, true);
  });

  test("incompressible files stream in one pass", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "incompressible");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "incompressible",
    });
    // Random bytes are framed as stored blocks into one reused buffer: 2 MiB in the data layer,
    // 300 KiB in the code layer.
    await writeFile(join(dir, "example/data/weights.bin"), randomBytes(2 * 1024 * 1024));
    await writeFile(join(dir, "example/data/small.bin"), randomBytes(300 * 1024));
    const run = await runCli(["apply", "-f", file, "--json", "-v"]);
    assert.equal(run.code, 0, run.stderr);
    // A copy whose bytes differ from the hashed ones is rejected by the registry and archived
    // again into a file, which this debug message reports.
    assert.doesNotMatch(run.stderr, /streaming copy dropped/);
    const result = JSON.parse(run.stdout) as { blobs: { uploaded: number; uploadedBytes: number } };
    assert.ok(result.blobs.uploadedBytes > 2 * 1024 * 1024, "the random bytes were uploaded");
  });

  test("changed file gives a new tag", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "changed");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "changed",
    });
    const first = JSON.parse((await runCli(["apply", "-f", file, "--json"])).stdout) as {
      tag: string;
    };
    await writeFile(join(dir, "example/data/greeting.txt"), "hello again\n");
    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const second = JSON.parse(run.stdout) as {
      tag: string;
      upToDate: boolean;
      blobs: { uploaded: number; skipped: number };
    };
    assert.notEqual(second.tag, first.tag);
    assert.equal(second.upToDate, false);
    assert.equal(second.blobs.skipped, 1, "the base layer is already in the repository");
  });

  test("index base picks the platform", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "index");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox-multi:1`,
      registry: `${registry.host}/team`,
      imageName: "multi",
    });
    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const { tag } = JSON.parse(run.stdout) as { tag: string };
    const client = new RegistryClient(registry.host, { credential: null });
    const manifest = JSON.parse(
      new TextDecoder().decode((await client.getManifest("team/multi", tag)).bytes),
    ) as {
      config: { digest: string };
    };
    const config = JSON.parse(
      new TextDecoder().decode(await client.getBlobBytes("team/multi", manifest.config.digest)),
    ) as { architecture: string };
    assert.equal(config.architecture, "amd64");

    const otherDir = join(work, "index-s390x");
    await mkdir(otherDir);
    const arm = await writeProject(otherDir, {
      baseImage: `${registry.host}/base/busybox-multi:1`,
      registry: `${registry.host}/team`,
      imageName: "multi",
      platform: "linux/s390x",
    });
    const missing = await runCli(["apply", "-f", arm]);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /fairing\.yaml:\d+:\d+: baseImage: .*linux\/s390x.*linux\/arm64, linux\/amd64/s,
    );
  });

  test("docker base keeps docker media types", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "docker-base");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox-docker:1`,
      registry: `${registry.host}/team`,
      imageName: "docker-media",
    });
    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const { tag } = JSON.parse(run.stdout) as { tag: string };
    const client = new RegistryClient(registry.host, { credential: null });
    const fetched = await client.getManifest("team/docker-media", tag);
    assert.equal(fetched.mediaType, DOCKER_MANIFEST);
    const manifest = JSON.parse(new TextDecoder().decode(fetched.bytes)) as {
      config: { mediaType: string };
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(manifest.config.mediaType, DOCKER_CONFIG);
    assert.deepEqual(
      manifest.layers.map((layer) => layer.mediaType),
      [DOCKER_LAYER_GZIP, DOCKER_LAYER_GZIP],
    );
    assert.equal(manifest.layers[0]!.digest, dockerBase.layerDigest);
    if (!dockerd) return serviceUnavailable(t, dockerReason);
    const output = await dockerd.docker([
      "run",
      "--rm",
      `${registry.host}/team/docker-media:${tag}`,
    ]);
    assert.match(output, /FAIRING_RUNTIME=1/);
  });

  test("missing base exits 1 with position", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "missing-base");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/nothing:1`,
      registry: `${registry.host}/team`,
      imageName: "never",
    });
    const run = await runCli(["apply", "-f", file]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /fairing\.yaml:\d+:\d+: baseImage: cannot resolve/);
    assert.match(run.stderr, /not found/i);
    assert.ok(!(await catalog(registry)).includes("team/never"), "nothing was pushed");
  });

  test("bad config exits 2 and pushes nothing", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "bad");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "bad",
      builder: { kind: "append", push: "yes" },
    });
    const run = await runCli(["apply", "-f", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /fairing\.yaml:\d+:\d+: builder\.push: /);
    assert.ok(!(await catalog(registry)).includes("team/bad"));
  });

  test("fixed tag rebuilt on settings change", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "fixed-tag");
    await mkdir(dir);
    const settings = {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "fixed",
      tag: "v1",
    };
    const file = await writeProject(dir, { ...settings, labels: { stage: "a" } });
    const first = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(first.code, 0, first.stderr);

    await writeProject(dir, { ...settings, labels: { stage: "b" } });
    const planned = JSON.parse((await runCli(["plan", "-f", file, "--json"])).stdout) as {
      upToDate: boolean;
      reason: string;
    };
    assert.equal(planned.upToDate, false);
    assert.match(planned.reason, /other image settings/);
    const second = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(second.code, 0, second.stderr);
    const one = JSON.parse(first.stdout) as { digest: string };
    const two = JSON.parse(second.stdout) as { digest: string; tag: string; upToDate: boolean };
    assert.equal(two.tag, "v1");
    assert.equal(two.upToDate, false);
    assert.notEqual(two.digest, one.digest);
  });

  test("missing blob is pushed again", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "missing-blob");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "repaired",
    });
    const first = JSON.parse((await runCli(["apply", "-f", file, "--json"])).stdout) as {
      tag: string;
    };
    const client = new RegistryClient(registry.host, { credential: null });
    const manifest = JSON.parse(
      new TextDecoder().decode((await client.getManifest("team/repaired", first.tag)).bytes),
    ) as { layers: { digest: string }[] };
    const contextLayer = manifest.layers[1]!.digest;
    const deleted = await fetch(`${registry.url}/v2/team/repaired/blobs/${contextLayer}`, {
      method: "DELETE",
    });
    assert.equal(deleted.status, 202);

    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const second = JSON.parse(run.stdout) as { upToDate: boolean; blobs: { uploaded: number } };
    assert.equal(second.upToDate, false);
    assert.ok(second.blobs.uploaded >= 1);
    assert.equal(await client.hasBlob("team/repaired", contextLayer), true);
  });

  test("platform mismatch exits 2", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "platform");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "platform",
      platform: "linux/arm64",
    });
    const run = await runCli(["apply", "-f", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /baseImage: .*built for linux\/amd64 only, not linux\/arm64/);
    assert.ok(!(await catalog(registry)).includes("team/platform"));
  });

  test("abort writes no tag", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "abort");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      registry: `${registry.host}/team`,
      imageName: "aborted",
    });
    const config = await loadConfig(file);
    const controller = new AbortController();
    const buildPlan = await plan(config);
    await assert.rejects(
      apply(buildPlan, {
        signal: controller.signal,
        onProgress: (event) => {
          if (event.step === "upload-layer") controller.abort(new Error("stopped by the test"));
        },
      }),
      /stopped by the test/,
    );
    const head = await fetch(`${registry.url}/v2/team/aborted/manifests/${buildPlan.tag}`, {
      method: "HEAD",
    });
    assert.equal(head.status, 404, "no tag was written");
  });

  test("docker-archive loads into docker", async (t) => {
    if (!registry) return serviceUnavailable(t, unavailable!);
    const dir = join(work, "archive");
    await mkdir(dir);
    const file = await writeProject(dir, {
      baseImage: `${registry.host}/base/busybox:1`,
      imageName: "archived",
      output: { kind: "docker-archive", path: "image.tar" },
    });
    const run = await runCli(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const { tag, upToDate } = JSON.parse(run.stdout) as { tag: string; upToDate: boolean };
    assert.equal(upToDate, false);
    const again = JSON.parse((await runCli(["apply", "-f", file, "--json"])).stdout) as {
      upToDate: boolean;
    };
    assert.equal(again.upToDate, true);
    if (which("skopeo")) {
      const { stdout } = await execFileAsync("skopeo", [
        "inspect",
        `docker-archive:${join(dir, "image.tar")}`,
      ]);
      assert.match(stdout, /FAIRING_RUNTIME=1/);
    }
    if (!dockerd) return serviceUnavailable(t, dockerReason);
    await dockerd.docker(["load", "-i", join(dir, "image.tar")]);
    const output = await dockerd.docker(["run", "--rm", `archived:${tag}`]);
    assert.match(output, /FAIRING_RUNTIME=1/);
  });
});
