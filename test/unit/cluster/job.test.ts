/** Unit tests of the build Job manifest, pod spec merging, object keys and field checks. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { contextObjectKey } from "../../../src/builders/cluster/context-source.ts";
import { importKubeClient } from "../../../src/kube/client.ts";
import { findUnknownFields } from "../../../src/kube/fields.ts";
import { buildJobManifest, executorArgs, mergePodSpec } from "../../../src/kube/job.ts";
import { dockerConfigJson } from "../../../src/kube/secrets.ts";

const args = {
  dockerfile: "Dockerfile",
  context: "s3://b/k.tar.gz",
  destination: "r/x:1",
  push: false,
  cache: true,
  cacheRepo: "r/cache",
  buildArgs: { B: "2", A: "1" },
};

test("executor args order", () => {
  assert.deepEqual(executorArgs(args), [
    "--dockerfile=Dockerfile",
    "--context=s3://b/k.tar.gz",
    "--destination=r/x:1",
    "--digest-file=/dev/termination-log",
    "--no-push",
    "--cache=true",
    "--cache-repo=r/cache",
    "--build-arg=A=1",
    "--build-arg=B=2",
  ]);
});

test("registry secret mounted", () => {
  const job = buildJobManifest({
    namespace: "ns",
    buildId: "abc",
    executorImage: "e:1",
    args,
    registrySecret: "push-creds",
  }) as any;
  const pod = job.spec.template.spec;
  assert.deepEqual(pod.volumes[0].secret, {
    secretName: "push-creds",
    items: [{ key: ".dockerconfigjson", path: "config.json" }],
  });
  assert.equal(pod.containers[0].volumeMounts[0].mountPath, "/kaniko/.docker");
});

test("mutator dropping executor rejected", () => {
  assert.throws(
    () =>
      buildJobManifest({
        namespace: "ns",
        buildId: "abc",
        executorImage: "e:1",
        args,
        mutators: [(spec) => ({ ...spec, containers: [] })],
      }),
    /lost its "kaniko" container/,
  );
});

test("merge by name", () => {
  const merged = mergePodSpec(
    { containers: [{ name: "a", image: "x", env: [{ name: "A", value: "1" }] }], volumes: [] },
    {
      containers: [{ name: "a", env: [{ name: "B", value: "2" }] }, { name: "b" }],
      hostNetwork: true,
    },
  );
  assert.deepEqual(merged, {
    containers: [
      {
        name: "a",
        image: "x",
        env: [
          { name: "A", value: "1" },
          { name: "B", value: "2" },
        ],
      },
      { name: "b" },
    ],
    volumes: [],
    hostNetwork: true,
  });
});

test("context object key", () => {
  assert.equal(
    contextObjectKey("p/", `sha256:${"a".repeat(64)}`),
    `p/context-${"a".repeat(64)}.tar.gz`,
  );
  assert.throws(() => contextObjectKey("p/", "md5:abc"), /invalid context archive digest/);
});

test("unknown fields found", async () => {
  const k8s = await importKubeClient();
  const job = buildJobManifest({ namespace: "ns", buildId: "a", executorImage: "e", args }) as any;
  assert.deepEqual(findUnknownFields(k8s, "V1Job", job), []);
  job.spec.template.spec.containers[0].volumeMount = [];
  job.metadata.label = {};
  assert.deepEqual(findUnknownFields(k8s, "V1Job", job).sort(), [
    "metadata.label",
    "spec.template.spec.containers[0].volumeMount",
  ]);
});

test("docker config json", () => {
  const text = dockerConfigJson("127.0.0.1:5000", { username: "u", password: "p4ssword" });
  assert.deepEqual(JSON.parse(text), {
    auths: { "127.0.0.1:5000": { auth: Buffer.from("u:p4ssword").toString("base64") } },
  });
});
