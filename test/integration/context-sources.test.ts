/**
 * The cluster builder's context sources against real storage services on 127.0.0.1: s3rver
 * (S3 and MinIO-style), Azurite (Azure Blob) and the firebase-tools Cloud Storage emulator.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import { AzureBlobContextSource } from "../../src/builders/cluster/azure.ts";
import { GcsContextSource } from "../../src/builders/cluster/gcs.ts";
import { MinioContextSource, S3ContextSource } from "../../src/builders/cluster/s3.ts";
import { FairingError } from "../../src/errors.ts";
import type { ProgressEvent } from "../../src/log.ts";
import { redact } from "../../src/log.ts";
import { startAzurite, type Azurite } from "../services/azurite.ts";
import { makeTempDir, removeDir, serviceUnavailable } from "../services/common.ts";
import { startGcsEmulator, type GcsEmulator } from "../services/gcs.ts";
import { startS3rver, type S3rver } from "../services/s3rver.ts";

interface Archive {
  path: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

async function makeArchive(dir: string, name: string, size = 4096): Promise<Archive> {
  const bytes = gzipSync(randomBytes(size), { level: 0 });
  const path = join(dir, `${name}.tar.gz`);
  await writeFile(path, bytes);
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  return { path, digest, size: bytes.length, bytes };
}

function hexOf(digest: string): string {
  return digest.slice("sha256:".length);
}

let dir: string;
before(async () => {
  dir = await makeTempDir("ctxsrc");
});
after(async () => {
  await removeDir(dir);
});

describe("S3ContextSource on s3rver", () => {
  let s3: S3rver | undefined;
  let reason = "";
  before(async () => {
    const started = await startS3rver();
    if ("unavailable" in started) reason = started.unavailable;
    else s3 = started;
  });
  after(async () => {
    await s3?.stop();
  });

  function source(
    bucket: string,
    extra: Partial<{
      accessKeyId: string;
      secretAccessKey: string;
      createBucket: boolean;
      partSize: number;
    }> = {},
  ) {
    return new MinioContextSource({
      endpoint: s3!.endpoint,
      bucket,
      region: "us-east-1",
      credentials: {
        accessKeyId: extra.accessKeyId ?? s3!.accessKeyId,
        secretAccessKey: extra.secretAccessKey ?? s3!.secretAccessKey,
      },
      ...(extra.createBucket === undefined ? {} : { createBucket: extra.createBucket }),
      ...(extra.partSize === undefined ? {} : { partSize: extra.partSize }),
    });
  }

  function client(): S3Client {
    return new S3Client({
      endpoint: s3!.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  async function download(bucket: string, key: string): Promise<Buffer> {
    const response = await client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }

  test("s3 upload creates bucket", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "s3-upload");
    const events: ProgressEvent[] = [];
    const prepared = await source("builds-a").prepare(archive.path, {
      digest: archive.digest,
      size: archive.size,
      onProgress: (event) => events.push(event),
    });
    assert.equal(
      prepared.url,
      `s3://builds-a/fairing-builds/context-${hexOf(archive.digest)}.tar.gz`,
    );
    assert.equal(prepared.uploaded, true);
    assert.deepEqual(await download("builds-a", prepared.key), archive.bytes);
    assert.ok(events.some((event) => event.status === "done"));
  });

  test("s3 reuses existing object", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "s3-reuse");
    await source("builds-b").prepare(archive.path, { digest: archive.digest });
    const again = source("builds-b");
    const prepared = await again.prepare(archive.path, { digest: archive.digest });
    assert.equal(prepared.uploaded, false);
    await again.cleanup();
    assert.deepEqual(await download("builds-b", prepared.key), archive.bytes);
  });

  test("s3 cleanup deletes upload", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "s3-cleanup");
    const context = source("builds-c");
    const prepared = await context.prepare(archive.path, { digest: archive.digest });
    await context.cleanup();
    await assert.rejects(download("builds-c", prepared.key), (error: Error) => {
      return error.name === "NoSuchKey";
    });
  });

  test("s3 multipart stream upload", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "s3-multipart", 12 * 1024 * 1024);
    const { Readable } = await import("node:stream");
    const stream = Readable.from([
      archive.bytes.subarray(0, 7_000_000),
      archive.bytes.subarray(7_000_000),
    ]);
    const prepared = await source("builds-d", { partSize: 5 * 1024 * 1024 }).prepare(stream, {
      digest: archive.digest,
      size: archive.size,
    });
    const stored = await download("builds-d", prepared.key);
    assert.equal(stored.length, archive.size);
    assert.equal(createHash("sha256").update(stored).digest("hex"), hexOf(archive.digest));
  });

  test("s3 wrong credential", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "s3-denied");
    // s3rver checks the access key id but not SigV4 signatures, so the key id is the wrong part.
    const wrong = "not-the-right-secret-key";
    await assert.rejects(
      source("builds-e", { accessKeyId: "UNKNOWNKEY", secretAccessKey: wrong }).prepare(
        archive.path,
        { digest: archive.digest },
      ),
      (error: Error) => {
        assert.ok(error instanceof FairingError);
        assert.match(error.message, /credentials/);
        assert.match(error.message, /HTTP 403/);
        assert.ok(!redact(error.message).includes(wrong));
        return true;
      },
    );
  });

  test("s3 missing bucket rejected", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "s3-missing");
    await assert.rejects(
      source("no-such-bucket", { createBucket: false }).prepare(archive.path, {
        digest: archive.digest,
      }),
      /bucket no-such-bucket does not exist/,
    );
  });

  test("minio pod spec env", async (t) => {
    if (!s3) return serviceUnavailable(t, reason);
    const context = source("builds-f");
    const data = await context.secretData();
    assert.equal(data?.AWS_ACCESS_KEY_ID, s3.accessKeyId);
    assert.equal(data?.AWS_SECRET_ACCESS_KEY, s3.secretAccessKey);
    const spec = context.podSpec({ containers: [{ name: "kaniko" }] }, { secretName: "ctx" });
    const env = spec.containers[0]!.env ?? [];
    assert.deepEqual(
      env.find((v) => v.name === "S3_ENDPOINT"),
      { name: "S3_ENDPOINT", value: s3.endpoint },
    );
    assert.deepEqual(
      env.find((v) => v.name === "S3_FORCE_PATH_STYLE"),
      { name: "S3_FORCE_PATH_STYLE", value: "true" },
    );
    assert.deepEqual(
      env.find((v) => v.name === "AWS_SECRET_ACCESS_KEY"),
      {
        name: "AWS_SECRET_ACCESS_KEY",
        valueFrom: { secretKeyRef: { name: "ctx", key: "AWS_SECRET_ACCESS_KEY" } },
      },
    );
  });

  test("s3 default bucket name", () => {
    const context = new S3ContextSource({ account: "123456789012", region: "eu-west-1" });
    assert.equal(context.bucket, "fairing-123456789012-eu-west-1");
    assert.throws(() => new S3ContextSource({}), /contextSource\.bucket is missing/);
  });
});

describe("AzureBlobContextSource on Azurite", () => {
  let azurite: Azurite | undefined;
  let reason = "";
  before(async () => {
    const started = await startAzurite();
    if ("unavailable" in started) reason = started.unavailable;
    else azurite = started;
  });
  after(async () => {
    await azurite?.stop();
  });

  function source(container: string, key?: string) {
    return new AzureBlobContextSource({
      account: azurite!.account,
      container,
      endpoint: azurite!.endpoint,
      accountKey: key ?? azurite!.key,
    });
  }

  async function download(container: string, blob: string): Promise<Buffer | undefined> {
    const service = new BlobServiceClient(
      azurite!.endpoint,
      new StorageSharedKeyCredential(azurite!.account, azurite!.key),
    );
    const client = service.getContainerClient(container).getBlobClient(blob);
    if (!(await client.exists())) return undefined;
    return await client.downloadToBuffer();
  }

  test("azure upload creates container", async (t) => {
    if (!azurite) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "az-upload");
    const prepared = await source("builds-a").prepare(archive.path, { digest: archive.digest });
    assert.equal(prepared.uploaded, true);
    assert.equal(
      prepared.url,
      `${azurite.endpoint}/builds-a/fairing-builds/context-${hexOf(archive.digest)}.tar.gz`,
    );
    assert.deepEqual(await download("builds-a", prepared.key), archive.bytes);
  });

  test("azure reuses existing blob", async (t) => {
    if (!azurite) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "az-reuse");
    await source("builds-b").prepare(archive.path, { digest: archive.digest });
    const prepared = await source("builds-b").prepare(archive.path, { digest: archive.digest });
    assert.equal(prepared.uploaded, false);
  });

  test("azure cleanup deletes upload", async (t) => {
    if (!azurite) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "az-cleanup");
    const context = source("builds-c");
    const prepared = await context.prepare(archive.path, { digest: archive.digest });
    await context.cleanup();
    assert.equal(await download("builds-c", prepared.key), undefined);
  });

  test("azure wrong credential", async (t) => {
    if (!azurite) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "az-denied");
    const wrong = Buffer.from("wrong-key-wrong-key-wrong-key").toString("base64");
    await assert.rejects(
      source("builds-d", wrong).prepare(archive.path, { digest: archive.digest }),
      (error: Error) => {
        assert.ok(error instanceof FairingError);
        assert.match(error.message, /HTTP 403/);
        assert.match(error.message, /AZURE_STORAGE_ACCESS_KEY/);
        assert.ok(!redact(error.message).includes(wrong));
        return true;
      },
    );
  });

  test("azure missing container rejected", async (t) => {
    if (!azurite) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "az-missing");
    const context = new AzureBlobContextSource({
      account: azurite.account,
      container: "no-such-container",
      endpoint: azurite.endpoint,
      accountKey: azurite.key,
      createContainer: false,
    });
    await assert.rejects(
      context.prepare(archive.path, { digest: archive.digest }),
      /ContainerNotFound/,
    );
  });

  test("azure pod spec secret env", async (t) => {
    if (!azurite) return serviceUnavailable(t, reason);
    const context = source("builds-e");
    assert.deepEqual(await context.secretData(), { AZURE_STORAGE_ACCESS_KEY: azurite.key });
    const spec = context.podSpec({ containers: [{ name: "kaniko" }] }, { secretName: "ctx" });
    assert.deepEqual(spec.containers[0]!.env, [
      {
        name: "AZURE_STORAGE_ACCESS_KEY",
        valueFrom: { secretKeyRef: { name: "ctx", key: "AZURE_STORAGE_ACCESS_KEY" } },
      },
    ]);
  });
});

describe("GcsContextSource on the Cloud Storage emulator", () => {
  let gcs: GcsEmulator | undefined;
  let reason = "";
  before(async () => {
    const started = await startGcsEmulator();
    if ("unavailable" in started) reason = started.unavailable;
    else gcs = started;
  });
  after(async () => {
    await gcs?.stop();
  });

  function source(bucket: string) {
    return new GcsContextSource({ bucket, project: gcs!.projectId, endpoint: gcs!.endpoint });
  }

  async function download(bucket: string, key: string): Promise<Buffer | undefined> {
    const storage = new Storage({ apiEndpoint: gcs!.endpoint, projectId: gcs!.projectId });
    const file = storage.bucket(bucket).file(key);
    const [exists] = await file.exists();
    if (!exists) return undefined;
    const [bytes] = await file.download();
    return bytes;
  }

  test("gcs upload to new bucket", async (t) => {
    if (!gcs) return serviceUnavailable(t, reason);
    // The emulator answers 501 to bucket creation and creates a bucket on its first upload.
    const archive = await makeArchive(dir, "gcs-upload");
    const prepared = await source("builds-a").prepare(archive.path, {
      digest: archive.digest,
      size: archive.size,
    });
    assert.equal(
      prepared.url,
      `gs://builds-a/fairing-builds/context-${hexOf(archive.digest)}.tar.gz`,
    );
    assert.equal(prepared.uploaded, true);
    assert.deepEqual(await download("builds-a", prepared.key), archive.bytes);
  });

  test("gcs resumable stream upload", async (t) => {
    if (!gcs) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "gcs-resumable", 64 * 1024);
    const { createReadStream } = await import("node:fs");
    const prepared = await source("builds-b").prepare(createReadStream(archive.path), {
      digest: archive.digest,
    });
    assert.deepEqual(await download("builds-b", prepared.key), archive.bytes);
  });

  test("gcs reuses existing object", async (t) => {
    if (!gcs) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "gcs-reuse");
    await source("builds-c").prepare(archive.path, { digest: archive.digest, size: archive.size });
    const prepared = await source("builds-c").prepare(archive.path, { digest: archive.digest });
    assert.equal(prepared.uploaded, false);
  });

  test("gcs cleanup deletes upload", async (t) => {
    if (!gcs) return serviceUnavailable(t, reason);
    const archive = await makeArchive(dir, "gcs-cleanup");
    const context = source("builds-d");
    const prepared = await context.prepare(archive.path, {
      digest: archive.digest,
      size: archive.size,
    });
    await context.cleanup();
    assert.equal(await download("builds-d", prepared.key), undefined);
  });

  test("gcs key file in secret", async (t) => {
    if (!gcs) return serviceUnavailable(t, reason);
    // NOTE: the emulator accepts any credential, so a wrong key cannot be tested against it.
    const keyFile = join(dir, "key.json");
    await writeFile(
      keyFile,
      JSON.stringify({ type: "service_account", private_key: "pem-key-text" }),
    );
    const context = new GcsContextSource({ bucket: "b", keyFilename: keyFile });
    const data = await context.secretData();
    assert.equal(JSON.parse(data!["kaniko-secret.json"]!).private_key, "pem-key-text");
    assert.equal(redact("pem-key-text"), "***");
    const spec = context.podSpec({ containers: [{ name: "kaniko" }] }, { secretName: "ctx" });
    assert.deepEqual(spec.volumes, [{ name: "gcs-credentials", secret: { secretName: "ctx" } }]);
    assert.deepEqual(spec.containers[0]!.env, [
      { name: "GOOGLE_APPLICATION_CREDENTIALS", value: "/secret/kaniko-secret.json" },
    ]);
  });
});
