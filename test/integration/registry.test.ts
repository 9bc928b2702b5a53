import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { RegistryError } from "../../src/errors.ts";
import {
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  RegistryClient,
  selectPlatform,
  type Index,
} from "../../src/registry/index.ts";
import { serviceUnavailable, which } from "../services/common.ts";
import {
  digestOf,
  registryUnavailableReason,
  startRegistry,
  type RegistryOptions,
  type TestRegistry,
} from "../services/registry.ts";

const encoder = new TextEncoder();

/** Writes a one-file tar archive (ustar header, content, padding, end blocks). */
function tarOf(name: string, content: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  const put = (text: string, offset: number) => header.set(encoder.encode(text), offset);
  put(name, 0);
  put("0000644\0", 100);
  put("0000000\0", 108);
  put("0000000\0", 116);
  put(content.length.toString(8).padStart(11, "0") + "\0", 124);
  put("00000000000\0", 136);
  put("        ", 148);
  put("0", 156);
  put("ustar\0", 257);
  put("00", 263);
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  put(checksum.toString(8).padStart(6, "0") + "\0 ", 148);
  const padded = Math.ceil(content.length / 512) * 512;
  const tar = new Uint8Array(512 + padded + 1024);
  tar.set(header, 0);
  tar.set(content, 512);
  return tar;
}

/** Builds a tiny OCI image: one gzip layer, its config and the manifest. */
function tinyImage(text: string) {
  const tar = tarOf("hello.txt", encoder.encode(text));
  const layer = new Uint8Array(gzipSync(tar));
  const config = encoder.encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["cat", "/hello.txt"] },
      rootfs: { type: "layers", diff_ids: [digestOf(tar)] },
      history: [{ created_by: "fairing test" }],
    }),
  );
  const manifest = encoder.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: digestOf(layer), size: layer.length }],
    }),
  );
  return { layer, config, manifest };
}

function streamOf(bytes: Uint8Array, pieceSize = 5): () => ReadableStream<Uint8Array> {
  return () =>
    new ReadableStream({
      start(controller) {
        for (let offset = 0; offset < bytes.length; offset += pieceSize) {
          controller.enqueue(bytes.slice(offset, offset + pieceSize));
        }
        controller.close();
      },
    });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function pushImage(client: RegistryClient, repository: string, tag: string, text: string) {
  const image = tinyImage(text);
  for (const blob of [image.layer, image.config]) {
    await client.pushBlob(repository, digestOf(blob), blob.length, streamOf(blob));
  }
  const digest = await client.putManifest(repository, tag, image.manifest, OCI_MANIFEST);
  return { ...image, digest };
}

/** Starts a registry for a describe block; tests call `get(t)` and return when it is undefined. */
function useRegistry(options: RegistryOptions) {
  let registry: TestRegistry | undefined;
  let failure: string | undefined;
  before(async () => {
    failure = registryUnavailableReason(options);
    if (!failure) registry = await startRegistry(options);
  });
  after(async () => {
    await registry?.stop();
  });
  return (t: Parameters<typeof serviceUnavailable>[0]): TestRegistry | undefined => {
    if (!registry) serviceUnavailable(t, failure ?? "registry did not start");
    return registry;
  };
}

describe("registry anonymous", () => {
  const get = useRegistry({});

  test("push and pull image", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const image = await pushImage(client, "team/app", "v1", "hello");

    const fetched = await client.getManifest("team/app", "v1");
    assert.equal(fetched.digest, image.digest);
    assert.equal(fetched.mediaType, OCI_MANIFEST);
    assert.deepEqual(fetched.bytes, image.manifest);
    const layer = await readAll(await client.getBlob("team/app", digestOf(image.layer)));
    assert.deepEqual(layer, image.layer);
    const config = await client.getBlobBytes("team/app", digestOf(image.config));
    assert.deepEqual(config, image.config);
  });

  test("manifest by digest", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const image = await pushImage(client, "team/bydigest", "v1", "by digest");
    const fetched = await client.getManifest("team/bydigest", image.digest);
    assert.equal(fetched.digest, image.digest);
  });

  test("head manifest", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const image = await pushImage(client, "team/head", "v1", "head");
    const head = await client.headManifest("team/head", "v1");
    assert.equal(head?.digest, image.digest);
    assert.equal(head?.mediaType, OCI_MANIFEST);
    assert.equal(head?.size, image.manifest.length);
    assert.equal(await client.headManifest("team/head", "missing"), undefined);
  });

  test("has blob", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const image = await pushImage(client, "team/blobs", "v1", "blobs");
    assert.equal(await client.hasBlob("team/blobs", digestOf(image.layer)), true);
    assert.equal(await client.hasBlob("team/blobs", digestOf("absent")), false);
  });

  test("push blob twice", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("twice");
    const first = await client.pushBlob("team/twice", digestOf(blob), blob.length, streamOf(blob));
    const second = await client.pushBlob("team/twice", digestOf(blob), blob.length, streamOf(blob));
    assert.equal(first, "uploaded");
    assert.equal(second, "exists");
  });

  test("cross-repository mount", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("mount me");
    await client.uploadBlob("base/busybox", digestOf(blob), blob.length, streamOf(blob));
    const result = await client.pushBlob(
      "team/mounted",
      digestOf(blob),
      blob.length,
      streamOf(blob),
      {
        from: "base/busybox",
      },
    );
    assert.equal(result, "mounted");
    assert.equal(await client.hasBlob("team/mounted", digestOf(blob)), true);
  });

  test("mount of unknown blob", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    assert.equal(await client.mountBlob("team/x", digestOf("nowhere"), "base/busybox"), false);
  });

  test("refused mount uploads", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("not in the base");
    const result = await client.pushBlob(
      "team/fallback",
      digestOf(blob),
      blob.length,
      streamOf(blob),
      {
        from: "base/busybox",
      },
    );
    assert.equal(result, "uploaded");
    assert.equal(await client.hasBlob("team/fallback", digestOf(blob)), true);
  });

  test("chunked upload", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null, chunkSize: 7 });
    const blob = encoder.encode("a blob of 40 bytes split into 7-byte..!!");
    const progress: number[] = [];
    await client.uploadBlob("team/chunked", digestOf(blob), blob.length, streamOf(blob, 3), {
      onProgress: (bytes) => progress.push(bytes),
    });
    assert.deepEqual(progress, [7, 14, 21, 28, 35, 40]);
    assert.deepEqual(await client.getBlobBytes("team/chunked", digestOf(blob)), blob);
  });

  test("streaming upload commits digest", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("streamed while it was produced, in uneven pieces");
    const upload = await client.startStreamingUpload("team/streamed");
    await upload.write(blob.subarray(0, 5));
    await upload.write(blob.subarray(5, 30));
    await upload.write(blob.subarray(30));
    const committed = await upload.finish(digestOf(blob));
    assert.equal(committed.size, blob.length);
    assert.deepEqual(await client.getBlobBytes("team/streamed", digestOf(blob)), blob);
  });

  test("streaming upload wrong digest", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const upload = await client.startStreamingUpload("team/streamed");
    await upload.write(encoder.encode("the bytes that were sent"));
    await assert.rejects(upload.finish(digestOf("other bytes")), /DIGEST_INVALID|digest/i);
    assert.equal(await client.hasBlob("team/streamed", digestOf("other bytes")), false);
  });

  test("upload from async iterable", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("iterable content");
    async function* pieces() {
      yield blob.subarray(0, 4);
      yield blob.subarray(4);
    }
    await client.uploadBlob("team/iterable", digestOf(blob), blob.length, pieces);
    assert.equal(await client.hasBlob("team/iterable", digestOf(blob)), true);
  });

  test("upload with wrong digest", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("actual content");
    const claimed = digestOf("other content");
    await assert.rejects(
      client.uploadBlob("team/wrong", claimed, blob.length, streamOf(blob)),
      /has digest sha256:[0-9a-f]{64}, sha256:[0-9a-f]{64} declared/,
    );
    assert.equal(await client.hasBlob("team/wrong", claimed), false);
  });

  test("upload with wrong size", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("twelve bytes");
    await assert.rejects(
      client.uploadBlob("team/size", digestOf(blob), blob.length + 1, streamOf(blob)),
      /has 12 bytes, 13 declared/,
    );
  });

  test("index and platform", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const amd = await pushImage(client, "team/multi", "amd64", "amd64");
    const arm = await pushImage(client, "team/multi", "arm64", "arm64");
    const index: Index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: amd.digest,
          size: amd.manifest.length,
          platform: { os: "linux", architecture: "amd64" },
        },
        {
          mediaType: OCI_MANIFEST,
          digest: arm.digest,
          size: arm.manifest.length,
          platform: { os: "linux", architecture: "arm64", variant: "v8" },
        },
      ],
    };
    await client.putManifest(
      "team/multi",
      "latest",
      encoder.encode(JSON.stringify(index)),
      OCI_INDEX,
    );
    const fetched = await client.getManifest("team/multi", "latest");
    assert.equal(fetched.mediaType, OCI_INDEX);
    const parsed = JSON.parse(new TextDecoder().decode(fetched.bytes)) as Index;
    assert.equal(selectPlatform(parsed, "linux/arm64").digest, arm.digest);
  });

  test("missing manifest error", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const error = await client.getManifest("team/none", "v9").catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 404);
    assert.equal(error.code, "MANIFEST_UNKNOWN");
    assert.match(error.message, /image not found/);
    assert.match(error.message, new RegExp(`${registry.host}/team/none:v9`));
  });

  test("skopeo reads pushed image", async (t) => {
    const registry = get(t);
    if (!registry) return;
    if (!which("skopeo")) return serviceUnavailable(t, "skopeo is not installed");
    const client = new RegistryClient(registry.host, { credential: null });
    const image = await pushImage(client, "team/skopeo", "v1", "skopeo");
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        "skopeo",
        ["inspect", "--tls-verify=false", "--raw", `docker://${registry.host}/team/skopeo:v1`],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    assert.equal(output.trim(), new TextDecoder().decode(image.manifest));
  });
});

describe("registry htpasswd", () => {
  const get = useRegistry({ auth: "htpasswd" });

  test("right password pushes", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, {
      credential: { username: registry.username, password: registry.password },
    });
    const image = await pushImage(client, "team/basic", "v1", "basic");
    const head = await client.headManifest("team/basic", "v1");
    assert.equal(head?.digest, image.digest);
  });

  test("wrong password fails", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const wrong = "wrong-password-value";
    const client = new RegistryClient(registry.host, {
      credential: { username: registry.username, password: wrong },
    });
    const error = await client
      .hasBlob("team/basic", digestOf("x"))
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 401);
    assert.match(error.message, new RegExp(`docker login ${registry.host}`));
    assert.equal(error.message.includes(wrong), false);
    assert.equal(error.message.includes("Basic "), false);
  });

  test("anonymous fails", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    await assert.rejects(client.getManifest("team/basic", "v1"), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 401);
      assert.equal(error.code, "UNAUTHORIZED");
      return true;
    });
  });
});

describe("registry token auth", () => {
  const get = useRegistry({ auth: "token" });

  test("password grant pushes", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, {
      credential: { username: registry.username, password: registry.password },
    });
    const image = await pushImage(client, "team/token", "v1", "token");
    const fetched = await client.getManifest("team/token", "v1");
    assert.equal(fetched.digest, image.digest);
    const scopes = registry.tokenRequests.flatMap((request) => request.scopes);
    assert.ok(scopes.includes("repository:team/token:pull,push"));
    assert.ok(
      registry.tokenRequests.every((request) => request.service === "fairing-test-registry"),
    );
  });

  test("tokens are cached", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, {
      credential: { username: registry.username, password: registry.password },
    });
    await pushImage(client, "team/cached", "v1", "cached");
    const before = registry.tokenRequests.length;
    await client.headManifest("team/cached", "v1");
    await client.hasBlob("team/cached", digestOf("x"));
    assert.equal(registry.tokenRequests.length, before);
  });

  test("identity token grant", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, {
      credential: { identityToken: registry.identityToken },
    });
    const image = await pushImage(client, "team/identity", "v1", "identity");
    assert.equal((await client.headManifest("team/identity", "v1"))?.digest, image.digest);
    const grants = registry.tokenRequests.filter(
      (request) => request.grantType === "refresh_token",
    );
    assert.ok(grants.length > 0);
    assert.equal(grants[0]?.method, "POST");
  });

  test("cross-repository mount", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, {
      credential: { username: registry.username, password: registry.password },
    });
    const blob = encoder.encode("token mount");
    await client.uploadBlob("base/image", digestOf(blob), blob.length, streamOf(blob));
    const result = await client.pushBlob(
      "team/mount",
      digestOf(blob),
      blob.length,
      streamOf(blob),
      {
        from: "base/image",
      },
    );
    assert.equal(result, "mounted");
    const mountRequest = registry.tokenRequests.at(-1);
    assert.deepEqual(mountRequest?.scopes, [
      "repository:team/mount:pull,push",
      "repository:base/image:pull",
    ]);
  });

  test("anonymous push fails", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const blob = encoder.encode("anonymous");
    const error = await client
      .uploadBlob("team/anon", digestOf(blob), blob.length, streamOf(blob))
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 401);
  });

  test("wrong password fails", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const wrong = "wrong-token-password";
    const client = new RegistryClient(registry.host, {
      credential: { username: registry.username, password: wrong },
    });
    const error = await client
      .hasBlob("team/token", digestOf("x"))
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 401);
    assert.match(error.message, /token request/);
    assert.match(error.message, new RegExp(`docker login ${registry.host}`));
    assert.equal(error.message.includes(wrong), false);
  });
});

describe("registry tls", () => {
  const get = useRegistry({ tls: true });

  test("untrusted certificate error", async (t) => {
    const registry = get(t);
    if (!registry) return;
    const client = new RegistryClient(registry.host, { credential: null });
    const error = await client
      .hasBlob("team/tls", digestOf("x"))
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.match(error.message, new RegExp(`TLS connection to https://${registry.host} failed`));
    assert.match(error.message, /CA certificate/);
  });
});
