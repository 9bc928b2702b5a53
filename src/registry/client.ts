/**
 * An OCI distribution client for one registry host, on `fetch`: manifests, blobs, cross-repository
 * mounts and monolithic or chunked uploads. Blob content is streamed; uploads hold at most one
 * chunk in memory.
 */
import { createHash } from "node:crypto";
import { FairingError, RegistryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { repositoryScope } from "./auth.ts";
import { ChunkHandOff } from "./hand-off.ts";
import { ALL_MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST } from "./manifest.ts";
import { isValidDigest } from "./reference.ts";
import {
  RegistryTransport,
  urlPath,
  type RequestSpec,
  type TransportOptions,
} from "./transport.ts";

/** Options of a RegistryClient. */
export interface RegistryClientOptions extends TransportOptions {
  logger?: Logger;
  /** Upload chunk size in bytes; blobs up to this size are uploaded in one PUT. Default 8 MiB. */
  chunkSize?: number;
}

/** A manifest as fetched: its media type, its verified digest and its bytes. */
export interface FetchedManifest {
  mediaType: string;
  digest: string;
  bytes: Uint8Array;
}

/** Digest, media type and size of a manifest, from a HEAD request. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

/** Options of `uploadBlob` and `pushBlob`. */
export interface UploadOptions {
  /** Called after each chunk with the bytes sent so far and the blob size. */
  onProgress?: (bytes: number, total: number) => void;
  /** Overrides the client's chunk size for this upload. */
  chunkSize?: number;
}

/** Blob content for an upload: a fresh stream or iterable each time it is called. */
export type BlobSource = () => ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** An upload whose content, and so its digest, is produced while it is sent. */
export interface StreamingUpload {
  /**
   * Adds bytes. Resolves once the request has taken them; `data` is sent as it is, so the caller
   * must not change it afterwards.
   */
  write(data: Uint8Array): Promise<void>;
  /**
   * Sends the rest and commits the blob under `digest`, which the producer has computed by the
   * end and the registry checks against the bytes it received. Resolves with the size sent.
   */
  finish(digest: string): Promise<{ size: number }>;
  /** Abandons the upload session. */
  cancel(): Promise<void>;
}

/** Outcome of `pushBlob`. */
export type PushBlobResult = "exists" | "mounted" | "uploaded";

/** Default upload chunk size. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
/** Largest manifest accepted in bytes; real manifests are a few kilobytes, so 4 MiB leaves wide room. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const DIGEST_HEADER = "docker-content-digest";

/** Computes the `sha256:` digest of bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function digestWith(algorithm: string, bytes: Uint8Array): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

function mediaTypeOf(response: Response): string {
  return (response.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
}

async function* iterate(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (Symbol.asyncIterator in source) {
    yield* source as AsyncIterable<Uint8Array>;
    return;
  }
  const reader = (source as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

// Regroups a byte stream into chunks of exactly `size` bytes, except the last.
async function* rechunk(
  source: AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.length) {
      const take = Math.min(size - filled, piece.length - offset);
      buffer.set(piece.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

function parseRangeEnd(range: string | null): number | undefined {
  const match = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? "");
  return match ? Number(match[1]) : undefined;
}

/** A client for one registry host. Create one per host and reuse it: tokens are cached. */
export class RegistryClient {
  readonly registry: string;
  private readonly transport: RegistryTransport;
  private readonly chunkSize: number;

  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.transport = new RegistryTransport(registry, options);
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize <= 0) {
      throw new FairingError(
        `invalid chunk size ${options.chunkSize}: expected a positive integer of bytes`,
      );
    }
  }

  /** Returns the API base URL in use (`https://host` or `http://host`), probing the registry once. */
  apiBase(): Promise<string> {
    return this.transport.base();
  }

  private async expect(spec: RequestSpec, statuses: number[]): Promise<Response> {
    const response = await this.transport.send(spec);
    if (statuses.includes(response.status)) return response;
    throw await this.transport.fail(spec, response);
  }

  /**
   * Fetches a manifest or index by tag or digest and verifies its digest against the requested
   * digest or the registry's Docker-Content-Digest header.
   */
  async getManifest(
    repository: string,
    reference: string,
    accept: string[] = [...ALL_MANIFEST_TYPES],
  ): Promise<FetchedManifest> {
    const spec: RequestSpec = {
      method: "GET",
      url: `/v2/${repository}/manifests/${reference}`,
      scopes: [repositoryScope(repository, ["pull"])],
      headers: { Accept: accept.join(", ") },
      retrySafe: true,
      subject: "manifest",
      repository,
      reference,
    };
    const response = await this.expect(spec, [200]);
    const length = Number(response.headers.get("content-length") ?? "0");
    if (length > MAX_MANIFEST_BYTES) {
      await response.body?.cancel().catch(() => {});
      throw this.invalid(
        spec,
        `the manifest is ${length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`,
      );
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw this.invalid(
        spec,
        `the manifest is ${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`,
      );
    }

    const expected = isValidDigest(reference) ? reference : response.headers.get(DIGEST_HEADER);
    let digest = sha256Digest(bytes);
    if (expected && isValidDigest(expected)) {
      const algorithm = expected.split(":")[0] as string;
      const actual = algorithm === "sha256" ? digest : digestWith(algorithm, bytes);
      if (actual !== expected) {
        throw this.invalid(spec, `the manifest bytes have digest ${actual}, expected ${expected}`);
      }
      digest = expected;
    }

    let mediaType = mediaTypeOf(response);
    if (!(ALL_MANIFEST_TYPES as readonly string[]).includes(mediaType)) {
      mediaType = this.mediaTypeFromJson(bytes) ?? mediaType;
    }
    return { mediaType, digest, bytes };
  }

  private mediaTypeFromJson(bytes: Uint8Array): string | undefined {
    try {
      const json = JSON.parse(new TextDecoder().decode(bytes)) as {
        mediaType?: string;
        manifests?: unknown;
      };
      if (json.mediaType) return json.mediaType;
      return Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST;
    } catch {
      return undefined;
    }
  }

  private invalid(spec: RequestSpec, problem: string): RegistryError {
    return new RegistryError(
      `${spec.method} ${urlPath(spec.url)} on ${this.registry} returned an invalid response: ` +
        `${problem}; the registry or a proxy altered the content, retry or check the registry`,
      { method: spec.method, path: urlPath(spec.url), status: 200 },
    );
  }

  /** Returns the digest, media type and size of a manifest, or undefined when it does not exist. */
  async headManifest(repository: string, reference: string): Promise<ManifestHead | undefined> {
    const spec: RequestSpec = {
      method: "HEAD",
      url: `/v2/${repository}/manifests/${reference}`,
      scopes: [repositoryScope(repository, ["pull"])],
      headers: { Accept: ALL_MANIFEST_TYPES.join(", ") },
      retrySafe: true,
      subject: "manifest",
      repository,
      reference,
    };
    const response = await this.expect(spec, [200, 404]);
    await response.body?.cancel().catch(() => {});
    if (response.status === 404) return undefined;

    const digest =
      response.headers.get(DIGEST_HEADER) ?? (isValidDigest(reference) ? reference : undefined);
    const mediaType = mediaTypeOf(response);
    const size = Number(response.headers.get("content-length") ?? "-1");
    if (digest && mediaType && size >= 0) return { digest, mediaType, size };

    // Some registries omit headers on HEAD: fall back to fetching the manifest.
    const manifest = await this.getManifest(repository, reference);
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length };
  }

  /** Uploads a manifest under a tag or digest and returns its digest, checked against the registry's. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<string> {
    const digest = sha256Digest(bytes);
    const spec: RequestSpec = {
      method: "PUT",
      url: `/v2/${repository}/manifests/${reference}`,
      scopes: [repositoryScope(repository, ["pull", "push"])],
      headers: { "Content-Type": mediaType },
      body: bytes,
      retrySafe: true,
      subject: "manifest",
      repository,
      reference,
    };
    const response = await this.expect(spec, [200, 201, 202]);
    await response.body?.cancel().catch(() => {});
    const reported = response.headers.get(DIGEST_HEADER);
    if (reported && reported !== digest) {
      throw this.invalid(
        spec,
        `the registry stored digest ${reported}, the manifest bytes have ${digest}`,
      );
    }
    return digest;
  }

  /** Returns true when the repository has the blob (HEAD). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const spec: RequestSpec = {
      method: "HEAD",
      url: `/v2/${repository}/blobs/${digest}`,
      scopes: [repositoryScope(repository, ["pull"])],
      retrySafe: true,
      subject: "blob",
      repository,
      reference: digest,
    };
    const response = await this.expect(spec, [200, 404]);
    await response.body?.cancel().catch(() => {});
    return response.status === 200;
  }

  /**
   * Streams a blob, following redirects (without the Authorization header when the redirect
   * leaves the registry's origin). The stream errors at its end when the content does not match
   * `digest`.
   */
  async getBlob(repository: string, digest: string): Promise<ReadableStream<Uint8Array>> {
    const spec: RequestSpec = {
      method: "GET",
      url: `/v2/${repository}/blobs/${digest}`,
      scopes: [repositoryScope(repository, ["pull"])],
      retrySafe: true,
      subject: "blob",
      repository,
      reference: digest,
      redirect: "manual",
    };
    let response = await this.expect(spec, [200, 301, 302, 303, 307, 308]);
    let origin = new URL(await this.transport.resolve(spec.url)).origin;
    for (let hops = 0; response.status !== 200; hops++) {
      const location = response.headers.get("location");
      await response.body?.cancel().catch(() => {});
      if (!location || hops >= 5) {
        throw this.invalid(
          spec,
          location ? "more than 5 redirects" : "a redirect without a Location header",
        );
      }
      const target = new URL(location, origin + urlPath(spec.url));
      if (target.origin === origin) {
        response = await this.expect(
          { ...spec, url: target.toString() },
          [200, 301, 302, 303, 307, 308],
        );
      } else {
        response = await this.transport.fetcher(target, { redirect: "manual" });
        if (response.status >= 400)
          throw await this.transport.fail({ ...spec, url: target.toString() }, response);
      }
      origin = target.origin;
    }
    if (!response.body) throw this.invalid(spec, "an empty body");
    return response.body.pipeThrough(this.verifyingStream(spec, digest));
  }

  private verifyingStream(
    spec: RequestSpec,
    digest: string,
  ): TransformStream<Uint8Array, Uint8Array> {
    const algorithm = digest.split(":")[0] as string;
    const hash = createHash(algorithm);
    return new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => {
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush: (controller) => {
        const actual = `${algorithm}:${hash.digest("hex")}`;
        if (actual !== digest) {
          controller.error(
            this.invalid(spec, `the blob content has digest ${actual}, expected ${digest}`),
          );
        }
      },
    });
  }

  /** Reads a small blob (a config) whole and verifies its digest; throws when it exceeds `maxBytes`. */
  async getBlobBytes(
    repository: string,
    digest: string,
    maxBytes = 16 * 1024 * 1024,
  ): Promise<Uint8Array> {
    const stream = await this.getBlob(repository, digest);
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const part of iterate(stream)) {
      total += part.length;
      if (total > maxBytes) {
        throw new FairingError(
          `blob ${digest} in ${this.registry}/${repository} is larger than ${maxBytes} bytes; ` +
            `stream it with getBlob instead`,
        );
      }
      parts.push(part);
    }
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return bytes;
  }

  // Starts an upload session, or mounts the blob when `from` is given and the registry can.
  private async startUpload(
    repository: string,
    mount?: { digest: string; from: string },
  ): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const scopes = [repositoryScope(repository, ["pull", "push"])];
    let url = `/v2/${repository}/blobs/uploads/`;
    if (mount) {
      scopes.push(repositoryScope(mount.from, ["pull"]));
      const query = new URLSearchParams({ mount: mount.digest, from: mount.from });
      url += `?${query.toString()}`;
    }
    const spec: RequestSpec = {
      method: "POST",
      url,
      scopes,
      body: new Uint8Array(0),
      retrySafe: true,
      subject: "upload",
      repository,
    };
    const response = await this.expect(spec, [201, 202]);
    await response.body?.cancel().catch(() => {});
    if (response.status === 201 && mount) return { mounted: true };
    const location = response.headers.get("location");
    if (!location) throw this.invalid(spec, "an upload session without a Location header");
    return { mounted: false, location: await this.transport.resolve(location) };
  }

  /** Cancels an upload session; failures are logged and ignored, as the registry expires sessions. */
  private async cancelUpload(repository: string, location: string): Promise<void> {
    try {
      const response = await this.transport.send({
        method: "DELETE",
        url: location,
        scopes: [repositoryScope(repository, ["pull", "push"])],
        retrySafe: false,
        subject: "upload",
        repository,
      });
      await response.body?.cancel().catch(() => {});
    } catch (error) {
      this.transport.logger.debug(
        `cancelling upload ${urlPath(location)} failed: ${(error as Error).message}`,
      );
    }
  }

  /**
   * Mounts a blob from `fromRepository` on the same registry. Returns false when the registry
   * did not mount it; the upload session it opened instead is cancelled.
   */
  async mountBlob(repository: string, digest: string, fromRepository: string): Promise<boolean> {
    const started = await this.startUpload(repository, { digest, from: fromRepository });
    if (started.mounted) return true;
    await this.cancelUpload(repository, started.location);
    return false;
  }

  /**
   * Uploads a blob of known size and digest. Blobs up to the chunk size go in one PUT; larger
   * ones in PATCH chunks with Content-Range, resuming from the registry's reported Range after a
   * failed chunk. The content is hashed on the way and the upload is cancelled on a mismatch.
   */
  async uploadBlob(
    repository: string,
    digest: string,
    size: number,
    open: BlobSource,
    options: UploadOptions = {},
  ): Promise<void> {
    const started = await this.startUpload(repository);
    if (started.mounted) return;
    await this.uploadToSession(repository, started.location, digest, size, open, options);
  }

  /**
   * Pushes a blob unless the repository has it: HEAD first, then a cross-repository mount when
   * `from` names a repository on the same registry, else an upload (into the session a refused
   * mount opened).
   */
  async pushBlob(
    repository: string,
    digest: string,
    size: number,
    open: BlobSource,
    options: UploadOptions & { from?: string } = {},
  ): Promise<PushBlobResult> {
    if (await this.hasBlob(repository, digest)) return "exists";
    const mount =
      options.from && options.from !== repository ? { digest, from: options.from } : undefined;
    const started = await this.startUpload(repository, mount);
    if (started.mounted) return "mounted";
    await this.uploadToSession(repository, started.location, digest, size, open, options);
    return "uploaded";
  }

  /**
   * Opens an upload whose digest is learned at the end, for content that is produced while it
   * is sent (a layer being compressed). The bytes go out in one PATCH request with a streamed
   * body, as Docker and go-containerregistry push layers: the producer waits only for the
   * socket, never for a round trip per chunk. `finish` ends the request and commits the blob.
   */
  async startStreamingUpload(repository: string): Promise<StreamingUpload> {
    const started = await this.startUpload(repository);
    if (started.mounted) throw new FairingError("a streaming upload cannot be a mount");
    let location = started.location;
    const body = new ChunkHandOff();
    const copyChunks = !this.transport.releasesBodyChunks;
    const spec: RequestSpec = {
      method: "PATCH",
      url: location,
      scopes: [repositoryScope(repository, ["pull", "push"])],
      headers: { "Content-Type": "application/octet-stream" },
      stream: body.readable,
      retrySafe: false,
      subject: "upload",
      repository,
    };
    let ending = false;
    const responded = this.transport.send(spec);
    // A request that fails, or a registry that responds before the body ended, stops the
    // producer: its next write rejects instead of waiting for a reader that is gone.
    responded.then(
      (response) => {
        if (!ending) {
          body.abort(
            new Error(`the registry responded ${response.status} before the upload ended`),
          );
        }
      },
      (error: unknown) => body.abort(error),
    );
    let sent = 0;

    return {
      // Resolves once the request has sent `data`, or a copy of it where the fetch in use may
      // keep chunks queued. `new Uint8Array` copies, and `slice` would not on a Buffer.
      write: async (data: Uint8Array) => {
        await body.write(copyChunks ? new Uint8Array(data) : data);
        sent += data.length;
      },
      finish: async (digest: string) => {
        if (!isValidDigest(digest)) {
          throw new FairingError(
            `invalid blob digest "${digest}" for ${this.registry}/${repository}`,
          );
        }
        ending = true;
        body.close();
        const response = await responded;
        if (response.status !== 202) throw await this.transport.fail(spec, response);
        await response.body?.cancel().catch(() => {});
        const reported = parseRangeEnd(response.headers.get("range"));
        if (reported !== undefined && reported !== sent - 1) {
          throw this.invalid(
            spec,
            `the registry reports ${reported + 1} bytes received, sent ${sent}`,
          );
        }
        const next = response.headers.get("location");
        if (next) location = await this.transport.resolve(next);
        await this.completeUpload(repository, location, digest, new Uint8Array(0));
        return { size: sent };
      },
      cancel: async () => {
        ending = true;
        body.abort(new Error("the upload was cancelled"));
        await responded.then((response) => response.body?.cancel()).catch(() => {});
        await this.cancelUpload(repository, location);
      },
    };
  }

  private async uploadToSession(
    repository: string,
    location: string,
    digest: string,
    size: number,
    open: BlobSource,
    options: UploadOptions,
  ): Promise<void> {
    const chunkSize = options.chunkSize ?? this.chunkSize;
    const algorithm = digest.split(":")[0] as string;
    if (!isValidDigest(digest)) {
      await this.cancelUpload(repository, location);
      throw new FairingError(`invalid blob digest "${digest}" for ${this.registry}/${repository}`);
    }
    const hash = createHash(algorithm);
    let current = location;
    let sent = 0;
    let single: Uint8Array | undefined;

    try {
      for await (const chunk of rechunk(iterate(open()), chunkSize)) {
        hash.update(chunk);
        if (sent + chunk.length > size) {
          throw new FairingError(
            `blob ${digest} for ${this.registry}/${repository} has more than the ${size} bytes declared`,
          );
        }
        if (size <= chunkSize) {
          single = chunk;
        } else {
          current = await this.patchChunk(repository, current, chunk, sent);
        }
        sent += chunk.length;
        options.onProgress?.(sent, size);
      }
      if (sent !== size) {
        throw new FairingError(
          `blob ${digest} for ${this.registry}/${repository} has ${sent} bytes, ${size} declared`,
        );
      }
      const actual = `${algorithm}:${hash.digest("hex")}`;
      if (actual !== digest) {
        throw new FairingError(
          `blob content for ${this.registry}/${repository} has digest ${actual}, ${digest} declared; ` +
            `the content changed while it was read`,
        );
      }
    } catch (error) {
      await this.cancelUpload(repository, current);
      throw error;
    }

    await this.completeUpload(repository, current, digest, single ?? new Uint8Array(0));
  }

  private async patchChunk(
    repository: string,
    location: string,
    chunk: Uint8Array,
    offset: number,
  ): Promise<string> {
    const spec: RequestSpec = {
      method: "PATCH",
      url: location,
      scopes: [repositoryScope(repository, ["pull", "push"])],
      retrySafe: false,
      subject: "upload",
      repository,
    };
    let body = chunk;
    let start = offset;
    for (let attempt = 0; ; attempt++) {
      const end = start + body.length - 1;
      const response = await this.transport
        .send({
          ...spec,
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Range": `${start}-${end}`,
          },
          body,
        })
        .catch((error: unknown) => error as Error);

      if (!(response instanceof Error) && response.status === 202) {
        await response.body?.cancel().catch(() => {});
        const reported = parseRangeEnd(response.headers.get("range"));
        if (reported !== undefined && reported !== end) {
          throw this.invalid(
            spec,
            `the registry reports ${reported + 1} bytes received, expected ${end + 1}`,
          );
        }
        const next = response.headers.get("location");
        return next ? await this.transport.resolve(next) : location;
      }

      const transient =
        response instanceof Error || response.status >= 500 || response.status === 429;
      if (!transient || attempt >= 3) {
        if (response instanceof Error) throw response;
        throw await this.transport.fail(spec, response);
      }
      if (!(response instanceof Error)) await response.body?.cancel().catch(() => {});

      // Ask the registry how much it has, and resend only what it lacks.
      const status = await this.expect({ ...spec, method: "GET", retrySafe: true }, [204]);
      await status.body?.cancel().catch(() => {});
      const received = (parseRangeEnd(status.headers.get("range")) ?? -1) + 1;
      const chunkEnd = offset + chunk.length;
      if (received < offset || received > chunkEnd) {
        throw this.invalid(
          spec,
          `the registry reports ${received} bytes received, expected ${offset} to ${chunkEnd}`,
        );
      }
      const next = status.headers.get("location");
      if (next) location = await this.transport.resolve(next);
      if (received === chunkEnd) return location;
      body = chunk.subarray(received - offset);
      start = received;
      spec.url = location;
    }
  }

  private async completeUpload(
    repository: string,
    location: string,
    digest: string,
    body: Uint8Array,
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const spec: RequestSpec = {
      method: "PUT",
      url: url.toString(),
      scopes: [repositoryScope(repository, ["pull", "push"])],
      headers: { "Content-Type": "application/octet-stream" },
      body,
      retrySafe: false,
      subject: "upload",
      repository,
      reference: digest,
    };
    let response: Response;
    try {
      response = await this.transport.send(spec);
    } catch (error) {
      // The PUT may have completed before the connection failed, so check whether the blob exists.
      if (await this.hasBlob(repository, digest).catch(() => false)) return;
      throw error;
    }
    if (response.status !== 201 && response.status !== 204) {
      if (response.status >= 500 && (await this.hasBlob(repository, digest).catch(() => false))) {
        await response.body?.cancel().catch(() => {});
        return;
      }
      throw await this.transport.fail(spec, response);
    }
    await response.body?.cancel().catch(() => {});

    const reported = response.headers.get(DIGEST_HEADER);
    if (reported && reported !== digest) {
      throw this.invalid(spec, `the registry stored digest ${reported}, expected ${digest}`);
    }
  }
}
