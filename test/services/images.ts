/**
 * Base images for tests, built locally from Debian's busybox-static and written with the
 * project's own registry client or into an OCI image layout: nothing is pulled from outside.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { RegistryClient } from "../../src/registry/client.ts";
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
} from "../../src/registry/manifest.ts";
import { makeTempDir, removeDir } from "./common.ts";
import { writeBusyboxRootfs, type BusyboxRootfsOptions } from "./dockerd.ts";

/** Options of the base image builders. */
export interface BaseImageOptions extends BusyboxRootfsOptions {
  /** Media type family; default `oci`. */
  format?: "oci" | "docker";
  /** Wrap the image in an index (manifest list) that also lists a linux/arm64 image. */
  index?: boolean;
  /** Extra environment in the base config. */
  env?: string[];
  /** Labels in the image config. */
  labels?: Record<string, string>;
}

/** The blobs of a test base image, ready to push or write. */
export interface BaseImageBlobs {
  layer: Uint8Array;
  layerDigest: string;
  diffID: string;
  config: Uint8Array;
  configDigest: string;
  manifest: Uint8Array;
  manifestDigest: string;
  manifestMediaType: string;
  /** The arm64 variant and the index, when `index` was set. */
  arm64?: {
    config: Uint8Array;
    configDigest: string;
    manifest: Uint8Array;
    manifestDigest: string;
  };
  index?: { bytes: Uint8Array; digest: string; mediaType: string };
}

function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

const encoder = new TextEncoder();

/** Builds a busybox base image: one gzip layer, a config and a manifest (and an index). */
export async function buildBusyboxBase(options: BaseImageOptions = {}): Promise<BaseImageBlobs> {
  const dir = await makeTempDir("base-image");
  try {
    const tar = await readFile(await writeBusyboxRootfs(dir, options));
    const layer = gzipSync(tar);
    const docker = options.format === "docker";
    const imageConfig = (architecture: string) =>
      encoder.encode(
        JSON.stringify({
          architecture,
          os: "linux",
          config: {
            Env: ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(options.env ?? [])],
            Cmd: ["sh"],
            ...(options.labels ? { Labels: options.labels } : {}),
          },
          rootfs: { type: "layers", diff_ids: [digestOf(tar)] },
          history: [{ created_by: "busybox rootfs for tests" }],
        }),
      );
    const manifestFor = (config: Uint8Array) =>
      encoder.encode(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
          config: {
            mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG,
            digest: digestOf(config),
            size: config.length,
          },
          layers: [
            {
              mediaType: docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP,
              digest: digestOf(layer),
              size: layer.length,
            },
          ],
        }),
      );
    const config = imageConfig("amd64");
    const manifest = manifestFor(config);
    const blobs: BaseImageBlobs = {
      layer,
      layerDigest: digestOf(layer),
      diffID: digestOf(tar),
      config,
      configDigest: digestOf(config),
      manifest,
      manifestDigest: digestOf(manifest),
      manifestMediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
    };
    if (options.index) {
      const armConfig = imageConfig("arm64");
      const armManifest = manifestFor(armConfig);
      blobs.arm64 = {
        config: armConfig,
        configDigest: digestOf(armConfig),
        manifest: armManifest,
        manifestDigest: digestOf(armManifest),
      };
      const indexMediaType = docker ? DOCKER_MANIFEST_LIST : OCI_INDEX;
      const entry = (bytes: Uint8Array, architecture: string) => ({
        mediaType: blobs.manifestMediaType,
        digest: digestOf(bytes),
        size: bytes.length,
        platform: { architecture, os: "linux" },
      });
      // arm64 first, so picking the first entry instead of the requested platform fails.
      const index = encoder.encode(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: indexMediaType,
          manifests: [entry(armManifest, "arm64"), entry(manifest, "amd64")],
        }),
      );
      blobs.index = { bytes: index, digest: digestOf(index), mediaType: indexMediaType };
    }
    return blobs;
  } finally {
    await removeDir(dir);
  }
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Pushes a busybox base image to `host/repository:tag` and returns its blobs. */
export async function pushBusyboxBase(
  host: string,
  repository: string,
  tag: string,
  options: BaseImageOptions & { credential?: { username: string; password: string } } = {},
): Promise<BaseImageBlobs> {
  const blobs = await buildBusyboxBase(options);
  const client = new RegistryClient(host, { credential: options.credential ?? null });
  const push = (digest: string, bytes: Uint8Array) =>
    client.pushBlob(repository, digest, bytes.length, () => once(bytes));
  await push(blobs.layerDigest, blobs.layer);
  await push(blobs.configDigest, blobs.config);
  if (blobs.index && blobs.arm64) {
    await push(blobs.arm64.configDigest, blobs.arm64.config);
    await client.putManifest(
      repository,
      blobs.arm64.manifestDigest,
      blobs.arm64.manifest,
      blobs.manifestMediaType,
    );
    await client.putManifest(
      repository,
      blobs.manifestDigest,
      blobs.manifest,
      blobs.manifestMediaType,
    );
    await client.putManifest(repository, tag, blobs.index.bytes, blobs.index.mediaType);
  } else {
    await client.putManifest(repository, tag, blobs.manifest, blobs.manifestMediaType);
  }
  return blobs;
}

/** Writes a busybox base image into an OCI image layout at `dir`, tagged `tag`. */
export async function writeBusyboxLayout(
  dir: string,
  tag: string,
  options: BaseImageOptions = {},
): Promise<BaseImageBlobs> {
  const blobs = await buildBusyboxBase({ ...options, index: false });
  const blobDir = join(dir, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  for (const [digest, bytes] of [
    [blobs.layerDigest, blobs.layer],
    [blobs.configDigest, blobs.config],
    [blobs.manifestDigest, blobs.manifest],
  ] as const) {
    await writeFile(join(blobDir, digest.slice("sha256:".length)), bytes);
  }
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: blobs.manifestMediaType,
          digest: blobs.manifestDigest,
          size: blobs.manifest.length,
          annotations: { "org.opencontainers.image.ref.name": tag },
        },
      ],
    }),
  );
  return blobs;
}
