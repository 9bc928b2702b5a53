/**
 * Context source on Azure Blob Storage. The executor reads a context from
 * `https://<account>.blob.core.windows.net/<container>/<blob>` with the account key in
 * AZURE_STORAGE_ACCESS_KEY, so no Azure Files share is needed.
 */
import type { ContainerClient } from "@azure/storage-blob";
import { FairingError, InputError } from "../../errors.ts";
import { registerSecret } from "../../log.ts";
import {
  addEnv,
  contextObjectKey,
  importSdk,
  secretEnv,
  toNodeReadable,
  type BuildPodSpec,
  type ContextArchive,
  type ContextSource,
  type PodSpecOptions,
  type PrepareOptions,
  type PreparedContext,
} from "./context-source.ts";

type BlobModule = typeof import("@azure/storage-blob");

/** Options of `AzureBlobContextSource`. */
export interface AzureBlobContextSourceOptions {
  /** Storage account name. */
  account: string;
  /** Blob container; created when missing unless `createContainer` is false. */
  container: string;
  /** Blob name prefix; default `fairing-builds/`. */
  prefix?: string;
  /**
   * Blob service URL; default the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING, else
   * `https://<account>.blob.core.windows.net`.
   */
  endpoint?: string;
  /**
   * Account key; default AZURE_STORAGE_ACCESS_KEY, then AZURE_STORAGE_KEY, then the AccountKey
   * of AZURE_STORAGE_CONNECTION_STRING when its AccountName is `account`.
   */
  accountKey?: string;
  /** Default true. */
  createContainer?: boolean;
  /** Block size of the streamed upload in bytes. Default 4 MiB. */
  blockSize?: number;
}

/** Uploads the build context to an Azure Blob container for the cluster builder. */
export class AzureBlobContextSource implements ContextSource {
  readonly kind = "azure" as const;
  readonly account: string;
  readonly container: string;
  readonly prefix: string;
  readonly endpoint: string;
  private readonly accountKey: string;
  private readonly options: AzureBlobContextSourceOptions;
  private containerClient: ContainerClient | undefined;
  private uploadedBlob: string | undefined;

  constructor(options: AzureBlobContextSourceOptions) {
    if (!options.account) {
      throw new InputError("contextSource.account is missing: set the Azure storage account name");
    }
    if (!options.container) {
      throw new InputError("contextSource.container is missing: set the Azure blob container name");
    }
    const connection = parseConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
    const fromConnection =
      connection.AccountName === options.account ? connection : ({} as ConnectionString);
    registerSecret(fromConnection.AccountKey);
    const key =
      options.accountKey ||
      process.env.AZURE_STORAGE_ACCESS_KEY ||
      process.env.AZURE_STORAGE_KEY ||
      fromConnection.AccountKey ||
      "";
    if (!key) {
      throw new InputError(
        `no key for Azure storage account ${options.account}: set AZURE_STORAGE_ACCESS_KEY, ` +
          `AZURE_STORAGE_KEY, or AZURE_STORAGE_CONNECTION_STRING with AccountName=${options.account} ` +
          `(the executor reads the context with the account key)`,
      );
    }
    // NOTE: only shared-key auth is supported, because the executor reads Azure contexts with
    // the account key; Azure AD identities would need a SAS URL instead.
    registerSecret(key);
    this.options = options;
    this.account = options.account;
    this.container = options.container;
    this.prefix = options.prefix ?? "fairing-builds/";
    this.endpoint = (
      options.endpoint ??
      fromConnection.BlobEndpoint ??
      `https://${options.account}.blob.core.windows.net`
    ).replace(/\/+$/, "");
    this.accountKey = key;
  }

  /** Uploads the archive as a block blob unless a blob with its digest exists. */
  async prepare(archive: ContextArchive, options: PrepareOptions): Promise<PreparedContext> {
    const key = contextObjectKey(this.prefix, options.digest);
    const step = "upload-context";
    const container = await this.connect();
    const blob = container.getBlockBlobClient(key);
    const url = blob.url;
    const abort = options.signal ? { abortSignal: options.signal } : {};

    try {
      if (await blob.exists(abort)) {
        if (typeof archive !== "string") toNodeReadable(archive).destroy();
        options.onProgress?.({ step, status: "skipped", message: `${url} already exists` });
        return { url, bucket: this.container, key, uploaded: false };
      }
      if (this.options.createContainer !== false) await container.createIfNotExists(abort);

      options.onProgress?.({ step, status: "start", message: `uploading context to ${url}` });
      const body = toNodeReadable(archive);
      const blockSize = this.options.blockSize ?? 4 * 1024 * 1024;
      await blob.uploadStream(body, blockSize, 2, {
        ...abort,
        blobHTTPHeaders: { blobContentType: "application/gzip" },
        onProgress: (progress) =>
          options.onProgress?.({
            step,
            status: "progress",
            bytes: progress.loadedBytes,
            ...(options.size === undefined ? {} : { total: options.size }),
          }),
      });
    } catch (error) {
      throw this.wrap(error, key);
    }
    this.uploadedBlob = key;
    options.onProgress?.({ step, status: "done", message: url });
    return { url, bucket: this.container, key, uploaded: true };
  }

  /** Returns the account key for the executor, as AZURE_STORAGE_ACCESS_KEY. */
  async secretData(): Promise<Record<string, string> | undefined> {
    return { AZURE_STORAGE_ACCESS_KEY: this.accountKey };
  }

  /** Points AZURE_STORAGE_ACCESS_KEY of the executor at the Secret. */
  podSpec(spec: BuildPodSpec, options: PodSpecOptions = {}): BuildPodSpec {
    if (!options.secretName) return spec;
    return addEnv(spec, [secretEnv("AZURE_STORAGE_ACCESS_KEY", options.secretName)]);
  }

  /** Describes the container, account and endpoint the context goes to. */
  describe(): string {
    return `azure container ${this.container} of account ${this.account} at ${this.endpoint}`;
  }

  /** Deletes the blob this source uploaded; a blob it found and reused stays. */
  async cleanup(): Promise<void> {
    const key = this.uploadedBlob;
    if (key === undefined) return;
    const container = await this.connect();
    await container.getBlockBlobClient(key).deleteIfExists();
    this.uploadedBlob = undefined;
  }

  private async connect(): Promise<ContainerClient> {
    if (this.containerClient) return this.containerClient;
    const sdk = await importSdk<BlobModule>("@azure/storage-blob", "azure");
    const credential = new sdk.StorageSharedKeyCredential(this.account, this.accountKey);
    const service = new sdk.BlobServiceClient(this.endpoint, credential);
    this.containerClient = service.getContainerClient(this.container);
    return this.containerClient;
  }

  private wrap(error: unknown, key: string): FairingError {
    if (error instanceof FairingError) return error;
    const status = (error as { statusCode?: number }).statusCode;
    const code = (error as { code?: string }).code ?? (error as Error).name;
    let hint = "check the account, container and endpoint";
    if (status === 403 || code === "AuthenticationFailed" || code === "AuthorizationFailure") {
      hint = `check the key of storage account ${this.account} (AZURE_STORAGE_ACCESS_KEY)`;
    } else if (code === "ContainerNotFound") {
      hint = `create container ${this.container}, or set createContainer to true`;
    }
    return new FairingError(
      `context upload to ${this.endpoint}/${this.container}/${key} failed${status ? ` with HTTP ${status}` : ""} (${code}): ${hint}`,
      { cause: error },
    );
  }
}

/** The fields of an Azure Storage connection string this source reads. */
interface ConnectionString {
  AccountName?: string;
  AccountKey?: string;
  BlobEndpoint?: string;
}

/**
 * Parses `Name=value;Name=value` pairs of a connection string. Values may contain `=`
 * (base64 keys end in it), so each pair splits at its first `=` only.
 */
function parseConnectionString(text: string | undefined): ConnectionString {
  const fields: Record<string, string> = {};
  for (const pair of (text ?? "").split(";")) {
    const index = pair.indexOf("=");
    if (index > 0) fields[pair.slice(0, index).trim()] = pair.slice(index + 1).trim();
  }
  const parsed: ConnectionString = {};
  if (fields.AccountName) parsed.AccountName = fields.AccountName;
  if (fields.AccountKey) parsed.AccountKey = fields.AccountKey;
  if (fields.BlobEndpoint) parsed.BlobEndpoint = fields.BlobEndpoint;
  return parsed;
}
