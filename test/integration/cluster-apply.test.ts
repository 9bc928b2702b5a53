/**
 * The cluster builder's whole user path through the CLI. Each context source kind gets a
 * `fairing.yaml` with `builder.kind: cluster` pointing at its emulator: s3rver for s3 and
 * minio, Azurite for azure, the Cloud Storage emulator for gcs. `fairing plan` and
 * `fairing apply --json` run against the Kubernetes API test server with scripted build pods,
 * and a real loopback registry decides "up to date". Credentials reach fairing only through
 * the environment variables and files the official SDKs read.
 */
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import { main } from "../../src/cli/main.ts";
import { startAzurite, type Azurite } from "../services/azurite.ts";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { startGcsEmulator, type GcsEmulator } from "../services/gcs.ts";
import { pushBusyboxBase } from "../services/images.ts";
import { startKubeApi, type KubeApiServer } from "../services/kube-api.ts";
import {
  registryUnavailableReason,
  startRegistry,
  type TestRegistry,
} from "../services/registry.ts";
import { startS3rver, type S3rver } from "../services/s3rver.ts";

const DIGEST = `sha256:${"c4".repeat(32)}`;
const KUBE_TOKEN = "test-token-value";
const S3_SESSION_TOKEN = "FwoGZXIvYXdzEfairingSessionToken";
const STEPS = [
  "write-dockerfile",
  "archive-context",
  "upload-context",
  "create-job",
  "follow-logs",
  "cleanup",
];
// A made-up service account key: the Cloud Storage emulator needs no credential, but the
// builder copies the key file into the build pod's Secret, so its private key must never leak.
const GCS_PRIVATE_KEY =
  "-----BEGIN PRIVATE KEY-----\nMIIfakefairingtestkey0123456789\n-----END PRIVATE KEY-----\n";

/** Everything a test needs to know about one context source kind and its emulator. */
interface SourceCase {
  kind: "s3" | "minio" | "azure" | "gcs";
  /** Starts the emulator; returns why it cannot run, or undefined. */
  start(): Promise<string | undefined>;
  stop(): Promise<void>;
  /** The `contextSource` section, one `key: value` per line. */
  yaml(): string[];
  /** Environment variables carrying the credentials, as the official SDKs read them. */
  env(): Record<string, string>;
  /** Credential values that must never be printed. */
  secrets(): string[];
  /** Destination of the context as the plan's `upload-context` step describes it. */
  where(): string;
  /** Expected start of the executor's `--context` URL, up to the key's `context-` part. */
  urlPrefix(): string;
  /** Reads the object behind a context URL, or returns undefined when it does not exist. */
  read(url: string): Promise<Buffer | undefined>;
  /** Checks what the build pod gets to read the context: environment, Secret references, volumes. */
  checkPod(spec: any): void;
}

/** Returns the executor container's environment by name. */
function envOf(spec: any): Record<string, any> {
  const container = spec.containers[0];
  return Object.fromEntries(
    (container.env ?? []).map((variable: any) => [variable.name, variable]),
  );
}

/** Asserts that `name` is read from the context Secret the builder created. */
function assertFromSecret(spec: any, name: string): void {
  const secretRef = envOf(spec)[name]?.valueFrom?.secretKeyRef;
  assert.match(secretRef?.name ?? "", /^fairing-context-/, `${name} comes from the context Secret`);
  assert.equal(secretRef?.key, name);
}

/**
 * Creates the s3 or minio case. The s3 kind finds the store through AWS_ENDPOINT_URL_S3 and
 * carries a session token, as temporary credentials do. The minio kind names its endpoint in
 * the config.
 */
function s3Case(kind: "s3" | "minio"): SourceCase {
  let s3: S3rver | undefined;
  const bucket = `ml-builds-${kind}`;
  const client = () =>
    new S3Client({
      endpoint: s3!.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  return {
    kind,
    async start() {
      const started = await startS3rver();
      if ("unavailable" in started) return started.unavailable;
      s3 = started;
      return undefined;
    },
    stop: async () => await s3?.stop(),
    yaml: () =>
      kind === "s3"
        ? ["kind: s3", `bucket: ${bucket}`]
        : ["kind: minio", `bucket: ${bucket}`, `endpoint: ${s3!.endpoint}`],
    env: () => ({
      AWS_ACCESS_KEY_ID: s3!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3!.secretAccessKey,
      AWS_REGION: "eu-west-1",
      ...(kind === "s3"
        ? { AWS_ENDPOINT_URL_S3: s3!.endpoint, AWS_SESSION_TOKEN: S3_SESSION_TOKEN }
        : {}),
    }),
    secrets: () => [s3!.secretAccessKey, S3_SESSION_TOKEN],
    where: () => `${kind} bucket ${bucket} at ${s3!.endpoint}`,
    urlPrefix: () => `s3://${bucket}/fairing/context-`,
    async read(url) {
      const key = url.slice(`s3://${bucket}/`.length);
      try {
        const response = await client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await response.Body!.transformToByteArray());
      } catch (error) {
        if ((error as { name?: string }).name === "NoSuchKey") return undefined;
        throw error;
      }
    },
    checkPod(spec) {
      const env = envOf(spec);
      assert.equal(env.AWS_REGION?.value, "eu-west-1");
      assert.equal(env.S3_ENDPOINT?.value, s3!.endpoint);
      assert.equal(env.S3_FORCE_PATH_STYLE?.value, "true");
      assertFromSecret(spec, "AWS_ACCESS_KEY_ID");
      assertFromSecret(spec, "AWS_SECRET_ACCESS_KEY");
      if (kind === "s3") assertFromSecret(spec, "AWS_SESSION_TOKEN");
      else assert.equal(env.AWS_SESSION_TOKEN, undefined);
    },
  };
}

/** Creates the azure case, whose account key and endpoint come from AZURE_STORAGE_CONNECTION_STRING. */
function azureCase(): SourceCase {
  let azurite: Azurite | undefined;
  const container = "fairing-builds";
  return {
    kind: "azure",
    async start() {
      const started = await startAzurite();
      if ("unavailable" in started) return started.unavailable;
      azurite = started;
      return undefined;
    },
    stop: async () => await azurite?.stop(),
    yaml: () => ["kind: azure", `account: ${azurite!.account}`, `container: ${container}`],
    env: () => ({
      AZURE_STORAGE_CONNECTION_STRING:
        `DefaultEndpointsProtocol=http;AccountName=${azurite!.account};` +
        `AccountKey=${azurite!.key};BlobEndpoint=${azurite!.endpoint};`,
    }),
    secrets: () => [azurite!.key],
    where: () =>
      `azure container ${container} of account ${azurite!.account} at ${azurite!.endpoint}`,
    urlPrefix: () => `${azurite!.endpoint}/${container}/fairing/context-`,
    async read(url) {
      const credential = new StorageSharedKeyCredential(azurite!.account, azurite!.key);
      const service = new BlobServiceClient(azurite!.endpoint, credential);
      const name = url.slice(`${azurite!.endpoint}/${container}/`.length);
      const blob = service.getContainerClient(container).getBlockBlobClient(name);
      if (!(await blob.exists())) return undefined;
      return await blob.downloadToBuffer();
    },
    checkPod(spec) {
      assertFromSecret(spec, "AZURE_STORAGE_ACCESS_KEY");
    },
  };
}

function gcsCase(): SourceCase {
  let gcs: GcsEmulator | undefined;
  let keyFile = "";
  const bucket = "ml-builds-gcs";
  return {
    kind: "gcs",
    async start() {
      const started = await startGcsEmulator();
      if ("unavailable" in started) return started.unavailable;
      gcs = started;
      keyFile = join(dir, "gcs-key.json");
      await writeFile(
        keyFile,
        JSON.stringify({
          type: "service_account",
          project_id: gcs.projectId,
          private_key_id: "0123456789abcdef",
          private_key: GCS_PRIVATE_KEY,
          client_email: `builder@${gcs.projectId}.iam.gserviceaccount.com`,
          client_id: "1",
          token_uri: "http://127.0.0.1:1/token",
        }),
      );
      return undefined;
    },
    stop: async () => await gcs?.stop(),
    yaml: () => [
      "kind: gcs",
      `bucket: ${bucket}`,
      `project: ${gcs!.projectId}`,
      `endpoint: ${gcs!.endpoint}`,
    ],
    env: () => ({ GOOGLE_APPLICATION_CREDENTIALS: keyFile }),
    secrets: () => ["MIIfakefairingtestkey0123456789"],
    where: () => `gcs bucket ${bucket} at ${gcs!.endpoint}`,
    urlPrefix: () => `gs://${bucket}/fairing/context-`,
    async read(url) {
      const storage = new Storage({ apiEndpoint: gcs!.endpoint, projectId: gcs!.projectId });
      const file = storage.bucket(bucket).file(url.slice(`gs://${bucket}/`.length));
      const [exists] = await file.exists();
      if (!exists) return undefined;
      const [bytes] = await file.download();
      return bytes;
    },
    checkPod(spec) {
      const env = envOf(spec);
      assert.equal(env.GOOGLE_APPLICATION_CREDENTIALS?.value, "/secret/kaniko-secret.json");
      const volume = spec.volumes?.find((v: any) => v.name === "gcs-credentials");
      assert.match(volume?.secret?.secretName ?? "", /^fairing-context-/);
      const mount = spec.containers[0].volumeMounts?.find((m: any) => m.name === "gcs-credentials");
      assert.equal(mount?.mountPath, "/secret");
    },
  };
}

/** Output of one in-process CLI run. */
interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir = "";
let registry: TestRegistry | undefined;
let registryReason = "";
const savedEnv = new Map<string, string | undefined>();

function setEnv(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
    process.env[name] = value;
  }
}

function restoreEnv(): void {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  savedEnv.clear();
}

/**
 * Runs the CLI in-process. `onStderr` receives every stderr chunk as it is written, so a test
 * can act while the build runs.
 */
async function fairing(argv: string[], onStderr?: (text: string) => void): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
      onStderr?.(text);
    },
  });
  return { code, stdout, stderr };
}

/** Writes a project with `train.py` (its content makes the tag unique) and its fairing.yaml. */
async function writeProject(
  name: string,
  source: SourceCase,
  sourceLines: string[] = [],
): Promise<string> {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, "train.py"), `print("training ${name}")\n`);
  const file = join(root, "fairing.yaml");
  const yaml = [
    "apiVersion: fairing/v1",
    `baseImage: ${registry!.host}/base/python:3.12`,
    `registry: ${registry!.host}/team`,
    `imageName: mnist-${source.kind}`,
    "labels: { team: ml }",
    "preprocessor:",
    "  inputFiles: [train.py]",
    "builder:",
    "  kind: cluster",
    "  executorImage: 127.0.0.1:5000/tools/executor:1",
    "  timeoutSeconds: 30",
    "  startTimeoutSeconds: 10",
    "contextSource:",
    ...[...source.yaml(), ...sourceLines].map((line) => `  ${line}`),
    "",
  ];
  await writeFile(file, yaml.join("\n"));
  return file;
}

function assertNoSecrets(text: string, source: SourceCase, what: string): void {
  for (const secret of [...source.secrets(), KUBE_TOKEN]) {
    assert.ok(!text.includes(secret), `${what} contains a credential`);
  }
}

function contextArg(job: any): string {
  const args: string[] = job.spec.template.spec.containers[0].args;
  const arg = args.find((value) => value.startsWith("--context="));
  assert.ok(arg, `the Job has a --context argument: ${args.join(" ")}`);
  return arg.slice("--context=".length);
}

before(async () => {
  dir = await makeTempDir("cluster-apply");
  // The digest cache of the planner goes to the temporary folder, not the user's cache.
  setEnv({ FAIRING_CACHE_DIR: join(dir, "cache") });
  registryReason = registryUnavailableReason() ?? "";
  if (!registryReason) registry = await startRegistry();
  if (!registry && !registryReason) registryReason = "the test registry did not start";
});

after(async () => {
  await registry?.stop();
  restoreEnv();
  await removeDir(dir);
});

for (const source of [s3Case("s3"), s3Case("minio"), azureCase(), gcsCase()]) {
  describe(`cluster apply with ${source.kind} context`, () => {
    let reason = "";
    let api: KubeApiServer;
    const baseEnv = new Map<string, string | undefined>();

    before(async () => {
      reason = registryReason || ((await source.start()) ?? "");
    });
    after(async () => {
      await source.stop();
    });
    beforeEach(async () => {
      api = await startKubeApi();
      const env = { ...source.env(), KUBECONFIG: api.kubeconfig };
      for (const [name, value] of Object.entries(env)) {
        baseEnv.set(name, process.env[name]);
        process.env[name] = value;
      }
    });
    afterEach(async () => {
      await api.stop();
      for (const [name, value] of baseEnv) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      baseEnv.clear();
    });

    test(`${source.kind} plan without kubeconfig`, async (t) => {
      if (reason) return serviceUnavailable(t, reason);
      const file = await writeProject(`plan-nokube-${source.kind}`, source);
      process.env.KUBECONFIG = join(dir, "no-such-kubeconfig");
      const run = await fairing(["plan", "-f", file]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        /create-job: create a Job \(cannot load kubeconfig .*no-such-kubeconfig.*apply fails until this is fixed\)/,
      );
    });

    test(`${source.kind} plan shows steps`, async (t) => {
      if (reason) return serviceUnavailable(t, reason);
      const file = await writeProject(`plan-${source.kind}`, source);

      const text = await fairing(["plan", "-f", file]);
      assert.equal(text.code, 0, text.stderr);
      for (const step of STEPS) assert.match(text.stdout, new RegExp(`^  ${step}: `, "m"));
      assert.match(text.stdout, /^builder: cluster$/m);
      assert.ok(
        text.stdout.includes(
          `  upload-context: upload the archive to ${source.where()} under fairing/`,
        ),
        text.stdout,
      );
      assert.match(text.stdout, /^up to date: no /m);
      assert.ok(
        text.stdout.includes(`  create-job: create a Job in namespace builds on ${api.url} `),
        text.stdout,
      );
      assert.match(text.stdout, /pushing without registry credentials$/m);
      assert.match(text.stdout, new RegExp(`^    FROM ${registry!.host}/base/python:3\\.12$`, "m"));
      assertNoSecrets(text.stdout + text.stderr, source, "plan output");

      const json = await fairing(["plan", "--json", "-f", file]);
      assert.equal(json.code, 0, json.stderr);
      const plan = JSON.parse(json.stdout);
      assert.deepEqual(
        plan.steps.map((step: { name: string }) => step.name),
        STEPS,
      );
      assert.match(plan.steps[0].detail, /^FROM /m);
      assert.match(plan.steps[0].detail, /^CMD \["python","\/app\/train\.py"\]$/m);
      assert.equal(plan.config.contextSource.kind, source.kind);
      assert.equal(plan.upToDate, false);
      assertNoSecrets(json.stdout + json.stderr, source, "plan JSON");
      assert.equal(api.created.jobs.length, 0);
    });

    test(`${source.kind} apply builds and cleans up`, async (t) => {
      if (reason) return serviceUnavailable(t, reason);
      const file = await writeProject(`apply-${source.kind}`, source);
      api.script({
        outcome: "succeed",
        logs: ["INFO resolving the base image", "INFO building the context", "INFO pushed"],
        digest: DIGEST,
        delayMs: 60,
      });

      let during: Promise<{ url: string; bytes: Buffer | undefined }> | undefined;
      const run = await fairing(["apply", "--json", "-f", file], (text) => {
        if (!during && text.includes("INFO resolving the base image")) {
          const url = contextArg(api.created.jobs[0]);
          during = source.read(url).then((bytes) => ({ url, bytes }));
        }
      });

      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.equal(result.digest, DIGEST);
      assert.equal(result.upToDate, false);
      assert.match(
        result.image,
        new RegExp(`^${registry!.host}/team/mnist-${source.kind}:[0-9a-f]{16}@${DIGEST}$`),
      );
      assert.match(run.stderr, /INFO resolving the base image/);
      assert.match(run.stderr, /INFO building the context/);
      assert.match(run.stderr, /INFO pushed/);
      assertNoSecrets(run.stdout + run.stderr, source, "apply output");

      assert.ok(during, "the build pod's log reached stderr during the build");
      const seen = await during;
      assert.ok(seen.url.startsWith(source.urlPrefix()), seen.url);
      assert.match(seen.url, /context-[0-9a-f]{64}\.tar\.gz$/);
      assert.ok(seen.bytes, `${seen.url} existed during the build`);
      const hex = createHash("sha256").update(seen.bytes).digest("hex");
      assert.ok(seen.url.endsWith(`context-${hex}.tar.gz`), "the key is the archive digest");
      const tar = gunzipSync(seen.bytes).toString("latin1");
      assert.ok(tar.includes("train.py"), "the context holds train.py");
      assert.ok(tar.includes(".fairing.Dockerfile"), "the context holds the Dockerfile");

      assert.deepEqual(api.problems, []);
      assert.equal(api.created.jobs.length, 1);
      const job = api.created.jobs[0] as any;
      const container = job.spec.template.spec.containers[0];
      const args: string[] = container.args;
      assert.ok(args.includes(`--destination=${result.image.split("@")[0]}`), args.join(" "));
      assert.ok(args.includes("--custom-platform=linux/amd64"), args.join(" "));
      assert.ok(args.includes("--label=team=ml"), args.join(" "));
      assert.ok(
        args.some((arg) => /^--label=dev\.fairing\.context-digest=sha256:[0-9a-f]{64}$/.test(arg)),
        args.join(" "),
      );
      source.checkPod(job.spec.template.spec);
      assert.equal(api.created.secrets.length, 1);
      assertNoSecrets(JSON.stringify(job), source, "the Job");

      assert.equal(api.objects("jobs").length, 0);
      assert.equal(api.objects("secrets").length, 0);
      assert.equal(api.objects("pods").length, 0);
      assert.equal(await source.read(seen.url), undefined, "the context object was deleted");
    });

    if (source.kind !== "azure") {
      test(`${source.kind} pod credentials off`, async (t) => {
        if (reason) return serviceUnavailable(t, reason);
        const file = await writeProject(`identity-${source.kind}`, source, [
          "podCredentials: false",
        ]);
        api.script({ outcome: "succeed", logs: ["INFO pushed"], digest: DIGEST });

        const run = await fairing(["apply", "--json", "-f", file]);

        assert.equal(run.code, 0, run.stderr);
        assert.equal(JSON.parse(run.stdout).digest, DIGEST);
        assert.deepEqual(api.problems, []);
        assert.equal(api.created.secrets.length, 0);
        const spec = (api.created.jobs[0] as any).spec.template.spec;
        assert.ok(!JSON.stringify(spec).includes("secretKeyRef"), JSON.stringify(spec));
        assert.equal(spec.volumes, undefined);
      });
    }

    test(`${source.kind} failing pod exits 1`, async (t) => {
      if (reason) return serviceUnavailable(t, reason);
      const file = await writeProject(`fail-${source.kind}`, source);
      api.script({
        outcome: "fail",
        logs: ["INFO resolving the base image", "error building image: RUN pip install failed"],
      });

      const run = await fairing(["apply", "-f", file]);

      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^fairing: build Job fairing-builder-\w+ failed/m);
      assert.match(run.stderr, /^  \| error building image: RUN pip install failed$/m);
      assert.equal(run.stdout, "");
      assertNoSecrets(run.stdout + run.stderr, source, "apply output");
      assert.equal(api.created.jobs.length, 1);
      assert.equal(api.objects("jobs").length, 0);
      assert.equal(api.objects("secrets").length, 0);
      const url = contextArg(api.created.jobs[0]);
      assert.equal(await source.read(url), undefined, "the context object was deleted");
    });

    test(`${source.kind} existing tag up to date`, async (t) => {
      if (reason) return serviceUnavailable(t, reason);
      const file = await writeProject(`current-${source.kind}`, source);
      api.script({ outcome: "succeed", logs: ["INFO pushed"], digest: DIGEST });
      const first = await fairing(["apply", "--json", "-f", file]);
      assert.equal(first.code, 0, first.stderr);
      const built = JSON.parse(first.stdout);
      assert.equal(built.upToDate, false);
      assert.equal(api.created.jobs.length, 1);

      // The executor is scripted and pushes nothing, so the image is put under the tag here,
      // with the build key label a real build writes (with `tag: auto` the tag is the key).
      const pushed = await pushBusyboxBase(registry!.host, `team/mnist-${source.kind}`, built.tag, {
        labels: { "dev.fairing.build-key": built.tag },
      });

      const plan = await fairing(["plan", "--json", "-f", file]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.equal(JSON.parse(plan.stdout).upToDate, true);
      const second = await fairing(["apply", "--json", "-f", file]);
      assert.equal(second.code, 0, second.stderr);
      const result = JSON.parse(second.stdout);
      assert.equal(result.upToDate, true);
      assert.equal(result.tag, built.tag);
      assert.equal(result.digest, pushed.manifestDigest);
      assert.deepEqual(result.steps, []);
      assert.equal(api.created.jobs.length, 1, "the second apply created no Job");
      assert.equal(api.created.secrets.length, 1, "only the first apply created a Secret");
      assertNoSecrets(second.stdout + second.stderr, source, "apply output");
    });
  });
}

describe("cluster config errors", () => {
  async function writeConfig(name: string, lines: string[]): Promise<string> {
    const root = join(dir, name);
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "train.py"), "print('x')\n");
    const file = join(root, "fairing.yaml");
    await writeFile(file, lines.join("\n") + "\n");
    return file;
  }

  const header = [
    "apiVersion: fairing/v1",
    "baseImage: 127.0.0.1:5000/base/python:3.12",
    "registry: 127.0.0.1:5000/team",
    "preprocessor:",
    "  inputFiles: [train.py]",
  ];

  test("missing contextSource", async () => {
    const file = await writeConfig("missing-source", [...header, "builder:", "  kind: cluster"]);
    const run = await fairing(["apply", "-f", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`${file}:7:9: contextSource: missing`));
  });

  test("unknown contextSource kind", async () => {
    const file = await writeConfig("unknown-kind", [
      ...header,
      "builder:",
      "  kind: cluster",
      "contextSource:",
      "  kind: dropbox",
      "  bucket: builds",
    ]);
    const run = await fairing(["plan", "-f", file]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      new RegExp(`${file}:9:9: contextSource\\.kind: must be one of gcs, s3, azure, minio`),
    );
  });

  test("wrong types", async () => {
    const file = await writeConfig("wrong-types", [
      ...header,
      "builder:",
      "  kind: cluster",
      "  timeoutSeconds: soon",
      "  cleanup: { job: maybe }",
      "contextSource:",
      "  kind: minio",
      "  endpoint: 9000",
      "  bucket: builds",
    ]);
    const run = await fairing(["validate", "-f", file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`${file}:8:19: builder\\.timeoutSeconds: `));
    assert.match(run.stderr, new RegExp(`${file}:9:19: builder\\.cleanup\\.job: `));
    assert.match(run.stderr, new RegExp(`${file}:12:13: contextSource\\.endpoint: `));
  });

  test("azure key missing", async () => {
    const file = await writeConfig("azure-key", [
      ...header,
      "builder:",
      "  kind: cluster",
      "contextSource:",
      "  kind: azure",
      "  account: acmebuilds",
      "  container: builds",
    ]);
    const names = [
      "AZURE_STORAGE_ACCESS_KEY",
      "AZURE_STORAGE_KEY",
      "AZURE_STORAGE_CONNECTION_STRING",
    ];
    const saved = names.map((name) => process.env[name]);
    for (const name of names) delete process.env[name];
    try {
      const run = await fairing(["plan", "-f", file]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /no key for Azure storage account acmebuilds/);
      assert.match(run.stderr, /AZURE_STORAGE_CONNECTION_STRING with AccountName=acmebuilds/);
    } finally {
      names.forEach((name, index) => {
        if (saved[index] !== undefined) process.env[name] = saved[index];
      });
    }
  });

  test("credential in contextSource", async () => {
    const file = await writeConfig("credential", [
      ...header,
      "builder:",
      "  kind: cluster",
      "contextSource:",
      "  kind: minio",
      "  endpoint: http://127.0.0.1:9000",
      "  bucket: builds",
      "  secretAccessKey: wJalrXUtnFEMIK7MDENGbPxRfiCY",
    ]);
    const run = await fairing(["plan", "--json", "-f", file]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      new RegExp(`${file}:12:20: contextSource\\.secretAccessKey: looks like a credential`),
    );
    assert.ok(!(run.stdout + run.stderr).includes("wJalrXUtnFEMIK7MDENGbPxRfiCY"));
  });
});
