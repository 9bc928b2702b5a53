/**
 * Media types and JSON shapes of OCI and Docker v2.2 manifests, indexes and image configs,
 * and platform selection from an index.
 */
import { InputError } from "../errors.ts";

/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** OCI layer, gzip-compressed tar. */
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
/** OCI layer, uncompressed tar. */
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
/** Docker image manifest, schema 2. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list, the Docker counterpart of an OCI index. */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Docker layer, gzip-compressed tar. */
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** Docker foreign layer, which registries do not store and clients fetch from `urls`. */
export const DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/** Media types of single-image manifests, in the order an `Accept` header prefers them. */
export const IMAGE_MANIFEST_TYPES = [OCI_MANIFEST, DOCKER_MANIFEST] as const;
/** Media types of indexes and manifest lists. */
export const INDEX_TYPES = [OCI_INDEX, DOCKER_MANIFEST_LIST] as const;
/** Every manifest media type fairing reads; the default `Accept` list of `getManifest`. */
export const ALL_MANIFEST_TYPES = [...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES] as const;

/** A platform an image is built for, as found in an index entry. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** A reference to content by media type, digest and size. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** An OCI image manifest or Docker v2.2 manifest: one config and its layers. */
export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An OCI image index or Docker manifest list: one manifest per platform. */
export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime settings inside an image config (`config` key). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  [key: string]: unknown;
}

/** One entry of an image config's history. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An OCI (or Docker) image config JSON. Unknown keys are kept so a rewrite does not lose them. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/** Returns true when `mediaType` is an OCI index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return (INDEX_TYPES as readonly string[]).includes(mediaType);
}

/** Returns true when `mediaType` is an OCI or Docker single-image manifest. */
export function isImageManifestMediaType(mediaType: string): boolean {
  return (IMAGE_MANIFEST_TYPES as readonly string[]).includes(mediaType);
}

/**
 * Parses a platform string `os/architecture[/variant]`, e.g. `linux/amd64` or
 * `linux/arm64/v8`. Throws InputError naming the value.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split("/");
  const valid =
    parts.length >= 2 && parts.length <= 3 && parts.every((part) => /^[\w.-]+$/.test(part));
  if (!valid) {
    throw new InputError(
      `invalid platform "${text}": expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8`,
    );
  }
  const [os = "", architecture = "", variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Formats a platform as `os/architecture[/variant]`. */
export function formatPlatform(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

// Variants that registries and Docker treat as the default when an entry omits them.
const DEFAULT_VARIANTS: Record<string, string> = { arm64: "v8", arm: "v7" };

function variantMatches(wanted: Platform, offered: Platform): boolean {
  if (wanted.variant === undefined) return true;
  const offeredVariant = offered.variant ?? DEFAULT_VARIANTS[offered.architecture];
  return offeredVariant === wanted.variant;
}

/**
 * Selects the manifest descriptor for `platform` (`os/architecture[/variant]`) from an index.
 * Without a variant in `platform`, the first entry for the OS and architecture wins; `arm64`
 * entries without a variant count as `v8`. Throws InputError listing the platforms available.
 */
export function selectPlatform(
  index: Index,
  platform: string,
  where = "the image index",
): Descriptor {
  const wanted = parsePlatform(platform);
  const candidates = index.manifests.filter((descriptor) => descriptor.platform !== undefined);
  const match = candidates.find((descriptor) => {
    const offered = descriptor.platform as Platform;
    return (
      offered.os === wanted.os &&
      offered.architecture === wanted.architecture &&
      variantMatches(wanted, offered)
    );
  });
  if (match) return match;

  const available = candidates
    .map((descriptor) => formatPlatform(descriptor.platform as Platform))
    .filter((name) => name !== "unknown/unknown");
  const list = available.length > 0 ? available.join(", ") : "none";
  throw new InputError(
    `platform ${platform} not found in ${where}; available platforms: ${list}. ` +
      `Choose one of these or use a base image built for ${platform}`,
  );
}

/** Parses manifest bytes as JSON and checks the fields fairing relies on. */
export function parseManifestJson(bytes: Uint8Array, where: string): Manifest | Index {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new InputError(`invalid manifest from ${where}: not JSON (${(error as Error).message})`);
  }
  const record = value as Record<string, unknown> | null;
  if (!record || typeof record !== "object" || record.schemaVersion !== 2) {
    throw new InputError(
      `unsupported manifest from ${where}: schemaVersion must be 2 (Docker schema 1 images are not supported; re-push the image with a current client)`,
    );
  }
  if (Array.isArray(record.manifests)) return record as unknown as Index;
  if (record.config && Array.isArray(record.layers)) return record as unknown as Manifest;
  throw new InputError(
    `invalid manifest from ${where}: it has neither "manifests" nor "config" and "layers"`,
  );
}
