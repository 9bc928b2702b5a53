/**
 * Where the blobs of an appended image come from: base layers from the base image, appended
 * layers from local files, and the config and manifest from memory.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { AppendedImage } from "./append.ts";
import type { BaseImage } from "./base.ts";

/** An image ready to be written to an output. */
export interface ImageToWrite {
  base: BaseImage;
  appended: AppendedImage;
  /** Local files of the appended layer blobs, by digest. */
  layerFiles: Map<string, string>;
}

/** A blob of the image and how to open it. */
export interface BlobHandle {
  digest: string;
  size: number;
  mediaType: string;
  open(): Promise<ReadableStream<Uint8Array>>;
}

/** Lists the layer blobs of `image` (base layers first) with a way to stream each. */
export function layerBlobs(image: ImageToWrite): BlobHandle[] {
  return image.appended.manifest.layers.map((descriptor) => {
    const file = image.layerFiles.get(descriptor.digest);
    return {
      digest: descriptor.digest,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      open: file
        ? async () => Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>
        : () => image.base.openBlob(descriptor.digest),
    };
  });
}

/** Runs `work` over `items` with at most `limit` running at once, in order of start. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(workers);
}
