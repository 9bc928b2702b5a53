/**
 * Base images: resolves `baseImage` to one single-platform manifest and its config, from a
 * registry, a local OCI image layout (`oci:PATH[:TAG]`) or `scratch`, and opens its layer blobs
 * for outputs that need them.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { FairingError, InputError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { RegistryClient } from "../registry/client.ts";
import {
  OCI_CONFIG,
  OCI_MANIFEST,
  isIndexMediaType,
  parseManifestJson,
  parsePlatform,
  selectPlatform,
  type ImageConfig,
  type Index,
  type Manifest,
} from "../registry/manifest.ts";
import { formatReference, parseReference, type ImageReference } from "../registry/reference.ts";
import { sha256Hex } from "./digest.ts";

/** A resolved base image: one manifest for one platform, its config, and access to its blobs. */
export interface BaseImage {
  /** The `baseImage` value as written in the config. */
  name: string;
  kind: "registry" | "oci-layout" | "scratch";
  /** Manifest digest; undefined for `scratch`. */
  digest?: string;
  manifest: Manifest;
  manifestMediaType: string;
  config: ImageConfig;
  /** Media types of the family the base uses, so appended layers match it. */
  format: "oci" | "docker";
  /** The registry repository holding the base, when it came from a registry. */
  source?: { client: RegistryClient; reference: ImageReference };
  /** Opens a layer blob of the base as a stream. */
  openBlob(digest: string): Promise<ReadableStream<Uint8Array>>;
}

/** Per-registry settings the resolver needs: a client for each host. */
export type ClientFor = (registry: string) => RegistryClient;

/** Options of `resolveBase`. */
export interface ResolveBaseOptions {
  /** `os/architecture[/variant]` to pick from an index. */
  platform: string;
  /** Directory `oci:` paths are relative to. */
  root: string;
  clientFor: ClientFor;
  logger: Logger;
}

/** Resolves `name` (`scratch`, `oci:PATH[:TAG]` or an image reference) to a base image. */
export async function resolveBase(name: string, options: ResolveBaseOptions): Promise<BaseImage> {
  if (name === "scratch") return scratchBase(options.platform);
  if (name.startsWith("oci:")) return await layoutBase(name, options);
  return await registryBase(name, options);
}

function scratchBase(platform: string): BaseImage {
  const { os, architecture, variant } = parsePlatform(platform);
  const config: ImageConfig = {
    architecture,
    os,
    ...(variant ? { variant } : {}),
    config: {},
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
  return {
    name: "scratch",
    kind: "scratch",
    manifest: {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: "", size: 0 },
      layers: [],
    },
    manifestMediaType: OCI_MANIFEST,
    config,
    format: "oci",
    openBlob: async (digest) => {
      throw new FairingError(`the scratch base image has no blob ${digest}`);
    },
  };
}

/**
 * Rejects a single-platform base built for another platform than the one configured. Configs
 * without os or architecture (some hand-made images) are accepted.
 */
function checkPlatform(config: ImageConfig, platform: string, where: string): void {
  const wanted = parsePlatform(platform);
  if (!config.os || !config.architecture) return;
  const variantDiffers =
    wanted.variant !== undefined &&
    config.variant !== undefined &&
    wanted.variant !== config.variant;
  if (config.os === wanted.os && config.architecture === wanted.architecture && !variantDiffers) {
    return;
  }
  const offered = [config.os, config.architecture, config.variant].filter(Boolean).join("/");
  throw new InputError(
    `${where} is built for ${offered} only, not ${platform}; set platform to ${offered} or use a base image built for ${platform}`,
  );
}

function formatOf(mediaType: string): "oci" | "docker" {
  return mediaType.startsWith("application/vnd.docker.") ? "docker" : "oci";
}

function parseConfig(bytes: Uint8Array, where: string): ImageConfig {
  try {
    const config = JSON.parse(new TextDecoder().decode(bytes)) as ImageConfig;
    if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids)) {
      throw new Error("rootfs.diff_ids is missing");
    }
    return config;
  } catch (error) {
    throw new FairingError(`invalid image config in ${where}: ${(error as Error).message}`);
  }
}

async function registryBase(name: string, options: ResolveBaseOptions): Promise<BaseImage> {
  const reference = parseReference(name);
  const client = options.clientFor(reference.registry);
  const where = formatReference(reference);

  let fetched = await client.getManifest(reference.repository, reference.digest ?? reference.tag!);
  let parsed = parseManifestJson(fetched.bytes, where);
  if (isIndexMediaType(fetched.mediaType) || "manifests" in parsed) {
    const chosen = selectPlatform(parsed as Index, options.platform, `the index of ${where}`);
    options.logger.debug(`base ${where}: picked ${chosen.digest} for ${options.platform}`);
    fetched = await client.getManifest(reference.repository, chosen.digest);
    parsed = parseManifestJson(fetched.bytes, where);
    if ("manifests" in parsed) {
      throw new FairingError(
        `the index of ${where} points at another index; nested indexes are not supported`,
      );
    }
  }
  const manifest = parsed as Manifest;
  const configBytes = await client.getBlobBytes(reference.repository, manifest.config.digest);
  const config = parseConfig(configBytes, where);
  checkPlatform(config, options.platform, where);
  return {
    name,
    kind: "registry",
    digest: fetched.digest,
    manifest,
    manifestMediaType: manifest.mediaType ?? fetched.mediaType,
    config,
    format: formatOf(manifest.mediaType ?? fetched.mediaType),
    source: { client, reference },
    openBlob: (digest) => client.getBlob(reference.repository, digest),
  };
}

/** Splits `oci:PATH[:TAG]` into the layout directory and the optional tag. */
export function parseLayoutName(name: string, root: string): { dir: string; tag?: string } {
  const rest = name.slice("oci:".length);
  const colon = rest.lastIndexOf(":");
  const slash = rest.lastIndexOf("/");
  if (colon > slash && colon > 0) {
    return { dir: resolve(root, rest.slice(0, colon)), tag: rest.slice(colon + 1) };
  }
  return { dir: resolve(root, rest) };
}

function blobPath(dir: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  if (!algorithm || !hex)
    throw new FairingError(`invalid digest ${digest} in the image layout ${dir}`);
  return join(dir, "blobs", algorithm, hex);
}

async function readLayoutBlob(dir: string, digest: string): Promise<Uint8Array> {
  const bytes = await readFile(blobPath(dir, digest));
  const actual = `sha256:${sha256Hex(bytes)}`;
  if (digest.startsWith("sha256:") && actual !== digest) {
    throw new FairingError(
      `blob ${digest} in the image layout ${dir} is corrupt: its content hashes to ${actual}`,
    );
  }
  return bytes;
}

async function layoutBase(name: string, options: ResolveBaseOptions): Promise<BaseImage> {
  const { dir, tag } = parseLayoutName(name, options.root);
  let index: Index;
  try {
    index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as Index;
  } catch (error) {
    throw new InputError(
      `cannot read the OCI image layout ${dir} named by baseImage "${name}": ${(error as Error).message}; ` +
        "point baseImage at a directory holding an index.json",
    );
  }
  const candidates = tag
    ? index.manifests.filter((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag)
    : index.manifests;
  if (candidates.length === 0) {
    const tags = index.manifests
      .map((d) => d.annotations?.["org.opencontainers.image.ref.name"])
      .filter(Boolean);
    throw new InputError(
      `tag "${tag}" not found in the OCI image layout ${dir}; tags there: ${tags.join(", ") || "none"}`,
    );
  }
  let descriptor =
    candidates.length === 1
      ? candidates[0]!
      : selectPlatform({ ...index, manifests: candidates }, options.platform, dir);
  if (isIndexMediaType(descriptor.mediaType)) {
    const nested = parseManifestJson(await readLayoutBlob(dir, descriptor.digest), dir) as Index;
    descriptor = selectPlatform(nested, options.platform, dir);
  }
  const manifest = parseManifestJson(await readLayoutBlob(dir, descriptor.digest), dir) as Manifest;
  const config = parseConfig(await readLayoutBlob(dir, manifest.config.digest), dir);
  checkPlatform(config, options.platform, `the OCI image layout ${dir}`);
  const mediaType = manifest.mediaType ?? descriptor.mediaType;
  return {
    name,
    kind: "oci-layout",
    digest: descriptor.digest,
    manifest,
    manifestMediaType: mediaType,
    config,
    format: formatOf(mediaType),
    openBlob: async (digest) => {
      const path = blobPath(dir, digest);
      await stat(path);
      return Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
    },
  };
}
