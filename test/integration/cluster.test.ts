/**
 * The cluster builder against the project's Kubernetes API test server (scripted build pods)
 * with the context uploaded to s3rver through the MinIO context source.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ClusterBuilder, type ClusterBuilderOptions } from "../../src/builders/cluster/builder.ts";
import { MinioContextSource } from "../../src/builders/cluster/s3.ts";
import { BasePreProcessor } from "../../src/context/preprocessor.ts";
import { BuildError, InputError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { startKubeApi, type KubeApiServer } from "../services/kube-api.ts";
import { startS3rver, type S3rver } from "../services/s3rver.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("ClusterBuilder on the test API server", () => {
  let api: KubeApiServer;
  let s3: S3rver | undefined;
  let reason = "";
  let dir: string;
  let lines: string[];

  before(async () => {
    const started = await startS3rver();
    if ("unavailable" in started) reason = started.unavailable;
    else s3 = started;
    dir = await makeTempDir("cluster");
    await mkdir(join(dir, "project"));
    await writeFile(join(dir, "project", "train.py"), "print('training')\n");
  });
  after(async () => {
    await s3?.stop();
    await removeDir(dir);
  });
  beforeEach(async () => {
    await api?.stop();
    api = await startKubeApi();
    lines = [];
  });
  after(async () => {
    await api?.stop();
  });

  function builder(overrides: Partial<ClusterBuilderOptions> = {}): ClusterBuilder {
    return new ClusterBuilder({
      preprocessor: new BasePreProcessor({ root: join(dir, "project"), inputFiles: ["train.py"] }),
      baseImage: "127.0.0.1:5000/base/python:3.12",
      registry: "127.0.0.1:5000/team",
      imageName: "mnist",
      contextSource: new MinioContextSource({
        endpoint: s3!.endpoint,
        bucket: "builds",
        credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
      }),
      executorImage: "127.0.0.1:5000/tools/executor:1",
      kubeconfig: api.kubeconfig,
      timeoutSeconds: 10,
      startTimeoutSeconds: 1,
      logger: createLogger({ level: "debug", write: (line) => lines.push(line) }),
      ...overrides,
    });
  }

  test("job shape", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "succeed", logs: ["INFO pushed"], digest: DIGEST });
    const result = await builder({ buildArgs: { PIP_INDEX: "http://127.0.0.1:1/simple" } }).build({
      tag: "v1",
    });
    assert.equal(result.tag, "v1");
    assert.deepEqual(api.problems, []);
    const job = api.created.jobs[0] as any;
    assert.equal(job.metadata.generateName, "fairing-builder-");
    assert.equal(job.metadata.namespace, "builds");
    assert.equal(job.metadata.labels["fairing-builder"], "");
    assert.match(job.metadata.labels["fairing-build-id"], /^[0-9a-f]{12}$/);
    assert.equal(job.metadata.annotations["sidecar.istio.io/inject"], "false");
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(job.spec.activeDeadlineSeconds, 10);
    assert.equal(job.spec.template.metadata.annotations["sidecar.istio.io/inject"], "false");
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, "Never");
    const container = pod.containers[0];
    assert.equal(container.name, "kaniko");
    assert.equal(container.image, "127.0.0.1:5000/tools/executor:1");
    assert.equal(container.args[0], "--dockerfile=.fairing.Dockerfile");
    assert.match(
      container.args[1],
      /^--context=s3:\/\/builds\/fairing-builds\/context-[0-9a-f]{64}\.tar\.gz$/,
    );
    assert.equal(container.args[2], "--destination=127.0.0.1:5000/team/mnist:v1");
    assert.equal(container.args[3], "--digest-file=/dev/termination-log");
    assert.ok(container.args.includes("--build-arg=PIP_INDEX=http://127.0.0.1:1/simple"));
    assert.ok(!container.args.includes("--no-push"));
    const env = Object.fromEntries(container.env.map((v: any) => [v.name, v]));
    assert.equal(env.S3_ENDPOINT.value, s3.endpoint);
    assert.equal(env.S3_FORCE_PATH_STYLE.value, "true");
    assert.match(env.AWS_SECRET_ACCESS_KEY.valueFrom.secretKeyRef.name, /^fairing-context-/);
    assert.ok(
      !JSON.stringify(job).includes(s3.secretAccessKey + '"'),
      "no secret value in the Job",
    );
  });

  test("success returns digest", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "succeed", logs: ["INFO step 1", "INFO step 2"], digest: DIGEST });
    const result = await builder().build({ tag: "v2" });
    assert.equal(result.digest, DIGEST);
    assert.equal(result.image, `127.0.0.1:5000/team/mnist:v2@${DIGEST}`);
    assert.ok(
      lines.some((line) => line.endsWith("INFO step 2")),
      lines.join("\n"),
    );
    const jobName = api.created.jobs.length && api.deletions.find((d) => d.startsWith("jobs/"));
    assert.match(String(jobName), /^jobs\/fairing-builder-\w+\?propagationPolicy=Foreground$/);
    assert.equal(api.objects("jobs").length, 0);
    assert.equal(api.objects("secrets").length, 0);
    assert.equal(api.objects("pods").length, 0);
  });

  test("pod spec mutators applied", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "succeed", logs: [], digest: DIGEST });
    await builder({
      podSpec: {
        nodeSelector: { pool: "build" },
        containers: [{ name: "kaniko", resources: { limits: { cpu: "2" } } }],
      },
      podSpecMutators: [(spec) => ({ ...spec, serviceAccountName: "builder" })],
    }).build({ tag: "v3" });
    const pod = (api.created.jobs[0] as any).spec.template.spec;
    assert.deepEqual(pod.nodeSelector, { pool: "build" });
    assert.equal(pod.serviceAccountName, "builder");
    assert.deepEqual(pod.containers[0].resources, { limits: { cpu: "2" } });
    assert.equal(pod.containers[0].image, "127.0.0.1:5000/tools/executor:1");
    assert.deepEqual(api.problems, []);
  });

  test("unknown pod spec field", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    await assert.rejects(
      builder({ podSpec: { nodeSelecter: { pool: "x" } } }).build({ tag: "v4" }),
      (error: Error) => {
        assert.ok(error instanceof InputError);
        assert.match(error.message, /spec\.template\.spec\.nodeSelecter/);
        return true;
      },
    );
    assert.equal(api.created.jobs.length, 0);
    assert.equal(api.objects("secrets").length, 0);
  });

  test("failed build log tail", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({
      outcome: "fail",
      logs: ["INFO resolving", "error building image: RUN pip failed"],
    });
    await assert.rejects(builder().build({ tag: "v5" }), (error: Error) => {
      assert.ok(error instanceof BuildError);
      assert.match(error.message, /failed: the executor exited with code 1/);
      assert.match(error.message, /RUN pip failed/);
      assert.equal(error.outputTail.at(-1), "error building image: RUN pip failed");
      return true;
    });
    assert.equal(api.objects("jobs").length, 0);
    assert.equal(api.objects("secrets").length, 0);
  });

  test("pod never starts", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({
      outcome: "pending",
      reason: "ImagePullBackOff",
      message: 'Back-off pulling image "x"',
    });
    await assert.rejects(builder().build({ tag: "v6" }), (error: Error) => {
      assert.ok(error instanceof BuildError);
      assert.match(error.message, /did not start within startTimeoutSeconds 1/);
      assert.match(error.message, /ImagePullBackOff: Back-off pulling image "x"/);
      return true;
    });
    assert.equal(api.objects("jobs").length, 0);
  });

  test("409 conflict retried", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.conflictNextJobs(1);
    api.script({ outcome: "succeed", logs: [], digest: DIGEST });
    const result = await builder().build({ tag: "v7" });
    assert.equal(result.digest, DIGEST);
    assert.equal(api.created.jobs.length, 1);
  });

  test("dropped watch resumed", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "succeed", logs: ["a", "b", "c"], digest: DIGEST, delayMs: 150 });
    const timer = setInterval(() => api.dropWatches(), 200);
    try {
      const result = await builder().build({ tag: "v8" });
      assert.equal(result.digest, DIGEST);
    } finally {
      clearInterval(timer);
    }
    assert.ok(api.watchCount.jobs >= 2, `job watches: ${api.watchCount.jobs}`);
  });

  test("expired watch relists", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "succeed", logs: ["a", "b"], digest: DIGEST, delayMs: 150 });
    const timer = setTimeout(() => {
      api.expireHistory();
      api.dropWatches();
    }, 250);
    try {
      const result = await builder().build({ tag: "v9" });
      assert.equal(result.digest, DIGEST);
    } finally {
      clearTimeout(timer);
    }
    assert.ok(
      lines.some((line) => line.includes("410 Gone")),
      lines.join("\n"),
    );
  });

  test("abort cleans up", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "pending", reason: "ContainerCreating", message: "" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("interrupted")), 400);
    await assert.rejects(
      builder({ startTimeoutSeconds: 30 }).build({ tag: "v10", signal: controller.signal }),
      /interrupted/,
    );
    assert.equal(api.objects("jobs").length, 0);
    assert.equal(api.objects("secrets").length, 0);
    assert.ok(api.deletions.some((d) => d.startsWith("secrets/fairing-context-")));
  });

  test("registry secret created", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const config = join(dir, "docker");
    await mkdir(config, { recursive: true });
    const auth = Buffer.from("pusher:push-password-1").toString("base64");
    await writeFile(
      join(config, "config.json"),
      JSON.stringify({ auths: { "127.0.0.1:5000": { auth } } }),
    );
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = config;
    try {
      api.script({ outcome: "succeed", logs: [], digest: DIGEST });
      await builder({ createRegistrySecret: true }).build({ tag: "v11" });
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
    }
    const secret = api.created.secrets.find(
      (s: any) => s.type === "kubernetes.io/dockerconfigjson",
    ) as any;
    assert.ok(secret, "a dockerconfigjson Secret was created");
    assert.equal(
      JSON.parse(secret.stringData[".dockerconfigjson"]).auths["127.0.0.1:5000"].auth,
      auth,
    );
    const pod = (api.created.jobs[0] as any).spec.template.spec;
    assert.equal(pod.volumes[0].secret.secretName.startsWith("fairing-registry-"), true);
    assert.ok(!JSON.stringify(api.created.jobs[0]).includes(auth));
    assert.equal(api.objects("secrets").length, 0);
  });

  test("build timeout", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    api.script({ outcome: "succeed", logs: ["slow"], digest: DIGEST, delayMs: 2000 });
    await assert.rejects(builder({ timeoutSeconds: 1 }).build({ tag: "v12" }), (error: Error) => {
      assert.ok(error instanceof BuildError);
      assert.match(error.message, /did not finish within timeoutSeconds 1/);
      return true;
    });
    assert.equal(api.objects("jobs").length, 0);
  });
});
