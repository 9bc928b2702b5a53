/**
 * The main job without any service: the bundled example built into an OCI image layout, on a
 * `scratch` base and on a base read from another OCI layout, checked with skopeo when present.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { AppendBuilder } from "../../src/builders/append/builder.ts";
import { BasePreProcessor } from "../../src/context/preprocessor.ts";
import { makeTempDir, removeDir, which } from "../services/common.ts";
import { writeBusyboxLayout } from "../services/images.ts";
import { REPO, runCliInProcess } from "./cli-runtimes.ts";

const execFileAsync = promisify(execFile);

describe("oci-layout output", () => {
  let work = "";
  let file = "";

  before(async () => {
    work = await makeTempDir("oci-layout");
    await cp(join(REPO, "example"), join(work, "example"), { recursive: true });
    const text = await readFile(join(REPO, "fairing.config.example.yaml"), "utf8");
    file = join(work, "fairing.yaml");
    await writeFile(file, text);
  });

  after(async () => {
    if (work) await removeDir(work);
  });

  test("example builds reproducibly", async () => {
    const first = await runCliInProcess(["apply", "-f", file, "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const one = JSON.parse(first.stdout) as { tag: string; digest: string; destination: string };
    assert.equal(one.destination, join(work, ".fairing/example-image"));

    await rm(one.destination, { recursive: true });
    const second = await runCliInProcess(["apply", "-f", file, "--json"]);
    assert.equal(second.code, 0, second.stderr);
    const two = JSON.parse(second.stdout) as { tag: string; digest: string; upToDate: boolean };
    assert.equal(two.upToDate, false, "the layout was removed, so it is written again");
    assert.equal(two.tag, one.tag);
    assert.equal(two.digest, one.digest);

    const third = JSON.parse((await runCliInProcess(["apply", "-f", file, "--json"])).stdout) as {
      digest: string;
      upToDate: boolean;
    };
    assert.equal(third.upToDate, true);
    assert.equal(third.digest, one.digest);
  });

  test("skopeo reads the layout", async (t) => {
    if (!which("skopeo")) {
      // skopeo is a check of the output, not a service the build needs; the CI installs it.
      if (process.env.CI === "true") assert.fail("skopeo is not installed (Debian package skopeo)");
      return t.skip("skopeo is not installed (Debian package skopeo)");
    }
    const run = await runCliInProcess(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const { tag, digest } = JSON.parse(run.stdout) as { tag: string; digest: string };
    const { stdout } = await execFileAsync("skopeo", [
      "inspect",
      `oci:${join(work, ".fairing/example-image")}:${tag}`,
    ]);
    const inspected = JSON.parse(stdout) as { Digest: string; Env: string[]; Layers: string[] };
    assert.equal(inspected.Digest, digest);
    assert.ok(inspected.Env.includes("FAIRING_RUNTIME=1"));
    assert.equal(inspected.Layers.length, 1);
  });

  test("plan shows steps and verdict", async () => {
    const run = await runCliInProcess(["plan", "-f", file]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^image: fairing-job:[0-9a-f]{16}$/m);
    assert.match(run.stdout, /^up to date: (yes|no) \(/m);
    for (const step of ["collect-context", "resolve-base", "archive-context", "write-oci-layout"]) {
      assert.match(run.stdout, new RegExp(`^  ${step}: `, "m"));
    }
  });

  test("output inside context excluded", async () => {
    const project = join(work, "inside");
    await cp(join(REPO, "example"), project, { recursive: true });
    const config = join(project, "fairing.yaml");
    await writeFile(
      config,
      [
        "apiVersion: fairing/v1",
        "baseImage: scratch",
        "preprocessor: { inputFiles: [.], executable: main.sh, command: [sh] }",
        "output: { kind: oci-layout, path: out/image }",
      ].join("\n"),
    );
    const first = await runCliInProcess(["apply", "-f", config, "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const second = await runCliInProcess(["apply", "-f", config, "--json"]);
    assert.equal(second.code, 0, second.stderr);
    const one = JSON.parse(first.stdout) as { tag: string };
    const two = JSON.parse(second.stdout) as { tag: string; upToDate: boolean };
    assert.equal(two.tag, one.tag, "the written layout is not part of the next context");
    assert.equal(two.upToDate, true);
  });

  test("corrupt layout blob rewritten", async () => {
    const run = await runCliInProcess(["apply", "-f", file, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const { digest } = JSON.parse(run.stdout) as { digest: string };
    const layout = join(work, ".fairing/example-image");
    const manifest = JSON.parse(
      await readFile(join(layout, "blobs/sha256", digest.slice(7)), "utf8"),
    ) as { layers: { digest: string }[] };
    await rm(join(layout, "blobs/sha256", manifest.layers[0]!.digest.slice(7)));

    const again = await runCliInProcess(["apply", "-f", file, "--json"]);
    assert.equal(again.code, 0, again.stderr);
    const result = JSON.parse(again.stdout) as { upToDate: boolean; digest: string };
    assert.equal(result.upToDate, false);
    assert.equal(result.digest, digest);
    const restored = await readFile(
      join(layout, "blobs/sha256", manifest.layers[0]!.digest.slice(7)),
    );
    assert.ok(restored.length > 0);
  });

  test("escaping symlink has a position", async () => {
    const project = join(work, "escape");
    await cp(join(REPO, "example"), project, { recursive: true });
    await symlink("/etc/hostname", join(project, "data", "outside"));
    const config = join(project, "fairing.yaml");
    await writeFile(
      config,
      [
        "apiVersion: fairing/v1",
        "baseImage: scratch",
        "preprocessor:",
        "  inputFiles: [main.sh, data/]",
        "  executable: main.sh",
        "  command: [sh]",
        "output: { kind: oci-layout, path: out }",
      ].join("\n"),
    );
    for (const command of ["validate", "plan"]) {
      const run = await runCliInProcess([command, "-f", config]);
      assert.equal(run.code, 2, `${command}: ${run.stderr}`);
      assert.match(
        run.stderr,
        /fairing\.yaml:4:\d+: preprocessor\.inputFiles\[1\]: symlink .*outside/,
      );
    }
  });

  test("oci base from a layout", async () => {
    const baseDir = join(work, "base-layout");
    const base = await writeBusyboxLayout(baseDir, "1");
    const preprocessor = new BasePreProcessor({
      root: join(work, "example"),
      inputFiles: ["main.sh", "data/"],
      executable: "main.sh",
      command: ["sh"],
    });
    const builder = new AppendBuilder({
      baseImage: `oci:${baseDir}:1`,
      imageName: "from-layout",
      preprocessor,
      output: { kind: "oci-layout", path: join(work, "from-layout") },
    });
    assert.equal(builder.fullImageName("abc"), "from-layout:abc");
    assert.throws(() => builder.generatePodSpec(), /call build\(\) first/);

    const result = await builder.build();
    assert.match(result.image, /^from-layout:[0-9a-f]{16}@sha256:[0-9a-f]{64}$/);
    const index = JSON.parse(await readFile(join(work, "from-layout/index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]!.digest, result.digest);
    const manifest = JSON.parse(
      await readFile(join(work, "from-layout/blobs/sha256", result.digest.slice(7)), "utf8"),
    ) as { layers: { digest: string }[]; annotations: Record<string, string> };
    assert.equal(manifest.layers.length, 2);
    assert.equal(manifest.layers[0]!.digest, base.layerDigest, "the base layer is copied");
    assert.equal(manifest.annotations["org.opencontainers.image.base.digest"], base.manifestDigest);

    const spec = builder.generatePodSpec();
    const container = spec.containers[0]!;
    assert.equal(container.name, "model");
    assert.equal(container.image, result.image);
    assert.deepEqual(container.command, ["sh", "/app/main.sh"]);
    assert.equal(container.workingDir, "/app/");
    assert.deepEqual(container.env, [{ name: "FAIRING_RUNTIME", value: "1" }]);
  });
});
