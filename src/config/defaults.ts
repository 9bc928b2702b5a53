/**
 * Default values of the config file and the step that fills them in. The schema's `default`
 * annotations show the same values to editors; a unit test keeps the two in step.
 */
import type {
  BuilderConfig,
  Config,
  ContextSourceConfig,
  OutputConfig,
  PreprocessorConfig,
  RegistrySettings,
} from "./types.ts";

/**
 * Kaniko-compatible executor image of the cluster builder. The original kaniko repository
 * (GoogleContainerTools/kaniko) was archived in June 2025; osscontainertools/kaniko is a
 * maintained fork that publishes `ghcr.io/osscontainertools/kaniko:vX.Y.Z`.
 */
// NOTE: v1.27.6 is the newest release in the fork's CHANGELOG (2026-06-05). The tag was never
// pulled here because this machine is offline, so confirm it exists before relying on it.
export const DEFAULT_EXECUTOR_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.27.6";

/** Defaults of the scalar and list fields, by the name the file uses. */
export const DEFAULTS = {
  context: ".",
  imageName: "fairing-job",
  tag: "auto",
  platform: "linux/amd64",
  command: ["python"],
  pathPrefix: "/app/",
  compressionLevel: 6,
  push: true,
  installRequirementsBeforeCopy: true,
  executorImage: DEFAULT_EXECUTOR_IMAGE,
  timeoutSeconds: 1800,
  startTimeoutSeconds: 300,
  cache: false,
  createRegistrySecret: false,
  contextSourcePrefix: "fairing/",
  region: "us-east-1",
} as const;

/** The part of a Config that comes from the document itself. */
export type DocumentFields = Omit<Config, "file" | "root" | "locate">;

type Raw = Record<string, unknown>;

function mapping(value: unknown): Raw {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Raw) : {};
}

function pick<T>(value: unknown, fallback: T): T {
  return value === undefined || value === null ? fallback : (value as T);
}

function optional<T>(value: unknown): T | undefined {
  return value === undefined || value === null ? undefined : (value as T);
}

function copyOf<T>(value: T): T {
  return structuredClone(value);
}

/** Adds the trailing `/` a path prefix always has. */
export function withTrailingSlash(prefix: string): string {
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

function fillPreprocessor(raw: unknown): PreprocessorConfig {
  const source = mapping(raw);
  const pathPrefix = pick<string>(source.pathPrefix, DEFAULTS.pathPrefix);
  const filled: PreprocessorConfig = {
    inputFiles: copyOf(pick<string[]>(source.inputFiles, [])),
    command: copyOf(pick<string[]>(source.command, [...DEFAULTS.command])),
    pathPrefix: typeof pathPrefix === "string" ? withTrailingSlash(pathPrefix) : pathPrefix,
    outputMap: copyOf(pick<Record<string, string>>(source.outputMap, {})),
    ignore: copyOf(pick<string[]>(source.ignore, [])),
    allowOutsideRoot: pick<boolean>(source.allowOutsideRoot, false),
  };
  const executable = optional<string>(source.executable);
  if (executable !== undefined) filled.executable = executable;
  return filled;
}

function withOptional<T extends object>(target: T, source: Raw, keys: readonly string[]): T {
  for (const key of keys) {
    const value = optional<unknown>(source[key]);
    if (value !== undefined) (target as Raw)[key] = copyOf(value);
  }
  return target;
}

function fillBuilder(raw: unknown): BuilderConfig {
  const source = mapping(raw);
  const kind = pick<string>(source.kind, "append");
  const push = pick<boolean>(source.push, DEFAULTS.push);

  if (kind === "docker" || kind === "podman") {
    const common = {
      push,
      buildArgs: copyOf(pick<Record<string, string>>(source.buildArgs, {})),
      installRequirementsBeforeCopy: pick<boolean>(
        source.installRequirementsBeforeCopy,
        DEFAULTS.installRequirementsBeforeCopy,
      ),
    };
    withOptional(common, source, ["dockerfilePath", "target", "network"]);
    if (kind === "docker") return withOptional({ kind, ...common }, source, ["dockerHost"]);
    const globalArgs = copyOf(pick<string[]>(source.globalArgs, []));
    return withOptional({ kind, ...common, globalArgs }, source, ["tlsVerify"]);
  }

  if (kind === "cluster") {
    const cleanup = mapping(source.cleanup);
    const filled: BuilderConfig = {
      kind,
      push,
      buildArgs: copyOf(pick<Record<string, string>>(source.buildArgs, {})),
      executorImage: pick<string>(source.executorImage, DEFAULTS.executorImage),
      cache: pick<boolean>(source.cache, DEFAULTS.cache),
      timeoutSeconds: pick<number>(source.timeoutSeconds, DEFAULTS.timeoutSeconds),
      startTimeoutSeconds: pick<number>(source.startTimeoutSeconds, DEFAULTS.startTimeoutSeconds),
      cleanup: {
        job: pick<boolean>(cleanup.job, true),
        secrets: pick<boolean>(cleanup.secrets, true),
        context: pick<boolean>(cleanup.context, true),
      },
      createRegistrySecret: pick<boolean>(
        source.createRegistrySecret,
        DEFAULTS.createRegistrySecret,
      ),
      podSpec: copyOf(pick<Record<string, unknown>>(source.podSpec, {})),
    };
    return withOptional(filled, source, [
      "dockerfilePath",
      "namespace",
      "cacheRepo",
      "registrySecret",
      "kubeconfig",
      "context",
    ]);
  }

  const compressionLevel = pick<number>(source.compressionLevel, DEFAULTS.compressionLevel);
  return { kind: kind as "append", push, compressionLevel };
}

function fillOutput(raw: unknown): OutputConfig {
  const source = mapping(raw);
  const kind = pick<string>(source.kind, "registry");
  if (kind === "oci-layout" || kind === "docker-archive") {
    return { kind, path: pick<string>(source.path, "") };
  }
  return { kind: "registry" };
}

function fillContextSource(
  raw: unknown,
  env: Record<string, string | undefined>,
): ContextSourceConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const source = mapping(raw);
  const prefix = pick<string>(source.prefix, DEFAULTS.contextSourcePrefix);
  const region = pick<string>(source.region, env.AWS_REGION || DEFAULTS.region);
  switch (source.kind) {
    case "gcs":
      return withOptional<ContextSourceConfig>({ kind: "gcs", prefix }, source, [
        "bucket",
        "project",
        "endpoint",
        "podCredentials",
      ]);
    case "s3":
      return withOptional<ContextSourceConfig>({ kind: "s3", region, prefix }, source, [
        "bucket",
        "account",
        "endpoint",
        "podCredentials",
      ]);
    case "azure":
      return withOptional<ContextSourceConfig>(
        {
          kind: "azure",
          account: pick<string>(source.account, ""),
          container: pick<string>(source.container, ""),
          prefix,
        },
        source,
        ["endpoint"],
      );
    default:
      return withOptional<ContextSourceConfig>(
        {
          kind: "minio",
          endpoint: pick<string>(source.endpoint, ""),
          bucket: pick<string>(source.bucket, ""),
          region,
          prefix,
        },
        source,
        ["podCredentials"],
      );
  }
}

function fillRegistries(raw: unknown): Record<string, RegistrySettings> {
  const registries: Record<string, RegistrySettings> = {};
  for (const [host, settings] of Object.entries(mapping(raw))) {
    registries[host] = { insecure: pick<boolean>(mapping(settings).insecure, false) };
  }
  return registries;
}

/**
 * Fills every default into the document. A value of the wrong type is copied as it is: the
 * schema check reports it, and the semantic checks skip values of the wrong type.
 */
export function applyDefaults(
  document: unknown,
  env: Record<string, string | undefined>,
): DocumentFields {
  const raw = mapping(document);
  const fields: DocumentFields = {
    apiVersion: pick(raw.apiVersion, "fairing/v1"),
    baseImage: pick<string>(raw.baseImage, ""),
    imageName: pick<string>(raw.imageName, DEFAULTS.imageName),
    tag: pick<string>(raw.tag, DEFAULTS.tag),
    platform: pick<string>(raw.platform, DEFAULTS.platform),
    env: copyOf(pick<Record<string, string>>(raw.env, {})),
    labels: copyOf(pick<Record<string, string>>(raw.labels, {})),
    preprocessor: fillPreprocessor(raw.preprocessor),
    builder: fillBuilder(raw.builder),
    output: fillOutput(raw.output),
    registries: fillRegistries(raw.registries),
  };
  const registry = optional<string>(raw.registry);
  if (registry !== undefined) fields.registry = registry;
  const user = optional<string>(raw.user);
  if (user !== undefined) fields.user = user;
  const contextSource = fillContextSource(raw.contextSource, env);
  if (contextSource !== undefined) fields.contextSource = contextSource;
  return fields;
}
