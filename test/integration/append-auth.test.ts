/**
 * The append builder as a user runs it: the CLI in a child process under Node, Deno and Bun,
 * with credentials from a Docker config file, against registries with htpasswd and token auth.
 */
import assert from "node:assert/strict";
import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { pushBusyboxBase } from "../services/images.ts";
import {
  registryUnavailableReason,
  startRegistry,
  type TestRegistry,
} from "../services/registry.ts";
import { REPO, cliCommand, runCliProcess, type Runtime } from "./cli-runtimes.ts";

async function writeProject(dir: string, config: Record<string, unknown>): Promise<string> {
  await mkdir(dir, { recursive: true });
  await cp(join(REPO, "example"), join(dir, "example"), { recursive: true });
  const file = join(dir, "fairing.yaml");
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: "fairing/v1",
      context: "example",
      preprocessor: { inputFiles: ["main.sh", "data/"], command: ["sh"] },
      ...config,
    }),
  );
  return file;
}

async function writeDockerConfig(
  dir: string,
  host: string,
  user: string,
  password: string,
): Promise<string> {
  const configDir = join(dir, "docker-config");
  await mkdir(configDir, { recursive: true });
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  await writeFile(join(configDir, "config.json"), JSON.stringify({ auths: { [host]: { auth } } }));
  return configDir;
}

for (const auth of ["htpasswd", "token"] as const) {
  describe(`append with ${auth} auth`, () => {
    let registry: TestRegistry | undefined;
    let work = "";
    let credentials = "";
    const unavailable = registryUnavailableReason({ auth });

    before(async () => {
      if (unavailable) return;
      registry = await startRegistry({ auth });
      work = await makeTempDir(`append-${auth}`);
      await pushBusyboxBase(registry!.host, "base/busybox", "1", {
        credential: { username: registry!.username!, password: registry!.password! },
      });
      credentials = await writeDockerConfig(
        work,
        registry!.host,
        registry!.username!,
        registry!.password!,
      );
    });

    after(async () => {
      await registry?.stop();
      if (work) await removeDir(work);
    });

    test("no credentials exits 1", async (t) => {
      if (!registry) return serviceUnavailable(t, unavailable!);
      const file = await writeProject(join(work, "anonymous"), {
        baseImage: `${registry.host}/base/busybox:1`,
        registry: `${registry.host}/team`,
        imageName: "anonymous",
      });
      const empty = join(work, "empty-docker-config");
      await mkdir(empty, { recursive: true });
      const run = await runCliProcess("node", ["apply", "-f", file], { DOCKER_CONFIG: empty });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /401|unauthori[sz]ed|credentials/i);
      assert.match(run.stderr, new RegExp(registry.host.replace(/\./g, "\\.")));
      assert.match(run.stderr, /no credentials for .* were found in .*empty-docker-config/);
    });

    test("wrong password is not printed", async (t) => {
      if (!registry) return serviceUnavailable(t, unavailable!);
      const file = await writeProject(join(work, "wrong"), {
        baseImage: `${registry.host}/base/busybox:1`,
        registry: `${registry.host}/team`,
        imageName: "wrong",
      });
      const wrongPassword = "wrong-password-4f9a1c";
      const config = await writeDockerConfig(
        join(work, "wrong"),
        registry.host,
        registry.username!,
        wrongPassword,
      );
      const run = await runCliProcess("node", ["apply", "-f", file, "-v"], {
        DOCKER_CONFIG: config,
      });
      assert.equal(run.code, 1);
      assert.ok(!run.stderr.includes(wrongPassword), "the password is not in stderr");
      assert.ok(!run.stdout.includes(wrongPassword), "the password is not in stdout");
      assert.match(run.stderr, /rejected the credentials .* from .*config\.json/);
    });

    for (const runtime of ["node", "deno", "bun"] as Runtime[]) {
      test(`apply from ${runtime}`, async (t) => {
        if (!registry) return serviceUnavailable(t, unavailable!);
        if (!cliCommand(runtime))
          return serviceUnavailable(t, `${runtime} is not installed; run npm ci`);
        const file = await writeProject(join(work, runtime), {
          baseImage: `${registry.host}/base/busybox:1`,
          registry: `${registry.host}/team`,
          imageName: "shared",
        });
        const env = { DOCKER_CONFIG: credentials };
        const run = await runCliProcess(runtime, ["apply", "-f", file, "--json"], env);
        assert.equal(run.code, 0, run.stderr);
        const result = JSON.parse(run.stdout) as { image: string; tag: string; digest: string };
        assert.match(
          result.image,
          new RegExp(
            `^${registry.host.replace(/\./g, "\\.")}/team/shared:[0-9a-f]{16}@sha256:[0-9a-f]{64}$`,
          ),
        );
        assert.ok(!run.stderr.includes(registry.password!), "the password is not in stderr");

        const again = await runCliProcess(runtime, ["apply", "-f", file, "--json"], env);
        assert.equal(again.code, 0, again.stderr);
        const second = JSON.parse(again.stdout) as {
          upToDate: boolean;
          tag: string;
          blobs: { uploaded: number };
        };
        assert.equal(second.upToDate, true);
        assert.equal(second.tag, result.tag);
        assert.equal(second.blobs.uploaded, 0);
      });
    }
  });
}

describe("append over https", () => {
  let registry: TestRegistry | undefined;
  let work = "";
  const unavailable = registryUnavailableReason({ tls: true });

  before(async () => {
    if (unavailable) return;
    registry = await startRegistry({ tls: true });
    work = await makeTempDir("append-tls");
  });

  after(async () => {
    await registry?.stop();
    if (work) await removeDir(work);
  });

  for (const runtime of ["node", "deno", "bun"] as Runtime[]) {
    test(`trusted CA from ${runtime}`, async (t) => {
      if (!registry) return serviceUnavailable(t, unavailable!);
      if (!cliCommand(runtime))
        return serviceUnavailable(t, `${runtime} is not installed; run npm ci`);
      const file = await writeProject(join(work, runtime), {
        baseImage: "scratch",
        registry: `${registry.host}/team`,
        imageName: `tls-${runtime}`,
      });
      // Each runtime's way to trust an extra CA, read when the process starts.
      const env: Record<string, string> =
        runtime === "deno"
          ? { DENO_CERT: registry.caFile! }
          : { NODE_EXTRA_CA_CERTS: registry.caFile! };
      const run = await runCliProcess(runtime, ["apply", "-f", file, "--json"], env);
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout) as { image: string; upToDate: boolean };
      assert.equal(result.upToDate, false);
      assert.ok(result.image.startsWith(`${registry.host}/team/tls-${runtime}:`), result.image);

      const untrusted = await runCliProcess(runtime, ["apply", "-f", file]);
      assert.equal(untrusted.code, 1, untrusted.stderr);
      assert.match(untrusted.stderr, /CA certificate/);
    });
  }
});
