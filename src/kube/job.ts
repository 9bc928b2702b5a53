/**
 * The batch/v1 Job that runs a Kaniko-compatible executor: its labels, annotations, executor
 * arguments, the registry credentials volume, and the pod spec mutators applied on top.
 */
import { InputError } from "../errors.ts";

/** Label every build Job, Pod and Secret carries, so they can be found and cleaned up. */
export const BUILDER_LABEL = "fairing-builder";
/** Label whose value identifies one build. */
export const BUILD_ID_LABEL = "fairing-build-id";
/** Name of the executor container in the build pod. */
export const EXECUTOR_CONTAINER = "kaniko";
/** Folder the executor reads `config.json` with registry credentials from. */
export const DOCKER_CONFIG_DIR = "/kaniko/.docker";

/** A V1PodSpec-shaped object. */
export type PodSpecObject = Record<string, unknown> & { containers: Record<string, unknown>[] };

/** A function that changes the build pod spec, e.g. to add a node selector or resources. */
export type PodSpecMutator = (spec: PodSpecObject) => PodSpecObject;

/** Executor arguments of one build. */
export interface ExecutorArgs {
  /** Dockerfile path inside the context. */
  dockerfile: string;
  /** Context URL, e.g. `s3://bucket/key.tar.gz`. */
  context: string;
  /** Full image reference with tag. */
  destination: string;
  push: boolean;
  cache: boolean;
  cacheRepo?: string;
  buildArgs: Record<string, string>;
  /** Labels set on the image (`--label`). */
  labels?: Record<string, string>;
  /** Platform of the image, `os/arch[/variant]` (`--custom-platform`). */
  platform?: string;
  /** Push over plain HTTP or unverified TLS. */
  insecureRegistry?: boolean;
}

/** Options of `buildJobManifest`. */
export interface JobManifestOptions {
  namespace: string;
  buildId: string;
  executorImage: string;
  args: ExecutorArgs;
  /** Secret of type kubernetes.io/dockerconfigjson mounted as the executor's config.json. */
  registrySecret?: string;
  /** Seconds the Job may run before the cluster stops it (activeDeadlineSeconds). */
  timeoutSeconds?: number;
  /** Pod spec fields deep-merged into the generated spec (config `podSpec`). */
  podSpec?: Record<string, unknown>;
  /** Applied in order after `podSpec`. */
  mutators?: PodSpecMutator[];
  /** Applied first, by the context source (environment, volumes). */
  contextSourceSpec?: (spec: PodSpecObject) => PodSpecObject;
}

/** Returns the executor's command-line arguments for one build. */
export function executorArgs(args: ExecutorArgs): string[] {
  const list = [
    `--dockerfile=${args.dockerfile}`,
    `--context=${args.context}`,
    `--destination=${args.destination}`,
    "--digest-file=/dev/termination-log",
  ];
  if (!args.push) list.push("--no-push");
  if (args.cache) list.push("--cache=true");
  if (args.cacheRepo) list.push(`--cache-repo=${args.cacheRepo}`);
  if (args.insecureRegistry) list.push("--insecure", "--skip-tls-verify");
  if (args.platform) list.push(`--custom-platform=${args.platform}`);
  for (const name of Object.keys(args.buildArgs).sort()) {
    list.push(`--build-arg=${name}=${args.buildArgs[name]}`);
  }
  const labels = args.labels ?? {};
  for (const name of Object.keys(labels).sort()) {
    list.push(`--label=${name}=${labels[name]}`);
  }
  return list;
}

/** Returns the labels of every object of build `buildId`. */
export function buildLabels(buildId: string): Record<string, string> {
  return { [BUILDER_LABEL]: "", [BUILD_ID_LABEL]: buildId };
}

/** Returns the label selector of the objects of build `buildId`. */
export function buildSelector(buildId: string): string {
  return `${BUILDER_LABEL},${BUILD_ID_LABEL}=${buildId}`;
}

/** Generates the build pod spec: the executor container, credentials, then mutators. */
export function buildPodSpec(options: JobManifestOptions): PodSpecObject {
  const container: Record<string, unknown> = {
    name: EXECUTOR_CONTAINER,
    image: options.executorImage,
    args: executorArgs(options.args),
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
  };
  let spec: PodSpecObject = { restartPolicy: "Never", containers: [container] };
  if (options.registrySecret) {
    container.volumeMounts = [
      { name: "docker-config", mountPath: DOCKER_CONFIG_DIR, readOnly: true },
    ];
    spec.volumes = [
      {
        name: "docker-config",
        secret: {
          secretName: options.registrySecret,
          items: [{ key: ".dockerconfigjson", path: "config.json" }],
        },
      },
    ];
  }
  if (options.contextSourceSpec) spec = options.contextSourceSpec(spec);
  if (options.podSpec) spec = mergePodSpec(spec, options.podSpec);
  for (const mutate of options.mutators ?? []) spec = mutate(spec);

  if (
    !Array.isArray(spec.containers) ||
    !spec.containers.some((c) => c.name === EXECUTOR_CONTAINER)
  ) {
    throw new InputError(
      `the build pod spec lost its "${EXECUTOR_CONTAINER}" container: pod spec mutators must keep it`,
    );
  }
  if (spec.restartPolicy !== "Never") {
    throw new InputError(
      `invalid restartPolicy "${String(spec.restartPolicy)}" in the build pod spec: a build Job needs "Never"`,
    );
  }
  return spec;
}

/** Generates the batch/v1 Job object of one build. */
export function buildJobManifest(options: JobManifestOptions): Record<string, unknown> {
  const labels = buildLabels(options.buildId);
  // Without this annotation an Istio sidecar keeps the pod running after the executor exits.
  const annotations = { "sidecar.istio.io/inject": "false" };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      generateName: "fairing-builder-",
      namespace: options.namespace,
      labels,
      annotations,
    },
    spec: {
      backoffLimit: 0,
      ...(options.timeoutSeconds ? { activeDeadlineSeconds: options.timeoutSeconds } : {}),
      template: {
        metadata: { labels, annotations },
        spec: buildPodSpec(options),
      },
    },
  };
}

/**
 * Deep-merges `patch` into `base`: objects merge key by key, arrays of objects that all have a
 * `name` (containers, volumes, env) merge element by element on that name, and any other value
 * in `patch` replaces the one in `base`.
 */
export function mergePodSpec<T extends Record<string, unknown>>(
  base: T,
  patch: Record<string, unknown>,
): T {
  return mergeValue(base, patch) as T;
}

function mergeValue(base: unknown, patch: unknown): unknown {
  if (isPlainObject(base) && isPlainObject(patch)) {
    const result: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      result[key] = key in base ? mergeValue(base[key], value) : value;
    }
    return result;
  }
  if (Array.isArray(base) && Array.isArray(patch) && isNamedList(base) && isNamedList(patch)) {
    const result = base.slice();
    for (const item of patch) {
      const index = result.findIndex((existing) => existing.name === item.name);
      if (index === -1) result.push(item);
      else result[index] = mergeValue(result[index], item) as { name: unknown };
    }
    return result;
  }
  return patch;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNamedList(list: unknown[]): list is ({ name: unknown } & Record<string, unknown>)[] {
  return list.every((item) => isPlainObject(item) && typeof item.name === "string");
}
