/**
 * Pushes an appended image to a registry: layer blobs the repository lacks (mounted from the
 * base's repository when both live on the same registry, so base layers are never downloaded),
 * then the config, then the manifest under its tag.
 */
import type { ProgressEvent, Logger } from "../log.ts";
import type { RegistryClient } from "../registry/client.ts";
import { forEachLimit, layerBlobs, type ImageToWrite } from "./blobs.ts";

/** Counts of what a push transferred. */
export interface PushStats {
  uploaded: number;
  mounted: number;
  skipped: number;
  uploadedBytes: number;
}

/** Options of `pushImage`. */
export interface PushOptions {
  logger: Logger;
  onProgress?: (event: ProgressEvent) => void;
  /** Blob uploads running at once; default 3. */
  concurrency?: number;
  /** Stops the push before the next blob and before the manifest, so no tag is written. */
  signal?: AbortSignal;
  /** Blobs uploaded while they were built; they are found present and counted as uploaded. */
  streamed?: ReadonlySet<string>;
}

/** Pushes `image` to `repository` on `client` and tags it `tag`; returns the transfer counts. */
export async function pushImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  image: ImageToWrite,
  options: PushOptions,
): Promise<PushStats> {
  const stats: PushStats = { uploaded: 0, mounted: 0, skipped: 0, uploadedBytes: 0 };
  const source = image.base.source;
  const sameRegistry = source !== undefined && source.client.registry === client.registry;
  const from = sameRegistry ? source.reference.repository : undefined;

  await forEachLimit(layerBlobs(image), options.concurrency ?? 3, async (blob) => {
    options.signal?.throwIfAborted();
    options.onProgress?.({
      step: "upload-layer",
      status: "start",
      message: blob.digest,
      total: blob.size,
    });
    let opened: ReadableStream<Uint8Array> | undefined;
    const result = await client.pushBlob(
      repository,
      blob.digest,
      blob.size,
      () => {
        // pushBlob calls this only when it must upload. The stream opens lazily, so a mount or
        // an existing blob costs no download from the base registry.
        return (async function* () {
          opened = await blob.open();
          const reader = opened.getReader();
          for (;;) {
            options.signal?.throwIfAborted();
            const { done, value } = await reader.read();
            if (done) return;
            yield value;
          }
        })();
      },
      {
        ...(from ? { from } : {}),
        onProgress: (bytes, total) =>
          options.onProgress?.({
            step: "upload-layer",
            status: "progress",
            message: blob.digest,
            bytes,
            total,
          }),
      },
    );
    if (result === "uploaded" || (result === "exists" && options.streamed?.has(blob.digest))) {
      stats.uploaded += 1;
      stats.uploadedBytes += blob.size;
    } else if (result === "mounted") {
      stats.mounted += 1;
    } else {
      stats.skipped += 1;
    }
    options.logger.debug(`layer ${blob.digest} (${blob.size} bytes): ${result}`);
    options.onProgress?.({
      step: "upload-layer",
      status: "done",
      message: `${blob.digest} ${result}`,
    });
  });

  const { appended } = image;
  const configResult = await client.pushBlob(
    repository,
    appended.configDigest,
    appended.configBytes.length,
    async function* () {
      yield appended.configBytes;
    },
  );
  if (configResult === "uploaded") {
    stats.uploaded += 1;
    stats.uploadedBytes += appended.configBytes.length;
  } else {
    stats.skipped += 1;
  }
  options.onProgress?.({ step: "push-config", status: "done", message: appended.configDigest });

  options.signal?.throwIfAborted();
  await client.putManifest(repository, tag, appended.manifestBytes, appended.manifestMediaType);
  options.onProgress?.({
    step: "push-manifest",
    status: "done",
    message: `${tag} ${appended.manifestDigest}`,
  });
  return stats;
}
