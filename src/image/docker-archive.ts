/**
 * Writes an image as a docker-archive tarball, the format `docker load` and `skopeo
 * docker-archive:` read. Like `docker save` since Docker 25, the tarball is also an OCI image
 * layout: `manifest.json` points at blobs under `blobs/sha256/`, and `index.json` records the
 * manifest digest. Blobs are staged in a temporary directory first, then streamed into the
 * tarball by the context tar writer, so nothing large is held in memory.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, open, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ContextEntry } from "../context/entries.ts";
import { tarStream } from "../context/tar.ts";
import type { ImageConfig, Index } from "../registry/manifest.ts";
import { OCI_INDEX } from "../registry/manifest.ts";
import { forEachLimit, layerBlobs, type ImageToWrite } from "./blobs.ts";
import { REF_NAME, bytesStream, putLayoutBlob, writeFileAtomic } from "./layout.ts";

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}

function blobName(digest: string): string {
  return `blobs/sha256/${hexOf(digest)}`;
}

/**
 * Writes `image` to the tarball at `path`, tagged `repoTag` (e.g. `team/mnist:3f2a`). The
 * tarball is written next to `path` and renamed into place when complete.
 */
export async function writeDockerArchive(
  path: string,
  repoTag: string,
  image: ImageToWrite,
): Promise<void> {
  const staging = await mkdtemp(join(tmpdir(), "fairing-docker-archive-"));
  try {
    const blobs = layerBlobs(image);
    await forEachLimit(blobs, 3, async (blob) => {
      await putLayoutBlob(staging, blob.digest, () => blob.open());
    });
    const { appended } = image;
    await putLayoutBlob(staging, appended.configDigest, () => bytesStream(appended.configBytes));
    await putLayoutBlob(staging, appended.manifestDigest, () =>
      bytesStream(appended.manifestBytes),
    );

    const encoder = new TextEncoder();
    const manifestJson = encoder.encode(
      JSON.stringify([
        {
          Config: blobName(appended.configDigest),
          RepoTags: [repoTag],
          Layers: blobs.map((blob) => blobName(blob.digest)),
        },
      ]),
    );
    const index: Index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: appended.manifestMediaType,
          digest: appended.manifestDigest,
          size: appended.manifestBytes.length,
          annotations: { [REF_NAME]: repoTag },
        },
      ],
    };
    const indexJson = encoder.encode(JSON.stringify(index));
    const layoutJson = encoder.encode(JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const small = async (name: string, bytes: Uint8Array): Promise<ContextEntry> => {
      const file = join(staging, name);
      await writeFileAtomic(file, bytes);
      return { path: name, type: "file", source: file, mode: 0o644, size: bytes.length };
    };
    const blobEntry = (digest: string, size: number): ContextEntry => ({
      path: blobName(digest),
      type: "file",
      source: join(staging, "blobs", "sha256", hexOf(digest)),
      mode: 0o644,
      size,
    });

    // Small files and the config come first, so `readDockerArchiveImage` stops reading early.
    const entries: ContextEntry[] = [
      await small("index.json", indexJson),
      await small("manifest.json", manifestJson),
      await small("oci-layout", layoutJson),
      blobEntry(appended.configDigest, appended.configBytes.length),
      blobEntry(appended.manifestDigest, appended.manifestBytes.length),
    ];
    const seen = new Set<string>();
    for (const blob of blobs) {
      if (seen.has(blob.digest)) continue;
      seen.add(blob.digest);
      entries.push(blobEntry(blob.digest, blob.size));
    }

    const temporary = join(dirname(path), `.${randomBytes(6).toString("hex")}.tmp`);
    try {
      await pipeline(Readable.from(tarStream(entries, { mtime: 0 })), createWriteStream(temporary));
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Largest small file read back from an archive. */
const MAX_SMALL_FILE = 4 * 1024 * 1024;

/**
 * Reads back the manifest digest and config of the image tagged `repoTag` from a tarball that
 * `writeDockerArchive` wrote. Returns undefined when the file is missing, is not such a tarball,
 * or contains another tag. Reads only the small files at the start of the tarball.
 */
export async function readDockerArchiveImage(
  path: string,
  repoTag: string,
): Promise<{ digest: string; config: ImageConfig } | undefined> {
  const handle = await open(path, "r").catch(() => undefined);
  if (!handle) return undefined;
  try {
    const files = new Map<string, string>();
    let offset = 0;
    let indexDigest: string | undefined;
    let configName: string | undefined;
    for (let entry = 0; entry < 8; entry++) {
      const header = new Uint8Array(512);
      const { bytesRead } = await handle.read(header, 0, 512, offset);
      if (bytesRead < 512 || header.every((byte) => byte === 0)) break;
      const name = new TextDecoder().decode(header.subarray(0, 100)).replace(/\0.*$/s, "");
      const size = parseInt(
        new TextDecoder().decode(header.subarray(124, 136)).replace(/\0.*$/s, "").trim() || "0",
        8,
      );
      if (!Number.isFinite(size) || size > MAX_SMALL_FILE) break;
      const content = new Uint8Array(size);
      await handle.read(content, 0, size, offset + 512);
      files.set(name, new TextDecoder().decode(content));
      offset += 512 + Math.ceil(size / 512) * 512;

      if (name === "index.json") {
        const index = JSON.parse(files.get(name)!) as Index;
        indexDigest = index.manifests.find((d) => d.annotations?.[REF_NAME] === repoTag)?.digest;
        if (!indexDigest) return undefined;
      }
      if (name === "manifest.json") {
        const manifest = JSON.parse(files.get(name)!) as { Config: string; RepoTags?: string[] }[];
        configName = manifest.find((item) => item.RepoTags?.includes(repoTag))?.Config;
        if (!configName) return undefined;
      }
      if (indexDigest && configName && files.has(configName)) {
        return { digest: indexDigest, config: JSON.parse(files.get(configName)!) as ImageConfig };
      }
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}
