/**
 * The append builder's planner and runner: no daemon, the context becomes gzip layers on top of
 * the base image, written to a registry, an OCI image layout or a docker-archive tarball.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Config } from "../../config/types.ts";
import type { CachedLayer } from "../../context/layer-cache.ts";
import { writeLayers } from "../../context/layered-archive.ts";
import { FairingError } from "../../errors.ts";
import { appendLayers, type AppendedImage } from "../../image/append.ts";
import { resolveBase, type BaseImage } from "../../image/base.ts";
import { writeDockerArchive, readDockerArchiveImage } from "../../image/docker-archive.ts";
import { findLayoutTag, writeOciLayout } from "../../image/layout.ts";
import { pushImage, type PushStats } from "../../image/push.ts";
import { silentLogger, type Logger } from "../../log.ts";
import type { RegistryClient } from "../../registry/client.ts";
import type { ImageConfig } from "../../registry/manifest.ts";
import { formatReference, withDigest, type ImageReference } from "../../registry/reference.ts";
import { digestCacheFile, inputsForApply } from "../../plan/inputs.ts";
import type { BuilderKindPlanner, KindPlan, PlanInputs } from "../../plan/kinds.ts";
import type { BuildPlan, BuildResult, PlanStep, RunOptions } from "../../plan/types.ts";
import { BASE_DIGEST_LABEL, BUILD_KEY_LABEL, CONTEXT_DIGEST_LABEL } from "../labels.ts";
import { registryClients } from "../registries.ts";

/** `created` of every appended image: SOURCE_DATE_EPOCH when set, else the Unix epoch. */
function createdTime(): string {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? "0");
  return new Date((Number.isFinite(epoch) ? epoch : 0) * 1000).toISOString().replace(".000Z", "Z");
}

/** Resolves a path of the `output` section against the config file's directory. */
function outputPath(config: Config, path: string): string {
  const base = config.file.startsWith("<") ? config.root : dirname(config.file);
  return resolve(base, path);
}

/** Shows the target for people: a registry reference, or `name:tag` in a local file. */
function describeTarget(config: Config, target: ImageReference): string {
  const output = config.output;
  if (output.kind === "registry") return formatReference(target);
  return `${target.repository}:${target.tag} in ${outputPath(config, output.path)} (${output.kind})`;
}

async function resolveConfiguredBase(
  config: Config,
  logger: Logger,
  pinnedDigest?: string,
): Promise<BaseImage> {
  const clientFor = registryClients(config, logger);
  let name = config.baseImage;
  // Applying a plan uses the base digest the plan resolved, so a moved base tag cannot change
  // what the plan showed.
  if (pinnedDigest && config.baseImage !== "scratch" && !config.baseImage.startsWith("oci:")) {
    const [withoutDigest] = config.baseImage.split("@");
    name = `${withoutDigest}@${pinnedDigest}`;
  }
  try {
    const base = await resolveBase(name, {
      platform: config.platform,
      root: config.root,
      clientFor,
      logger,
    });
    return { ...base, name: config.baseImage };
  } catch (error) {
    if (!(error instanceof FairingError)) throw error;
    const at = config.locate(["baseImage"]);
    const wrapped = new FairingError(
      `${at.file}:${at.line}:${at.column}: baseImage: cannot resolve "${config.baseImage}": ${error.message}`,
      { exitCode: error.exitCode, cause: error },
    );
    throw wrapped;
  }
}

function labelsOf(config: ImageConfig | undefined): Record<string, string> {
  return config?.config?.Labels ?? {};
}

/** Decides whether the target already contains an image of this context on this base. */
async function checkUpToDate(
  inputs: PlanInputs,
  base: BaseImage,
  logger: Logger,
): Promise<{ upToDate: boolean; reason: string; digest?: string }> {
  const { config, target } = inputs;
  const output = config.output;
  let found: { config: ImageConfig; digest: string } | undefined;

  if (output.kind === "registry") {
    const client = registryClients(config, logger)(target.registry);
    const head = await client.headManifest(target.repository, target.tag!);
    if (!head) return { upToDate: false, reason: `${formatReference(target)} does not exist yet` };
    const manifest = JSON.parse(
      new TextDecoder().decode((await client.getManifest(target.repository, head.digest)).bytes),
    ) as { config?: { digest: string }; layers?: { digest: string }[] };
    if (!manifest.config)
      return { upToDate: false, reason: `${formatReference(target)} is not an image manifest` };
    const missing = await firstMissing(
      [...(manifest.layers ?? []).map((layer) => layer.digest), manifest.config.digest],
      (digest) => client.hasBlob(target.repository, digest),
    );
    if (missing) {
      return {
        upToDate: false,
        reason: `blob ${missing} of ${formatReference(target)} is missing`,
      };
    }
    const bytes = await client.getBlobBytes(target.repository, manifest.config.digest);
    found = {
      config: JSON.parse(new TextDecoder().decode(bytes)) as ImageConfig,
      digest: head.digest,
    };
  } else if (output.kind === "oci-layout") {
    const dir = outputPath(config, output.path);
    const descriptor = await findLayoutTag(dir, target.tag!);
    if (!descriptor) return { upToDate: false, reason: `tag ${target.tag} is not in ${dir} yet` };
    const manifest = JSON.parse(
      await readFile(join(dir, "blobs", ...descriptor.digest.split(":")), "utf8"),
    ) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
    const missing = await firstMissing(
      [...manifest.layers, manifest.config].map((blob) => `${blob.digest} ${blob.size}`),
      async (entry) => {
        const [digest, size] = entry.split(" ");
        const info = await stat(join(dir, "blobs", ...digest!.split(":"))).catch(() => undefined);
        return info?.size === Number(size);
      },
    );
    if (missing) {
      return {
        upToDate: false,
        reason: `blob ${missing.split(" ")[0]} in ${dir} is missing or has the wrong size`,
      };
    }
    const configText = await readFile(
      join(dir, "blobs", ...manifest.config.digest.split(":")),
      "utf8",
    );
    found = { config: JSON.parse(configText) as ImageConfig, digest: descriptor.digest };
  } else {
    const path = outputPath(config, output.path);
    const image = await readDockerArchiveImage(path, `${target.repository}:${target.tag}`);
    if (!image)
      return {
        upToDate: false,
        reason: `${path} does not hold ${target.repository}:${target.tag}`,
      };
    found = image;
  }

  const labels = labelsOf(found.config);
  if (labels[CONTEXT_DIGEST_LABEL] !== inputs.contextDigest) {
    return { upToDate: false, reason: `the existing image was built from another context` };
  }
  if (labels[BUILD_KEY_LABEL] !== inputs.buildKey) {
    return { upToDate: false, reason: `the existing image was built with other image settings` };
  }
  if (labels[BASE_DIGEST_LABEL] !== (base.digest ?? "scratch")) {
    return {
      upToDate: false,
      reason: `the base image ${config.baseImage} changed since the existing image was built`,
    };
  }
  return {
    upToDate: true,
    reason: `${describeTarget(config, target)} is up to date`,
    digest: found.digest,
  };
}

/**
 * Returns whether a layer built earlier is in the target repository. When it is not, it is
 * mounted from the repository it was last pushed to on the same registry (a renamed image, or
 * the same project in a second repository), so its bytes are neither archived nor uploaded.
 */
async function reusableLayer(
  client: RegistryClient,
  target: ImageReference,
  layer: CachedLayer,
): Promise<boolean> {
  if (await client.hasBlob(target.repository, layer.digest)) return true;
  const prefix = `${target.registry}/`;
  if (!layer.repository?.startsWith(prefix)) return false;
  const from = layer.repository.slice(prefix.length);
  if (from === target.repository) return false;
  // A registry that refuses the mount (the blob is gone there, or no read access) only costs the
  // upload the layer would have had anyway.
  return await client.mountBlob(target.repository, layer.digest, from).catch(() => false);
}

/** Returns the first item `exists` rejects, checking a few at a time. */
async function firstMissing(
  items: string[],
  exists: (item: string) => Promise<boolean>,
): Promise<string | undefined> {
  const found = await Promise.all(
    items.map(async (item) => ((await exists(item)) ? undefined : item)),
  );
  return found.find((item) => item !== undefined);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function planSteps(inputs: PlanInputs, base: BaseImage): PlanStep[] {
  const { config, target, entries } = inputs;
  const files = entries.filter((entry) => entry.type === "file");
  const bytes = files.reduce((total, entry) => total + entry.size, 0);
  const builder = config.builder.kind === "append" ? config.builder : undefined;
  const steps: PlanStep[] = [
    {
      name: "collect-context",
      description: `${plural(files.length, "file")}, ${plural(bytes, "byte")} from ${config.root} under ${inputs.preprocessor.pathPrefix}`,
    },
    {
      name: "resolve-base",
      description:
        base.kind === "scratch"
          ? "scratch (no base layers)"
          : `${config.baseImage} for ${config.platform} -> ${base.digest} (${plural(base.manifest.layers.length, "layer")})`,
    },
    {
      name: "archive-context",
      description: `reproducible tar layers (dependency manifests, files of 1 MiB or more, code), gzip level ${builder?.compressionLevel ?? 6}`,
    },
  ];
  const output = config.output;
  if (output.kind === "registry") {
    const sameRegistry = base.source?.reference.registry === target.registry;
    steps.push(
      {
        name: "upload-layer",
        description: sameRegistry
          ? `base layers mounted from ${base.source!.reference.repository} when missing, context layer uploaded when missing`
          : base.kind === "registry"
            ? `base layers copied from ${base.source!.reference.registry} when missing, context layer uploaded when missing`
            : "layers uploaded when missing",
      },
      {
        name: "push-config",
        description: `image config to ${target.registry}/${target.repository}`,
      },
      { name: "push-manifest", description: `manifest as ${formatReference(target)}` },
    );
  } else if (output.kind === "oci-layout") {
    steps.push({ name: "write-oci-layout", description: `${describeTarget(config, target)}` });
  } else {
    steps.push({ name: "write-docker-archive", description: `${describeTarget(config, target)}` });
  }
  return steps;
}

type Verdict = Awaited<ReturnType<typeof checkUpToDate>>;

/**
 * The base and verdict of each plan made in this process, by its inputs. `inputsForApply` hands
 * `apply()` the same inputs object only for a plan made moments ago, and then the registry is
 * not asked the same questions twice.
 */
const plannedChecks = new WeakMap<
  PlanInputs,
  { base: BaseImage; verdict: Verdict; milliseconds: number }
>();

/** Base images being resolved while the context of their config is collected. */
const preparedBases = new WeakMap<Config, Promise<BaseImage>>();

/** Starts resolving the base image of `config`, for `planAppend` to take over. */
function prepareAppend(config: Config, options: RunOptions): void {
  const base = resolveConfiguredBase(config, options.logger ?? silentLogger);
  // planAppend reports a failure, unless collecting the context failed first.
  base.catch(() => {});
  preparedBases.set(config, base);
}

async function planAppend(inputs: PlanInputs, options: RunOptions): Promise<KindPlan> {
  const logger = options.logger ?? silentLogger;
  const started = performance.now();
  const prepared = preparedBases.get(inputs.config);
  preparedBases.delete(inputs.config);
  const base = await (prepared ?? resolveConfiguredBase(inputs.config, logger));
  const verdict = await checkUpToDate(inputs, base, logger);
  const milliseconds = Math.round(performance.now() - started);
  plannedChecks.set(inputs, { base, verdict, milliseconds });
  return {
    steps: planSteps(inputs, base),
    upToDate: verdict.upToDate,
    reason: verdict.reason,
    ...(base.digest ? { baseDigest: base.digest } : {}),
  };
}

async function timed<T>(
  steps: { name: string; milliseconds: number }[],
  name: string,
  options: RunOptions,
  work: () => Promise<T>,
): Promise<T> {
  options.signal?.throwIfAborted();
  const started = performance.now();
  options.onProgress?.({ step: name, status: "start" });
  const result = await work();
  const milliseconds = Math.round(performance.now() - started);
  steps.push({ name, milliseconds });
  options.onProgress?.({ step: name, status: "done" });
  return result;
}

function resultImage(config: Config, target: ImageReference, digest: string): string {
  if (config.output.kind === "registry") return formatReference(withDigest(target, digest));
  return `${target.repository}:${target.tag}@${digest}`;
}

async function applyAppend(plan: BuildPlan, options: RunOptions): Promise<BuildResult> {
  const logger = options.logger ?? silentLogger;
  const steps: { name: string; milliseconds: number }[] = [];
  const inputs = await timed(steps, "collect-context", options, () =>
    inputsForApply(plan, options),
  );
  const { config, target } = inputs;
  const planned = plannedChecks.get(inputs);
  plannedChecks.delete(inputs);
  const base = await timed(steps, "resolve-base", options, async () =>
    planned ? planned.base : await resolveConfiguredBase(config, logger, plan.base.digest),
  );
  // Inputs and checks taken over from a plan made moments ago report the time they took then,
  // so the steps account for the walk, the hashing and the registry checks.
  if (planned) {
    const [collectStep, resolveStep] = steps;
    collectStep!.milliseconds = Math.max(
      collectStep!.milliseconds,
      inputs.collectMilliseconds ?? 0,
    );
    resolveStep!.milliseconds = Math.max(resolveStep!.milliseconds, planned.milliseconds);
  }
  const destination =
    config.output.kind === "registry"
      ? formatReference(target)
      : outputPath(config, config.output.path);

  const verdict = planned ? planned.verdict : await checkUpToDate(inputs, base, logger);
  if (verdict.upToDate && verdict.digest) {
    logger.info(`${describeTarget(config, target)} is up to date; nothing uploaded`);
    return {
      image: resultImage(config, target, verdict.digest),
      digest: verdict.digest,
      tag: inputs.tag,
      upToDate: true,
      destination,
      steps,
      ...(config.output.kind === "registry"
        ? { blobs: { uploaded: 0, mounted: 0, skipped: 0, uploadedBytes: 0 } }
        : {}),
    };
  }

  const builder = config.builder.kind === "append" ? config.builder : undefined;
  const workDir = await mkdtemp(join(tmpdir(), "fairing-append-"));
  try {
    // The context goes in as layers that change at different rates (dependency manifests,
    // large files, code), so an edit rebuilds and uploads only the layer holding it.
    const client =
      config.output.kind === "registry"
        ? registryClients(config, logger)(target.registry)
        : undefined;
    const cacheFile = digestCacheFile(config.root);
    const layers = await timed(steps, "archive-context", options, () =>
      writeLayers(inputs.entries, {
        dir: workDir,
        pathPrefix: inputs.preprocessor.pathPrefix,
        level: builder?.compressionLevel ?? 6,
        digestCacheFile: cacheFile,
        contentHashes: inputs.contentHashes,
        layerCacheFile: cacheFile.replace(/digests-([^/]+)\.json$/, "layers-$1.json"),
        // A layer built earlier is reused only when the target repository already has its blob,
        // and a layer built now is uploaded while it is compressed.
        ...(client
          ? {
              repository: `${target.registry}/${target.repository}`,
              canReuse: (layer: CachedLayer) => reusableLayer(client, target, layer),
              streamTo: () => client.startStreamingUpload(target.repository),
            }
          : {}),
        onProgress: (bytes) =>
          options.onProgress?.({ step: "archive-context", status: "progress", bytes }),
        ...(options.signal ? { signal: options.signal } : {}),
        logger,
      }),
    );

    const appended: AppendedImage = appendLayers(
      base,
      layers.map((layer) => ({
        digest: layer.digest,
        size: layer.size,
        diffID: layer.diffID,
        comment: `fairing context: ${layer.name}`,
      })),
      {
        command: inputs.preprocessor.getCommand(),
        workingDir: inputs.preprocessor.pathPrefix,
        env: config.env,
        labels: {
          ...config.labels,
          [CONTEXT_DIGEST_LABEL]: inputs.contextDigest,
          [BUILD_KEY_LABEL]: inputs.buildKey,
          [BASE_DIGEST_LABEL]: base.digest ?? "scratch",
        },
        ...(config.user !== undefined ? { user: config.user } : {}),
        created: createdTime(),
      },
    );
    const layerFiles = new Map<string, string>();
    for (const layer of layers) if (layer.file) layerFiles.set(layer.digest, layer.file);
    const image = { base, appended, layerFiles };

    let blobs: PushStats | undefined;
    const output = config.output;
    if (output.kind === "registry") {
      const client = registryClients(config, logger)(target.registry);
      blobs = await timed(steps, "push", options, () =>
        pushImage(client, target.repository, target.tag!, image, {
          logger,
          streamed: new Set(layers.filter((layer) => layer.streamed).map((layer) => layer.digest)),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
      );
    } else if (output.kind === "oci-layout") {
      await timed(steps, "write-oci-layout", options, () =>
        writeOciLayout(outputPath(config, output.path), target.tag!, image),
      );
    } else {
      await timed(steps, "write-docker-archive", options, () =>
        writeDockerArchive(
          outputPath(config, output.path),
          `${target.repository}:${target.tag}`,
          image,
        ),
      );
    }

    return {
      image: resultImage(config, target, appended.manifestDigest),
      digest: appended.manifestDigest,
      tag: inputs.tag,
      upToDate: false,
      destination,
      steps,
      ...(blobs ? { blobs } : {}),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** The append builder kind. */
export const planner: BuilderKindPlanner = {
  prepare: prepareAppend,
  plan: planAppend,
  apply: applyAppend,
};
