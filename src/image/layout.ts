/**
 * Writes images into an OCI image layout directory (`oci-layout`, `index.json`, `blobs/`), the
 * format `skopeo`, `crane`, `podman` and containerd read as `oci:PATH`. Blobs are written to a
 * temporary file, verified against their digest and renamed into place, so an interrupted run
 * leaves no partial blob behind.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { FairingError } from "../errors.ts";
import type { Descriptor, Index } from "../registry/manifest.ts";
import { OCI_INDEX } from "../registry/manifest.ts";
import { forEachLimit, layerBlobs, type ImageToWrite } from "./blobs.ts";

/** The annotation that names a manifest's tag in an OCI layout's index. */
export const REF_NAME = "org.opencontainers.image.ref.name";

function blobFile(dir: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return join(dir, "blobs", algorithm!, hex!);
}

async function exists(path: string): Promise<boolean> {
  return await stat(path).then(
    () => true,
    () => false,
  );
}

/** Writes `bytes` to `path` through a temporary file and a rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(temporary, bytes);
  await rename(temporary, path);
}

/**
 * Streams `source` into the blob store under `dir`, verifying that its sha256 is `digest`.
 * Returns false, writing nothing, when the blob is there already.
 */
export async function putLayoutBlob(
  dir: string,
  digest: string,
  open: () => Promise<ReadableStream<Uint8Array>> | ReadableStream<Uint8Array>,
): Promise<boolean> {
  const path = blobFile(dir, digest);
  if (await exists(path)) return false;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const hash = createHash("sha256");
  try {
    const stream = await open();
    await pipeline(
      Readable.fromWeb(stream as import("node:stream/web").ReadableStream<Uint8Array>),
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(temporary),
    );
    const actual = `sha256:${hash.digest("hex")}`;
    if (actual !== digest) {
      throw new FairingError(
        `blob ${digest} arrived with the content of ${actual}; retry the build`,
      );
    }
    await rename(temporary, path);
    return true;
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Reads the layout's index, or an empty one when the layout does not exist yet. */
export async function readLayoutIndex(dir: string): Promise<Index> {
  try {
    return JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as Index;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    }
    throw new FairingError(
      `cannot read ${join(dir, "index.json")}: ${(error as Error).message}; remove the directory or choose another output.path`,
    );
  }
}

/** Returns the manifest descriptor tagged `tag` in the layout, if its blob is present. */
export async function findLayoutTag(dir: string, tag: string): Promise<Descriptor | undefined> {
  const index = await readLayoutIndex(dir).catch(() => undefined);
  const found = index?.manifests.find((descriptor) => descriptor.annotations?.[REF_NAME] === tag);
  if (!found || !(await exists(blobFile(dir, found.digest)))) return undefined;
  return found;
}

/**
 * Writes `image` into the OCI layout at `dir` under `tag`, copying base layers the layout lacks
 * from the base image. An existing entry with the same tag is replaced; other entries stay.
 */
export async function writeOciLayout(dir: string, tag: string, image: ImageToWrite): Promise<void> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFileAtomic(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));

  await forEachLimit(layerBlobs(image), 3, async (blob) => {
    await putLayoutBlob(dir, blob.digest, () => blob.open());
  });
  const { appended } = image;
  await putLayoutBlob(dir, appended.configDigest, () => bytesStream(appended.configBytes));
  await putLayoutBlob(dir, appended.manifestDigest, () => bytesStream(appended.manifestBytes));

  const index = await readLayoutIndex(dir);
  index.manifests = index.manifests.filter(
    (descriptor) => descriptor.annotations?.[REF_NAME] !== tag,
  );
  index.manifests.push({
    mediaType: appended.manifestMediaType,
    digest: appended.manifestDigest,
    size: appended.manifestBytes.length,
    annotations: { [REF_NAME]: tag },
  });
  await writeFileAtomic(join(dir, "index.json"), JSON.stringify(index));
}

/** Wraps bytes in a one-chunk web stream. */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
