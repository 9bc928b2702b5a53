import type { Config } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { RegistryClient } from "../registry/client.ts";

/**
 * Returns a function giving one `RegistryClient` per registry host, with the host's
 * `registries` settings from the config, so tokens are fetched once per run.
 */
export function registryClients(
  config: Config,
  logger: Logger,
): (registry: string) => RegistryClient {
  const clients = new Map<string, RegistryClient>();
  return (registry) => {
    let client = clients.get(registry);
    if (!client) {
      client = new RegistryClient(registry, {
        insecure: config.registries[registry]?.insecure ?? false,
        logger,
      });
      clients.set(registry, client);
    }
    return client;
  };
}
