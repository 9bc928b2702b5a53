/**
 * Secrets the cluster builder creates for one build: the executor's registry credentials (a
 * kubernetes.io/dockerconfigjson Secret) and the context source credentials. Values go into
 * the Secret only; the Job references them by name and key.
 */
import type { Credential } from "../registry/credentials.ts";
import { helperServerUrl } from "../registry/credentials.ts";
import { registerSecret } from "../log.ts";
import { apiError, apiStatus, type KubeConnection } from "./client.ts";
import { buildLabels } from "./job.ts";

/** Creates a Secret named `<prefix><random>` with `stringData`; returns its name. */
export async function createBuildSecret(
  connection: KubeConnection,
  options: {
    prefix: string;
    buildId: string;
    type?: string;
    stringData: Record<string, string>;
  },
): Promise<string> {
  for (const value of Object.values(options.stringData)) registerSecret(value);
  const body = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      generateName: options.prefix,
      namespace: connection.namespace,
      labels: buildLabels(options.buildId),
    },
    type: options.type ?? "Opaque",
    stringData: options.stringData,
  };
  try {
    const created = await connection.core.createNamespacedSecret({
      namespace: connection.namespace,
      body,
    });
    const name = created.metadata?.name;
    if (!name) throw new Error("the API server returned a Secret without a name");
    return name;
  } catch (error) {
    throw apiError(
      `creating Secret ${options.prefix}* in namespace ${connection.namespace}`,
      error,
      connection.server,
    );
  }
}

/** Deletes Secret `name`; a Secret that is already gone is not an error. */
export async function deleteSecret(connection: KubeConnection, name: string): Promise<void> {
  try {
    await connection.core.deleteNamespacedSecret({ name, namespace: connection.namespace });
  } catch (error) {
    if (apiStatus(error) === 404) return;
    throw apiError(
      `deleting Secret ${name} in namespace ${connection.namespace}`,
      error,
      connection.server,
    );
  }
}

/** Returns the `.dockerconfigjson` text that gives `credential` for `registry`. */
export function dockerConfigJson(registry: string, credential: Credential): string {
  const entry: Record<string, string> = {};
  if (credential.username !== undefined && credential.password !== undefined) {
    entry.auth = Buffer.from(`${credential.username}:${credential.password}`).toString("base64");
    registerSecret(entry.auth);
  }
  if (credential.identityToken) entry.identitytoken = credential.identityToken;
  if (credential.registryToken) entry.registrytoken = credential.registryToken;
  return JSON.stringify({ auths: { [helperServerUrl(registry)]: entry } });
}
