/**
 * Planning shared by the docker and podman kinds: builder options from the config, the steps
 * both kinds show, and the "already in the registry" check through the registry client.
 */
import type { Config, DockerBuilderConfig, PodmanBuilderConfig } from "../../config/types.ts";
import type { BasePreProcessor } from "../../context/preprocessor.ts";
import { silentLogger, type Logger } from "../../log.ts";
import type { PlanInputs } from "../../plan/kinds.ts";
import type { BuildResult, PlanStep } from "../../plan/types.ts";
import { formatReference, type ImageReference } from "../../registry/reference.ts";
import { BUILD_KEY_LABEL, StaleImageError, checkLabels } from "../labels.ts";
import { registryClients } from "../registries.ts";
import { CONTEXT_DOCKERFILE } from "./context.ts";
import type { DaemonBuilderOptions } from "./settings.ts";

/** Builder settings of a docker or podman config. */
export type DaemonBuilderConfig = DockerBuilderConfig | PodmanBuilderConfig;

/** Returns the builder options a config gives the docker and podman builders. */
export function daemonOptionsFromConfig(
  config: Config,
  builder: DaemonBuilderConfig,
  preprocessor: BasePreProcessor,
  logger: Logger = silentLogger,
): DaemonBuilderOptions {
  const options: DaemonBuilderOptions = {
    preprocessor,
    baseImage: config.baseImage,
    imageName: config.imageName,
    push: builder.push,
    buildArgs: builder.buildArgs,
    labels: config.labels,
    platform: config.platform,
    env: config.env,
    installReqsBeforeCopy: builder.installRequirementsBeforeCopy,
    registries: config.registries,
    logger,
  };
  if (config.registry !== undefined) options.registry = config.registry;
  if (builder.dockerfilePath !== undefined) options.dockerfilePath = builder.dockerfilePath;
  if (builder.target !== undefined) options.target = builder.target;
  if (builder.network !== undefined) options.network = builder.network;
  if (config.user !== undefined) options.user = config.user;
  return options;
}

/**
 * Returns the steps both kinds share: `write-dockerfile` (detail: the Dockerfile),
 * `archive-context`, `<kind>-build` and, when pushing, `<kind>-push`.
 */
export function daemonSteps(
  kind: "docker" | "podman",
  inputs: PlanInputs,
  builder: DaemonBuilderConfig,
  dockerfile: string,
  engine: string,
): PlanStep[] {
  const reference = formatReference(inputs.target);
  const files = inputs.entries.filter((entry) => entry.type === "file");
  const bytes = files.reduce((sum, entry) => sum + entry.size, 0);
  const source = builder.dockerfilePath
    ? `use the project's Dockerfile ${builder.dockerfilePath}`
    : `generate a Dockerfile on ${inputs.config.baseImage}`;
  const settings = [
    Object.keys(builder.buildArgs).length > 0
      ? `build args ${Object.keys(builder.buildArgs).join(", ")}`
      : "",
    builder.target ? `target ${builder.target}` : "",
    builder.network ? `network ${builder.network}` : "",
    `platform ${inputs.config.platform}`,
  ].filter(Boolean);

  const steps: PlanStep[] = [
    { name: "write-dockerfile", description: source, detail: dockerfile },
    {
      name: "archive-context",
      description:
        kind === "docker"
          ? `stream ${inputs.entries.length} context entries (${files.length} files, ${bytes} bytes) ` +
            `and the Dockerfile as ${CONTEXT_DOCKERFILE} in one uncompressed tar`
          : `stream ${inputs.entries.length} context entries (${files.length} files, ${bytes} bytes) ` +
            `as an uncompressed tar to podman's stdin`,
    },
    {
      name: `${kind}-build`,
      description: `build ${reference} on ${engine} (${settings.join(", ")})`,
    },
  ];
  if (builder.push) {
    steps.push({
      name: `${kind}-push`,
      description: `push ${reference} to ${inputs.target.registry}`,
    });
  }
  return steps;
}

/**
 * Returns the manifest digest of `target` in its registry, or undefined when the tag does not
 * exist there. Throws `StaleImageError` when the tag exists but a blob of it is missing or its
 * image config lacks one of `labels`. Registry failures propagate as `RegistryError`.
 */
export async function registryDigest(
  config: Config,
  target: ImageReference,
  logger: Logger,
  labels: Record<string, string> = {},
): Promise<string | undefined> {
  const client = registryClients(config, logger)(target.registry);
  const head = await client.headManifest(target.repository, target.tag ?? "latest");
  if (!head) return undefined;

  const fetched = await client.getManifest(target.repository, head.digest);
  const manifest = JSON.parse(new TextDecoder().decode(fetched.bytes)) as {
    config?: { digest: string };
    layers?: { digest: string }[];
  };
  if (!manifest.config) {
    throw new StaleImageError("it is an image index, not an image fairing built");
  }
  const blobs = [...(manifest.layers ?? []).map((layer) => layer.digest), manifest.config.digest];
  const present = await Promise.all(
    blobs.map((digest) => client.hasBlob(target.repository, digest)),
  );
  const missing = blobs.find((_, index) => !present[index]);
  if (missing) throw new StaleImageError(`its blob ${missing} is missing`);

  const imageConfig = JSON.parse(
    new TextDecoder().decode(await client.getBlobBytes(target.repository, manifest.config.digest)),
  ) as { config?: { Labels?: Record<string, string> | null } };
  checkLabels(imageConfig.config?.Labels, labels);
  return head.digest;
}

/** Label storing the build key, so a fixed tag is rebuilt when a setting changes. */
export function buildKeyLabel(inputs: PlanInputs): Record<string, string> {
  return { [BUILD_KEY_LABEL]: inputs.buildKey };
}

/**
 * Checks whether the target already exists with `find`, turning a failed check into "not up
 * to date" with the error as the reason, so `plan` works while the registry or engine is down.
 */
export async function checkUpToDate(
  where: string,
  reference: string,
  find: () => Promise<string | undefined>,
): Promise<{ upToDate: boolean; reason: string }> {
  try {
    const digest = await find();
    if (digest) {
      return { upToDate: true, reason: `${reference} already exists in ${where} (${digest})` };
    }
    return { upToDate: false, reason: `${reference} does not exist in ${where} yet` };
  } catch (error) {
    if (error instanceof StaleImageError) {
      return { upToDate: false, reason: `${reference} exists in ${where}, but ${error.message}` };
    }
    const message = error instanceof Error ? error.message : String(error);
    return { upToDate: false, reason: `could not check ${where} for ${reference}: ${message}` };
  }
}

/**
 * Checks again, when applying, a plan that found its target up to date. Returns the result for
 * the existing image, or undefined when it is gone or stale and must be built.
 */
export async function reuseExisting(
  inputs: PlanInputs,
  push: boolean,
  logger: Logger,
  find: () => Promise<{ digest?: string; reason: string }>,
): Promise<BuildResult | undefined> {
  const reference = formatReference(inputs.target);
  const existing = await find();
  if (!existing.digest) {
    logger.info(
      `${reference} was up to date when planned but not now (${existing.reason}); building it`,
    );
    return undefined;
  }
  logger.info(`${reference} is up to date (${existing.digest}); nothing to build`);
  return {
    // Without a push the digest is the engine's image id, which no reference can carry.
    image: push ? `${reference}@${existing.digest}` : reference,
    digest: existing.digest,
    tag: inputs.tag,
    upToDate: true,
    destination: reference,
    steps: [],
  };
}
