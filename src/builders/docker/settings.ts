/**
 * What the docker and podman builders share: their options, the Dockerfile they build from
 * (the project's own or a generated one), the image reference and the default tag.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { RegistrySettings } from "../../config/types.ts";
import type { ContextEntry } from "../../context/entries.ts";
import type { BasePreProcessor } from "../../context/preprocessor.ts";
import { InputError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { renderDockerfile } from "../dockerfile.ts";
import { CONTEXT_DIGEST_LABEL } from "../labels.ts";
import { contextDigest } from "../../context/digest.ts";

/** Options of `DockerBuilder` and `PodmanBuilder`; names follow the original `BaseBuilder`. */
export interface DaemonBuilderOptions {
  preprocessor: BasePreProcessor;
  /** Base image of the generated Dockerfile. */
  baseImage: string;
  /** Repository prefix the image is pushed under, e.g. `127.0.0.1:5000/team`. */
  registry?: string;
  /** Default `fairing-job`. */
  imageName?: string;
  /** Push after the build; default true. False leaves the image in the engine's storage. */
  push?: boolean;
  /** The project's Dockerfile, relative to `preprocessor.root`; generated when absent. */
  dockerfilePath?: string;
  buildArgs?: Record<string, string>;
  /** Labels added to the image; `dev.fairing.context-digest` is always added. */
  labels?: Record<string, string>;
  /** `os/arch[/variant]` of the image; the engine's default when unset. */
  platform?: string;
  /** Stage of a multi-stage Dockerfile to build. */
  target?: string;
  /** Network mode of RUN instructions, e.g. `none` or `host`. */
  network?: string;
  /** Environment added by the generated Dockerfile; FAIRING_RUNTIME=1 is always set. */
  env?: Record<string, string>;
  /** User the generated Dockerfile runs as; root when unset. */
  user?: string;
  /** Install `requirements.txt` before copying the rest (generated Dockerfile). Default true. */
  installReqsBeforeCopy?: boolean;
  /** Per-registry transport settings, keyed by host. */
  registries?: Record<string, RegistrySettings>;
  logger?: Logger;
}

/** Default image name, as in the original. */
export const DEFAULT_IMAGE_NAME = "fairing-job";

/**
 * Returns the Dockerfile text to build from: the file at `dockerfilePath` (relative to the
 * preprocessor's root), or a generated one that installs `requirements.txt` when the context
 * contains it: before copying the rest unless `installReqsBeforeCopy` is false, else after.
 */
export async function dockerfileText(
  options: DaemonBuilderOptions,
  entries: readonly ContextEntry[],
): Promise<string> {
  const { preprocessor } = options;
  if (options.dockerfilePath) {
    const path = isAbsolute(options.dockerfilePath)
      ? options.dockerfilePath
      : resolve(preprocessor.root, options.dockerfilePath);
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      throw new InputError(
        `cannot read the Dockerfile ${path} (builder.dockerfilePath ${JSON.stringify(options.dockerfilePath)}): ` +
          `${(error as Error).message}; fix the path or remove it to generate a Dockerfile`,
        { cause: error },
      );
    }
  }
  const hasRequirements = preprocessor.hasRequirements(entries);
  return renderDockerfile({
    baseImage: options.baseImage,
    dockerCommand: preprocessor.getCommand(),
    pathPrefix: preprocessor.pathPrefix,
    installReqsBeforeCopy: (options.installReqsBeforeCopy ?? true) && hasRequirements,
    installReqsAfterCopy: options.installReqsBeforeCopy === false && hasRequirements,
    ...(options.user !== undefined ? { user: options.user } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
}

/** Returns `registry/imageName:tag`, or `imageName:tag` without a registry. */
export function fullImageName(options: DaemonBuilderOptions, tag: string): string {
  const name = options.imageName ?? DEFAULT_IMAGE_NAME;
  const registry = options.registry?.replace(/\/+$/, "");
  return registry ? `${registry}/${name}:${tag}` : `${name}:${tag}`;
}

/**
 * Derives a tag from everything that decides the image: the context digest, the Dockerfile
 * text and the build settings. Returns the first 16 hex digits of their sha256.
 */
export function deriveTag(
  contextDigestValue: string,
  dockerfile: string,
  options: DaemonBuilderOptions,
): string {
  const settings = {
    contextDigest: contextDigestValue,
    dockerfile,
    buildArgs: sortedRecord(options.buildArgs),
    labels: sortedRecord(options.labels),
    platform: options.platform ?? "",
    target: options.target ?? "",
  };
  return createHash("sha256").update(JSON.stringify(settings)).digest("hex").slice(0, 16);
}

/** Returns the labels to put on the image: the configured ones plus the context digest. */
export function imageLabels(
  labels: Record<string, string> | undefined,
  contextDigestValue: string,
): Record<string, string> {
  return { ...(labels ?? {}), [CONTEXT_DIGEST_LABEL]: contextDigestValue };
}

function sortedRecord(record: Record<string, string> | undefined): [string, string][] {
  return Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** What a class-API build (`DockerBuilder`, `PodmanBuilder`) starts from. */
export interface ClassBuildInputs {
  entries: ContextEntry[];
  contextDigest: string;
  dockerfile: string;
  tag: string;
}

/**
 * Collects the context of a class-API build and derives its Dockerfile and tag: `tag` when
 * given, else one derived from the context digest, the Dockerfile and the settings.
 */
export async function prepareClassBuild(
  options: DaemonBuilderOptions,
  tag?: string,
): Promise<ClassBuildInputs> {
  const entries = await options.preprocessor.collect();
  const digest = await contextDigest(entries);
  const dockerfile = await dockerfileText(options, entries);
  return {
    entries,
    contextDigest: digest,
    dockerfile,
    tag: tag ?? deriveTag(digest, dockerfile, options),
  };
}
