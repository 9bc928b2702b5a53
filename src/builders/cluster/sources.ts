/**
 * Creates the context source a `contextSource` config section describes. The SDK of each kind
 * is imported only when its source first talks to the store.
 */
import type { ContextSourceConfig } from "../../config/types.ts";
import { AzureBlobContextSource } from "./azure.ts";
import type { ContextSource } from "./context-source.ts";
import { GcsContextSource } from "./gcs.ts";
import { MinioContextSource, S3ContextSource } from "./s3.ts";

/** Creates the context source for `config`; credentials come from the environment. */
export function createContextSource(config: ContextSourceConfig): ContextSource {
  switch (config.kind) {
    case "gcs":
      return new GcsContextSource({
        prefix: config.prefix,
        ...(config.bucket ? { bucket: config.bucket } : {}),
        ...(config.project ? { project: config.project } : {}),
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      });
    case "s3":
      return new S3ContextSource({
        region: config.region,
        prefix: config.prefix,
        ...(config.bucket ? { bucket: config.bucket } : {}),
        ...(config.account ? { account: config.account } : {}),
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
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
      });
  }
}
