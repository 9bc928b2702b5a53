/**
 * Appends layers to a base image: a new config (diffIDs, history, command, working directory,
 * environment, labels, user) and a new manifest whose media types match the base's family.
 */
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  type Descriptor,
  type ImageConfig,
  type Manifest,
} from "../registry/manifest.ts";
import type { BaseImage } from "./base.ts";
import { jsonBytes, sha256Digest } from "./digest.ts";

/** A gzip layer blob to append: its digest and size, and the diffID of its uncompressed tar. */
export interface AppendLayer {
  digest: string;
  size: number;
  diffID: string;
  /** History comment for the layer, e.g. `fairing context`. */
  comment: string;
}

/** Image settings the appended image gets. */
export interface ImageSettings {
  /** Full command; becomes `Cmd`, and `Entrypoint` is cleared so the command runs as given. */
  command: string[];
  workingDir: string;
  /** Added to the base's environment, replacing variables of the same name. */
  env: Record<string, string>;
  labels: Record<string, string>;
  user?: string;
  /** RFC 3339 time for `created` and the history entries. */
  created: string;
}

/** The appended image: config and manifest with their bytes and digests. */
export interface AppendedImage {
  config: ImageConfig;
  configBytes: Uint8Array;
  configDigest: string;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  manifestDigest: string;
  manifestMediaType: string;
}

/** Returns the media types the appended image uses, matching the base's family. */
export function mediaTypesFor(base: BaseImage): {
  manifest: string;
  config: string;
  layer: string;
} {
  return base.format === "docker"
    ? { manifest: DOCKER_MANIFEST, config: DOCKER_CONFIG, layer: DOCKER_LAYER_GZIP }
    : { manifest: OCI_MANIFEST, config: OCI_CONFIG, layer: OCI_LAYER_GZIP };
}

function mergeEnv(baseEnv: string[] | undefined, extra: Record<string, string>): string[] {
  const result = [...(baseEnv ?? [])];
  for (const [name, value] of Object.entries(extra)) {
    const index = result.findIndex((item) => item.split("=", 1)[0] === name);
    const entry = `${name}=${value}`;
    if (index >= 0) result[index] = entry;
    else result.push(entry);
  }
  return result;
}

/** Computes the config and manifest of `base` with `layers` appended. Pure: no I/O. */
export function appendLayers(
  base: BaseImage,
  layers: AppendLayer[],
  settings: ImageSettings,
): AppendedImage {
  const types = mediaTypesFor(base);
  const baseConfig = base.config;
  const containerConfig = { ...(baseConfig.config ?? {}) };

  containerConfig.Env = mergeEnv(containerConfig.Env, { ...settings.env, FAIRING_RUNTIME: "1" });
  containerConfig.Cmd = settings.command.length > 0 ? [...settings.command] : null;
  containerConfig.Entrypoint = null;
  containerConfig.WorkingDir = settings.workingDir;
  if (settings.user !== undefined) containerConfig.User = settings.user;
  const labels = { ...(containerConfig.Labels ?? {}), ...settings.labels };
  if (Object.keys(labels).length > 0) containerConfig.Labels = labels;

  const config: ImageConfig = {
    ...baseConfig,
    created: settings.created,
    config: containerConfig,
    rootfs: {
      type: "layers",
      diff_ids: [...baseConfig.rootfs.diff_ids, ...layers.map((layer) => layer.diffID)],
    },
    history: [
      ...(baseConfig.history ?? []),
      ...layers.map((layer) => ({
        created: settings.created,
        created_by: `fairing append: ${layer.comment}`,
        comment: layer.comment,
      })),
    ],
  };
  // Docker-era configs carry container/container_config from the base's own build; they
  // describe the base's last step, not this image, so they are dropped.
  delete config.container;
  delete config.container_config;

  const configBytes = jsonBytes(config);
  const configDigest = sha256Digest(configBytes);
  const appended: Descriptor[] = layers.map((layer) => ({
    mediaType: types.layer,
    digest: layer.digest,
    size: layer.size,
  }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: configDigest, size: configBytes.length },
    layers: [...base.manifest.layers, ...appended],
  };
  if (base.format === "oci" && base.kind !== "scratch") {
    manifest.annotations = {
      "org.opencontainers.image.base.name": base.name,
      ...(base.digest ? { "org.opencontainers.image.base.digest": base.digest } : {}),
    };
  }
  const manifestBytes = jsonBytes(manifest);
  return {
    config,
    configBytes,
    configDigest,
    manifest,
    manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    manifestMediaType: types.manifest,
  };
}
