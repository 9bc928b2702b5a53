import type { Config } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { RegistryClient } from "../registry/client.ts";

type ClientFactory = (registry: string) => RegistryClient;

/** Factories already made, per config and logger, so a plan and its apply share clients. */
const factories = new WeakMap<Config, WeakMap<Logger, ClientFactory>>();

/**
 * Returns a function giving one `RegistryClient` per registry host, with the host's
 * `registries` settings from the config. Calls with the same config and logger get the same
 * clients, so a run probes each registry and fetches each token once.
 */
export function registryClients(config: Config, logger: Logger): ClientFactory {
  let byLogger = factories.get(config);
  if (!byLogger) {
    byLogger = new WeakMap();
    factories.set(config, byLogger);
  }
  const known = byLogger.get(logger);
  if (known) return known;

  const clients = new Map<string, RegistryClient>();
  const factory: ClientFactory = (registry) => {
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
  byLogger.set(logger, factory);
  return factory;
}
