/**
 * Context source on Google Cloud Storage. The executor reads the context as `gs://bucket/key`
 * with the service account key mounted from a Secret, or with the pod's own identity (Workload
 * Identity) when no key file is configured.
 */
import { readFile } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Bucket } from "@google-cloud/storage";
import { FairingError, InputError } from "../../errors.ts";
import { registerSecret } from "../../log.ts";
import {
  addEnv,
  addSecretVolume,
  contextObjectKey,
  countBytes,
  importSdk,
  toNodeReadable,
  type BuildPodSpec,
  type ContextArchive,
  type ContextSource,
  type PodSpecOptions,
  type PrepareOptions,
  type PreparedContext,
} from "./context-source.ts";

type GcsModule = typeof import("@google-cloud/storage");

/** Options of `GcsContextSource`. */
export interface GcsContextSourceOptions {
  /** Bucket name; default `fairing-<project>`. */
  bucket?: string;
  /** Google Cloud project id. */
  project?: string;
  /** Object name prefix; default `fairing-builds/`. */
  prefix?: string;
  /** JSON API endpoint, e.g. an emulator's `http://127.0.0.1:9199`. */
  endpoint?: string;
  /** Service account key file; default GOOGLE_APPLICATION_CREDENTIALS. */
  keyFilename?: string;
  /** Copy the key file into the build pod's Secret. Default true when there is a key file. */
  podCredentials?: boolean;
}

/** Secret key and mount path of the service account key in the build pod. */
const KEY_NAME = "kaniko-secret.json";
const KEY_MOUNT = "/secret";

/** Objects up to this size are sent in one request; larger ones use a resumable upload. */
const SIMPLE_UPLOAD_LIMIT = 8 * 1024 * 1024;

/** Uploads the build context to a Cloud Storage bucket for the cluster builder. */
export class GcsContextSource implements ContextSource {
  readonly kind = "gcs" as const;
  readonly bucket: string;
  readonly prefix: string;
  private readonly options: GcsContextSourceOptions;
  private readonly keyFilename: string | undefined;
  private bucketHandle: Bucket | undefined;
  private uploadedKey: string | undefined;

  constructor(options: GcsContextSourceOptions = {}) {
    this.options = options;
    this.prefix = options.prefix ?? "fairing-builds/";
    this.keyFilename =
      options.keyFilename ?? (process.env.GOOGLE_APPLICATION_CREDENTIALS || undefined);
    if (options.bucket) {
      this.bucket = options.bucket;
    } else if (options.project) {
      this.bucket = `fairing-${options.project}`;
    } else {
      throw new InputError(
        "contextSource.bucket is missing: set contextSource.bucket, or contextSource.project to use the bucket fairing-<project>",
      );
    }
  }

  /** Uploads the archive as `<prefix>context-<hex>.tar.gz` unless that object exists. */
  async prepare(archive: ContextArchive, options: PrepareOptions): Promise<PreparedContext> {
    const key = contextObjectKey(this.prefix, options.digest);
    const url = `gs://${this.bucket}/${key}`;
    const step = "upload-context";
    const bucket = await this.connect();
    const file = bucket.file(key);

    try {
      const [exists] = await file.exists();
      if (exists) {
        if (typeof archive !== "string") toNodeReadable(archive).destroy();
        options.onProgress?.({ step, status: "skipped", message: `${url} already exists` });
        return { url, bucket: this.bucket, key, uploaded: false };
      }

      options.onProgress?.({ step, status: "start", message: `uploading context to ${url}` });
      const body = countBytes(toNodeReadable(archive), step, options.size, options.onProgress);
      const resumable = options.size === undefined || options.size > SIMPLE_UPLOAD_LIMIT;
      const sink = file.createWriteStream({
        resumable,
        contentType: "application/gzip",
        ...(resumable ? {} : { validation: "md5" as const }),
      });
      await pipeline(body, sink, options.signal ? { signal: options.signal } : {});
    } catch (error) {
      throw this.wrap(error, key);
    }
    this.uploadedKey = key;
    options.onProgress?.({ step, status: "done", message: url });
    return { url, bucket: this.bucket, key, uploaded: true };
  }

  /** Returns the service account key file for the executor, when one is configured. */
  async secretData(): Promise<Record<string, string> | undefined> {
    if (!this.keyFilename || this.options.podCredentials === false) return undefined;
    let content: string;
    try {
      content = await readFile(this.keyFilename, "utf8");
    } catch (error) {
      throw new InputError(
        `cannot read the Google service account key ${this.keyFilename}: ${(error as Error).message}; fix GOOGLE_APPLICATION_CREDENTIALS or keyFilename`,
        { cause: error },
      );
    }
    registerSecret(content);
    try {
      registerSecret((JSON.parse(content) as { private_key?: string }).private_key);
    } catch {
      // Not JSON: the whole content is registered as a secret already.
    }
    return { [KEY_NAME]: content };
  }

  /** Mounts the key Secret at /secret and sets GOOGLE_APPLICATION_CREDENTIALS to it. */
  podSpec(spec: BuildPodSpec, options: PodSpecOptions = {}): BuildPodSpec {
    if (!options.secretName) return spec;
    const mounted = addSecretVolume(spec, "gcs-credentials", options.secretName, KEY_MOUNT);
    return addEnv(mounted, [
      { name: "GOOGLE_APPLICATION_CREDENTIALS", value: `${KEY_MOUNT}/${KEY_NAME}` },
    ]);
  }

  /** Describes the bucket and endpoint the context goes to. */
  describe(): string {
    const endpoint = this.options.endpoint;
    return `gcs bucket ${this.bucket}${endpoint ? ` at ${endpoint}` : ""}`;
  }

  /** Deletes the object this source uploaded; an object it found and reused stays. */
  async cleanup(): Promise<void> {
    const key = this.uploadedKey;
    if (key === undefined) return;
    const bucket = await this.connect();
    await bucket.file(key).delete({ ignoreNotFound: true });
    this.uploadedKey = undefined;
  }

  private async connect(): Promise<Bucket> {
    if (this.bucketHandle) return this.bucketHandle;
    const sdk = await importSdk<GcsModule>("@google-cloud/storage", "gcs");
    const storage = new sdk.Storage({
      ...(this.options.project ? { projectId: this.options.project } : {}),
      ...(this.options.endpoint ? { apiEndpoint: this.options.endpoint } : {}),
      ...(this.keyFilename ? { keyFilename: this.keyFilename } : {}),
    });
    this.bucketHandle = storage.bucket(this.bucket);
    return this.bucketHandle;
  }

  private wrap(error: unknown, key: string): FairingError {
    if (error instanceof FairingError) return error;
    const status = (error as { code?: number | string }).code;
    const where = `gs://${this.bucket}/${key}${this.options.endpoint ? ` at ${this.options.endpoint}` : ""}`;
    let hint = "check the bucket name and endpoint";
    if (status === 401 || status === 403) {
      hint =
        "check the service account key (GOOGLE_APPLICATION_CREDENTIALS) and its bucket permissions";
    } else if (status === 404) {
      hint = `create the bucket: gcloud storage buckets create gs://${this.bucket}`;
    }
    return new FairingError(
      `context upload to ${where} failed${typeof status === "number" ? ` with HTTP ${status}` : ""}: ${(error as Error).message}; ${hint}`,
      { cause: error },
    );
  }
}
