/**
 * Context sources on Amazon S3 and on S3-compatible stores (MinIO and others). The context
 * archive is uploaded with @aws-sdk/lib-storage, which streams it and switches to a multipart
 * upload for archives larger than one part; the executor reads it as `s3://bucket/key`.
 */
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { FairingError, InputError } from "../../errors.ts";
import { registerSecret } from "../../log.ts";
import {
  addEnv,
  contextObjectKey,
  countBytes,
  importSdk,
  secretEnv,
  toNodeReadable,
  type BuildPodSpec,
  type ContextArchive,
  type ContextSource,
  type EnvVar,
  type PodSpecOptions,
  type PrepareOptions,
  type PreparedContext,
} from "./context-source.ts";

type S3Module = typeof import("@aws-sdk/client-s3");
type StorageModule = typeof import("@aws-sdk/lib-storage");

/** Static credentials for S3; without them the AWS SDK's default credential chain is used. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Options of `S3ContextSource`. */
export interface S3ContextSourceOptions {
  /** Bucket name; default `fairing-<account>-<region>`, which needs `account`. */
  bucket?: string;
  /** AWS account id, used only to derive the default bucket name. */
  account?: string;
  /** Default `us-east-1`. */
  region?: string;
  /** Key prefix of context objects; default `fairing-builds/`. */
  prefix?: string;
  /**
   * Endpoint of an S3-compatible store; path-style addressing is used with it. Default
   * AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL (the variables the AWS SDKs read), unless
   * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
   */
  endpoint?: string;
  credentials?: S3Credentials;
  /**
   * Copy the upload credentials into the build pod's Secret. Default true; set false when the
   * build pod gets S3 access another way (an IAM role for its service account).
   */
  podCredentials?: boolean;
  /** Create the bucket when it does not exist. Default true. */
  createBucket?: boolean;
  /** Multipart part size in bytes (at least 5 MiB). Default 8 MiB. */
  partSize?: number;
}

const DEFAULT_PREFIX = "fairing-builds/";
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/** Uploads the build context to an S3 bucket for the cluster builder. */
export class S3ContextSource implements ContextSource {
  readonly kind: "s3" | "minio" = "s3";
  readonly bucket: string;
  readonly region: string;
  readonly prefix: string;
  readonly endpoint: string | undefined;
  protected readonly options: S3ContextSourceOptions;
  private client: S3Client | undefined;
  private sdk: S3Module | undefined;
  private uploadedKey: string | undefined;
  /** True when `secretData()` put a session token into the build pod's Secret. */
  private secretHasSessionToken = false;

  constructor(options: S3ContextSourceOptions = {}) {
    this.options = options;
    this.region = options.region ?? "us-east-1";
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    // The SDK would send to an endpoint from the environment on its own; reading it here as
    // well gives the executor the same endpoint and the client the S3-compatible settings.
    this.endpoint = options.endpoint ?? endpointFromEnv(process.env);
    if (options.bucket) {
      this.bucket = options.bucket;
    } else if (options.account) {
      this.bucket = `fairing-${options.account}-${this.region}`;
    } else {
      throw new InputError(
        "contextSource.bucket is missing: set contextSource.bucket, or contextSource.account to use the bucket fairing-<account>-<region>",
      );
    }
    if (options.credentials) {
      registerSecret(options.credentials.secretAccessKey);
      registerSecret(options.credentials.sessionToken);
    }
  }

  /** Uploads the archive as `<prefix>context-<hex>.tar.gz` unless that object exists. */
  async prepare(archive: ContextArchive, options: PrepareOptions): Promise<PreparedContext> {
    const key = contextObjectKey(this.prefix, options.digest);
    const url = `s3://${this.bucket}/${key}`;
    const step = "upload-context";
    const { client, sdk } = await this.connect();

    if (await this.objectExists(client, sdk, key, options.signal)) {
      if (typeof archive !== "string") toNodeReadable(archive).destroy();
      options.onProgress?.({ step, status: "skipped", message: `${url} already exists` });
      return { url, bucket: this.bucket, key, uploaded: false };
    }

    await this.ensureBucket(client, sdk);
    options.onProgress?.({ step, status: "start", message: `uploading context to ${url}` });
    try {
      await this.upload(client, key, archive, options);
    } catch (error) {
      throw this.wrap(error, key);
    }
    this.uploadedKey = key;
    options.onProgress?.({ step, status: "done", message: url });
    return { url, bucket: this.bucket, key, uploaded: true };
  }

  /** Returns the credentials the executor needs, unless `podCredentials` is false. */
  async secretData(): Promise<Record<string, string> | undefined> {
    if (this.options.podCredentials === false) return undefined;
    const { client } = await this.connect();
    const identity = await client.config.credentials();
    registerSecret(identity.secretAccessKey);
    registerSecret(identity.sessionToken);
    this.secretHasSessionToken = Boolean(identity.sessionToken);
    return {
      AWS_ACCESS_KEY_ID: identity.accessKeyId,
      AWS_SECRET_ACCESS_KEY: identity.secretAccessKey,
      ...(identity.sessionToken ? { AWS_SESSION_TOKEN: identity.sessionToken } : {}),
    };
  }

  /** Sets AWS_REGION (and the endpoint for S3-compatible stores) and the Secret references. */
  podSpec(spec: BuildPodSpec, options: PodSpecOptions = {}): BuildPodSpec {
    const env: EnvVar[] = [{ name: "AWS_REGION", value: this.region }];
    if (this.endpoint) {
      env.push({ name: "S3_ENDPOINT", value: this.endpoint });
      env.push({ name: "S3_FORCE_PATH_STYLE", value: "true" });
    }
    if (options.secretName) {
      env.push(secretEnv("AWS_ACCESS_KEY_ID", options.secretName));
      env.push(secretEnv("AWS_SECRET_ACCESS_KEY", options.secretName));
      if (this.secretHasSessionToken || this.options.credentials?.sessionToken) {
        env.push(secretEnv("AWS_SESSION_TOKEN", options.secretName));
      }
    }
    return addEnv(spec, env);
  }

  /** Describes the bucket, region and endpoint the context goes to. */
  describe(): string {
    const where = this.endpoint ? `at ${this.endpoint}` : `in region ${this.region}`;
    return `${this.kind} bucket ${this.bucket} ${where}`;
  }

  /** Deletes the context object this source uploaded; an object it found and reused stays. */
  async cleanup(): Promise<void> {
    const key = this.uploadedKey;
    if (key === undefined) return;
    const { client, sdk } = await this.connect();
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    this.uploadedKey = undefined;
  }

  private async connect(): Promise<{ client: S3Client; sdk: S3Module }> {
    if (this.client && this.sdk) return { client: this.client, sdk: this.sdk };
    const sdk = await importSdk<S3Module>("@aws-sdk/client-s3", this.kind);
    const config: S3ClientConfig = {
      region: this.region,
      ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
    };
    if (this.endpoint) {
      // S3-compatible stores reject or mis-store the aws-chunked bodies the SDK sends by
      // default for streamed uploads, so checksums are sent only where the API requires them.
      config.endpoint = this.endpoint;
      config.forcePathStyle = true;
      config.requestChecksumCalculation = "WHEN_REQUIRED";
      config.responseChecksumValidation = "WHEN_REQUIRED";
    }
    this.sdk = sdk;
    this.client = new sdk.S3Client(config);
    return { client: this.client, sdk };
  }

  private async objectExists(
    client: S3Client,
    sdk: S3Module,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    try {
      await client.send(
        new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }),
        signal ? { abortSignal: signal } : {},
      );
      return true;
    } catch (error) {
      const status = httpStatus(error);
      if (status === 404) return false;
      throw this.wrap(error, key);
    }
  }

  private async upload(
    client: S3Client,
    key: string,
    archive: ContextArchive,
    options: PrepareOptions,
  ): Promise<void> {
    const { Upload } = await importSdk<StorageModule>("@aws-sdk/lib-storage", this.kind);
    const body = countBytes(
      toNodeReadable(archive),
      "upload-context",
      options.size,
      options.onProgress,
    );
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const upload = new Upload({
        client,
        params: { Bucket: this.bucket, Key: key, Body: body, ContentType: "application/gzip" },
        partSize: this.options.partSize ?? DEFAULT_PART_SIZE,
        queueSize: 2,
        abortController: controller,
      });
      await upload.done();
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      body.destroy();
    }
  }

  private async ensureBucket(client: S3Client, sdk: S3Module): Promise<void> {
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (error) {
      if (httpStatus(error) !== 404) throw this.wrap(error, undefined);
      if (this.options.createBucket === false) {
        throw new FairingError(
          `bucket ${this.bucket} does not exist at ${this.endpoint ?? `S3 region ${this.region}`}: create it, or set createBucket to true`,
          { cause: error },
        );
      }
    }
    const location =
      this.region === "us-east-1" || this.endpoint
        ? {}
        : { CreateBucketConfiguration: { LocationConstraint: this.region as never } };
    try {
      await client.send(new sdk.CreateBucketCommand({ Bucket: this.bucket, ...location }));
    } catch (error) {
      throw this.wrap(error, undefined);
    }
  }

  private wrap(error: unknown, key: string | undefined): FairingError {
    const status = httpStatus(error);
    const code = (error as { name?: string; Code?: string }).Code ?? (error as Error).name;
    const where = `${this.endpoint ?? `S3 region ${this.region}`}, bucket ${this.bucket}${key ? `, key ${key}` : ""}`;
    let hint = "check the bucket name, region and endpoint";
    if (status === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch/.test(code)) {
      hint =
        "check the S3 credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket policy";
    } else if (isNoSuchBucket(error)) {
      hint = "create the bucket, or set createBucket to true";
    }
    return new FairingError(
      `context upload to ${where} failed${status ? ` with HTTP ${status}` : ""} (${code}): ${hint}`,
      { cause: error },
    );
  }
}

/** Options of `MinioContextSource`: an S3-compatible endpoint and a bucket are required. */
export interface MinioContextSourceOptions extends Omit<S3ContextSourceOptions, "account"> {
  endpoint: string;
  bucket: string;
}

/**
 * Uploads the build context to an S3-compatible store (MinIO and others) with path-style
 * addressing; the executor gets S3_ENDPOINT and S3_FORCE_PATH_STYLE=true.
 */
export class MinioContextSource extends S3ContextSource {
  override readonly kind = "minio" as const;

  constructor(options: MinioContextSourceOptions) {
    if (!options.endpoint) {
      throw new InputError(
        "contextSource.endpoint is missing: set it to the URL of the S3-compatible store, e.g. http://minio.example:9000",
      );
    }
    super(options);
  }
}

/** Returns the S3 endpoint the AWS SDKs take from the environment, if any. */
export function endpointFromEnv(env: Record<string, string | undefined>): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === "true") return undefined;
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNoSuchBucket(error: unknown): boolean {
  const name = (error as { name?: string; Code?: string }).Code ?? (error as Error).name;
  return name === "NoSuchBucket";
}
