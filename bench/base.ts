/**
 * Builds the benchmark's base image locally and pushes it: the busybox layer the tests use plus
 * a 100 MiB layer of incompressible bytes, so the base weighs about 106 MB like a slim Python
 * image. Nothing is pulled from outside.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";

import { writeArchive } from "../src/context/archive.ts";
import type { ContextEntry } from "../src/context/entries.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from "../src/registry/manifest.ts";
import { buildBusyboxBase } from "../test/services/images.ts";
import { writeRandomFile } from "./corpus.ts";

const encoder = new TextEncoder();

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Pushes the base image to `host/repository:tag`; returns its size in bytes. */
export async function pushLargeBase(
  host: string,
  repository: string,
  tag: string,
  work: string,
  payloadBytes: number,
): Promise<number> {
  const busybox = await buildBusyboxBase();
  const payload = join(work, "payload.bin");
  await writeRandomFile(payload, payloadBytes, "base-payload");
  const entries: ContextEntry[] = [
    { path: "opt", type: "directory", mode: 0o755, size: 0 },
    { path: "opt/payload.bin", type: "file", mode: 0o644, size: payloadBytes, source: payload },
  ];
  const layerFile = join(work, "payload.tar.gz");
  const layer = await writeArchive(entries, createWriteStream(layerFile), { mtime: 0 });

  const config = encoder.encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: [busybox.diffID, layer.diffID] },
      history: [{ created_by: "busybox rootfs" }, { created_by: "100 MiB payload" }],
    }),
  );
  const manifest = encoder.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.length },
      layers: [
        { mediaType: OCI_LAYER_GZIP, digest: busybox.layerDigest, size: busybox.layer.length },
        { mediaType: OCI_LAYER_GZIP, digest: layer.digest, size: layer.size },
      ],
    }),
  );

  const client = new RegistryClient(host, { credential: null });
  await client.pushBlob(repository, busybox.layerDigest, busybox.layer.length, () =>
    once(busybox.layer),
  );
  await client.pushBlob(
    repository,
    layer.digest,
    layer.size,
    () => createReadStream(layerFile) as AsyncIterable<Uint8Array>,
  );
  await client.pushBlob(repository, digestOf(config), config.length, () => once(config));
  await client.putManifest(repository, tag, manifest, OCI_MANIFEST);
  return busybox.layer.length + (await stat(layerFile)).size + config.length;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
