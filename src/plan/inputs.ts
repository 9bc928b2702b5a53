/**
 * The inputs every builder kind plans from: the collected context, its digest, the tag derived
 * from it, and the target reference.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Config } from "../config/types.ts";
import { contextDigest } from "../context/digest.ts";
import type { ContextEntry } from "../context/entries.ts";
import { BasePreProcessor } from "../context/preprocessor.ts";
import { ConfigError, FairingError, InputError } from "../errors.ts";
import { sha256Hex } from "../image/digest.ts";
import { silentLogger } from "../log.ts";
import { parseReference, type ImageReference } from "../registry/reference.ts";
import type { PlanInputs } from "./kinds.ts";
import type { BuildPlan, RunOptions } from "./types.ts";

/** Length of the hex tag `tag: auto` derives. 16 hex digits are 64 bits of the digest. */
const AUTO_TAG_LENGTH = 16;

/** Creates the preprocessor of a config. */
export function preprocessorFor(config: Config, options: RunOptions = {}): BasePreProcessor {
  const pre = config.preprocessor;
  return new BasePreProcessor({
    root: config.root,
    inputFiles: pre.inputFiles,
    ...(pre.executable !== undefined ? { executable: pre.executable } : {}),
    command: pre.command,
    pathPrefix: pre.pathPrefix,
    outputMap: pre.outputMap,
    ignore: [...pre.ignore, ...outputExclusion(config)],
    allowOutsideRoot: pre.allowOutsideRoot,
    logger: options.logger ?? silentLogger,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Returns an ignore pattern for a file output inside the project root, so an image written into
 * the project is not packed into the next build's context.
 */
function outputExclusion(config: Config): string[] {
  if (config.output.kind === "registry") return [];
  const path = relative(config.root, resolve(config.root, config.output.path));
  if (path === "" || path.startsWith("..") || isAbsolute(path)) return [];
  // Escape the characters .dockerignore patterns treat as wildcards.
  return [
    path
      .split(sep)
      .join("/")
      .replace(/[*?[\]\\]/g, "\\$&"),
  ];
}

/**
 * Removes the directories that exist only because a file output was written into the project
 * (e.g. `out/` for `output.path: out/image`), so the first and later builds see the same context.
 */
function dropOutputParents(config: Config, entries: ContextEntry[]): ContextEntry[] {
  if (config.output.kind === "registry") return entries;
  const output = resolve(config.root, config.output.path);
  return entries.filter((entry) => {
    if (entry.type !== "directory" || !entry.source) return true;
    const below = relative(entry.source, output);
    const isParentOfOutput = below !== "" && !below.startsWith("..") && !isAbsolute(below);
    if (!isParentOfOutput) return true;
    return entries.some((other) => other.path.startsWith(`${entry.path}/`));
  });
}

/**
 * Returns the file caching content digests of the project's files, keyed by the project root:
 * `$FAIRING_CACHE_DIR`, else `$XDG_CACHE_HOME/fairing`, else `~/.cache/fairing`.
 */
export function digestCacheFile(root: string): string {
  const base =
    process.env.FAIRING_CACHE_DIR ??
    (process.env.XDG_CACHE_HOME
      ? join(process.env.XDG_CACHE_HOME, "fairing")
      : join(homedir(), ".cache", "fairing"));
  return join(base, `digests-${sha256Hex(resolve(root)).slice(0, 16)}.json`);
}

/** Builder fields that change the image a build produces. */
const IMAGE_BUILDER_FIELDS = [
  "kind",
  "compressionLevel",
  "buildArgs",
  "target",
  "network",
  "installRequirementsBeforeCopy",
  "executorImage",
] as const;

/** Values of the config that change the built image, besides the context and the base. */
async function imageSettings(config: Config, preprocessor: BasePreProcessor): Promise<unknown> {
  // Only builder fields that change the built image count: where and how the build runs
  // (engine address, podman storage flags, namespace, timeouts, cleanup) does not.
  const builder: Record<string, unknown> = {};
  for (const field of IMAGE_BUILDER_FIELDS) {
    const value = (config.builder as unknown as Record<string, unknown>)[field];
    if (value !== undefined) builder[field] = value;
  }
  let dockerfile: string | undefined;
  if ("dockerfilePath" in config.builder && config.builder.dockerfilePath) {
    dockerfile = sha256Hex(await readFile(resolve(config.root, config.builder.dockerfilePath)));
  }
  return {
    baseImage: config.baseImage,
    platform: config.platform,
    command: preprocessor.getCommand(),
    workingDir: preprocessor.pathPrefix,
    env: config.env,
    labels: config.labels,
    user: config.user ?? null,
    builder,
    dockerfile: dockerfile ?? null,
  };
}

/** Derives the `tag: auto` tag from the context digest and the image settings. */
export function autoTag(contextDigestValue: string, settings: unknown): string {
  return sha256Hex(JSON.stringify({ context: contextDigestValue, settings })).slice(
    0,
    AUTO_TAG_LENGTH,
  );
}

/** Returns the target reference: `registry/imageName:tag`, or `localhost/imageName:tag` without a registry. */
export function targetReference(config: Config, tag: string): ImageReference {
  if (!config.registry) return { registry: "localhost", repository: config.imageName, tag };
  const reference = parseReference(`${config.registry.replace(/\/+$/, "")}/${config.imageName}`);
  return { registry: reference.registry, repository: reference.repository, tag };
}

/** Collects the context and derives the tag and target: the shared first half of planning. */
export async function collectInputs(config: Config, options: RunOptions = {}): Promise<PlanInputs> {
  const started = performance.now();
  const { preprocessor, entries } = await collectContext(config, options);
  const contentHashes = new Map<ContextEntry, string>();
  const digest = await contextDigest(entries, {
    cacheFile: digestCacheFile(config.root),
    contentHashes,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const buildKey = autoTag(digest, await imageSettings(config, preprocessor));
  const tag = config.tag === "auto" ? buildKey : config.tag;
  return {
    config,
    preprocessor,
    entries,
    contextDigest: digest,
    contentHashes,
    buildKey,
    tag,
    target: targetReference(config, tag),
    collectMilliseconds: Math.round(performance.now() - started),
  };
}

/**
 * Collects the context entries of a config. A problem with a project file that names the config
 * value it came from is reported at that value's position, like any other config problem.
 */
export async function collectContext(
  config: Config,
  options: RunOptions = {},
): Promise<{ preprocessor: BasePreProcessor; entries: ContextEntry[] }> {
  try {
    const preprocessor = preprocessorFor(config, options);
    const entries = dropOutputParents(config, await preprocessor.collect());
    return { preprocessor, entries };
  } catch (error) {
    if (!(error instanceof InputError) || !error.configPath) throw error;
    const position = config.locate(error.configPath);
    throw new ConfigError([
      { ...position, path: formatConfigPath(error.configPath), message: error.message },
    ]);
  }
}

/** Formats a config path as `preprocessor.inputFiles[1]`. */
function formatConfigPath(path: readonly (string | number)[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? part : `.${part}`;
  }
  return text;
}

/** Inputs of the plans made in this process, so applying one does not walk the project again. */
const plannedInputs = new WeakMap<BuildPlan, { inputs: PlanInputs; plannedAt: number }>();

/**
 * How long after planning `apply()` trusts the file contents the plan hashed. `fairing apply`
 * applies well within it; an SDK caller that applies later gets every file checked again.
 */
const FRESH_PLAN_MS = 2000;

/** Remembers the inputs `plan` was made from, for `inputsForApply`. */
export function rememberInputs(plan: BuildPlan, inputs: PlanInputs): void {
  plannedInputs.set(plan, { inputs, plannedAt: Date.now() });
}

/**
 * Returns the inputs of a plan being applied and checks that the context is still the one the
 * plan was made from, so `apply()` never builds something the plan did not show. A plan made in
 * this process keeps its file list. Its file contents are checked again through the digest cache
 * (a stat per unchanged file) unless it was made less than two seconds ago. A plan from
 * elsewhere is collected again.
 */
export async function inputsForApply(
  plan: BuildPlan,
  options: RunOptions = {},
): Promise<PlanInputs> {
  const remembered = plannedInputs.get(plan);
  let inputs: PlanInputs;
  if (remembered && Date.now() - remembered.plannedAt < FRESH_PLAN_MS) {
    inputs = remembered.inputs;
  } else if (remembered) {
    const contentHashes = new Map<ContextEntry, string>();
    const digest = await contextDigest(remembered.inputs.entries, {
      cacheFile: digestCacheFile(plan.config.root),
      contentHashes,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    inputs = { ...remembered.inputs, contextDigest: digest, contentHashes };
  } else {
    inputs = await collectInputs(plan.config, options);
  }
  if (inputs.contextDigest !== plan.contextDigest) {
    throw new FairingError(
      `the files of ${plan.config.root} changed after the plan was made (context digest ${plan.contextDigest} ` +
        `is now ${inputs.contextDigest}); make a new plan and apply that`,
    );
  }
  return inputs;
}
