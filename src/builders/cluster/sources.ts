/**
 * Creates the context source a `contextSource` config section describes. The SDK of each kind
 * is imported only when its source first talks to the store.
 */
import type { ContextSourceConfig } from "../../config/types.ts";
import { AzureBlobContextSource } from "./azure.ts";
import type { ContextSource } from "./context-source.ts";
import { GcsContextSource } from "./gcs.ts";
import { MinioContextSource, S3ContextSource } from "./s3.ts";

/**
 * Creates the context source for `config`, with credentials from the environment. s3 and
 * minio use the AWS SDK's default chain. azure reads AZURE_STORAGE_ACCESS_KEY,
 * AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING. gcs uses GOOGLE_APPLICATION_CREDENTIALS
 * or the default credentials.
 */
export function createContextSource(config: ContextSourceConfig): ContextSource {
  switch (config.kind) {
    case "gcs":
      return new GcsContextSource({
        prefix: config.prefix,
        ...(config.bucket ? { bucket: config.bucket } : {}),
        ...(config.project ? { project: config.project } : {}),
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...(config.podCredentials === undefined ? {} : { podCredentials: config.podCredentials }),
      });
    case "s3":
      return new S3ContextSource({
        region: config.region,
        prefix: config.prefix,
        ...(config.bucket ? { bucket: config.bucket } : {}),
        ...(config.account ? { account: config.account } : {}),
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...(config.podCredentials === undefined ? {} : { podCredentials: config.podCredentials }),
      });
    case "azure":
      return new AzureBlobContextSource({
        account: config.account,
        container: config.container,
        prefix: config.prefix,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      });
    case "minio":
      return new MinioContextSource({
        endpoint: config.endpoint,
        bucket: config.bucket,
        region: config.region,
        prefix: config.prefix,
        ...(config.podCredentials === undefined ? {} : { podCredentials: config.podCredentials }),
      });
  }
}
