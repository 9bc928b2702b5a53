/**
 * The cluster builder: archives the context with a Dockerfile, uploads it to a context source,
 * and builds and pushes the image in Kubernetes with a Kaniko-compatible executor Job.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeArchive } from "../../context/archive.ts";
import { contextDigest } from "../../context/digest.ts";
import type { ContextEntry } from "../../context/entries.ts";
import { InputError } from "../../errors.ts";
import { connectKube, type KubeConnectOptions, type KubeConnection } from "../../kube/client.ts";
import type { PodSpecMutator } from "../../kube/job.ts";
import { generatePodSpec } from "../../kube/podspec.ts";
import { silentLogger } from "../../log.ts";
import type { BuildResult, PodSpec, RunOptions, StepTiming } from "../../plan/types.ts";
import {
  formatReference,
  isLoopbackRegistry,
  parseReference,
  type ImageReference,
} from "../../registry/reference.ts";
import { CONTEXT_DOCKERFILE, createDockerBuildContext } from "../docker/context.ts";
import {
  deriveTag,
  dockerfileText,
  fullImageName,
  imageLabels,
  type DaemonBuilderOptions,
} from "../docker/settings.ts";
import type { ContextSource } from "./context-source.ts";
import { runBuildJob } from "./job-runner.ts";

/**
 * Default executor image, a maintained fork of the archived Kaniko project.
 * NOTE: no executor image has run against this builder's Jobs here (no cluster is available),
 * so the argument set is checked against Kaniko's documented flags only.
 */
export const DEFAULT_EXECUTOR_IMAGE = "ghcr.io/osscontainertools/kaniko:latest";

/** Options of `ClusterBuilder`. */
export interface ClusterBuilderOptions extends Omit<DaemonBuilderOptions, "target" | "network"> {
  contextSource: ContextSource;
  /** Kaniko-compatible executor image. */
  executorImage?: string;
  namespace?: string;
  /** kubeconfig file; default KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** kubeconfig context name. */
  context?: string;
  cache?: boolean;
  cacheRepo?: string;
  /** Seconds the build may take. Default 1800. */
  timeoutSeconds?: number;
  /** Seconds the build pod may wait to start (image pulls, scheduling). Default 300. */
  startTimeoutSeconds?: number;
  /** Objects deleted after the build; all of them by default. */
  cleanup?: Partial<{ job: boolean; secrets: boolean; context: boolean }>;
  /** Existing kubernetes.io/dockerconfigjson Secret with push credentials. */
  registrySecret?: string;
  /** Create the registry Secret from the local Docker config. Default false. */
  createRegistrySecret?: boolean;
  /** Pod spec fields deep-merged into the build pod. */
  podSpec?: Record<string, unknown>;
  /** Functions applied to the build pod spec after `podSpec`, in order. */
  podSpecMutators?: PodSpecMutator[];
}

/** Everything one cluster build needs; the planner and `ClusterBuilder` both fill it. */
export interface ClusterBuildRequest extends RunOptions {
  options: ClusterBuilderOptions;
  entries: readonly ContextEntry[];
  dockerfile: string;
  target: ImageReference;
  /** Digest of the collected context; when given, the image gets it as a label. */
  contextDigest?: string;
  /** An open connection; default one from the options' kubeconfig settings. */
  connection?: KubeConnection;
}

/**
 * Archives the context, uploads it, runs the executor Job and returns the pushed reference
 * with its digest. Removes the local archive, and the Job, Secrets and uploaded context as
 * `cleanup` selects, also when the build fails or `signal` aborts.
 */
export async function runClusterBuild(request: ClusterBuildRequest): Promise<BuildResult> {
  const { options } = request;
  const logger = request.logger ?? options.logger ?? silentLogger;
  const run = { logger, onProgress: request.onProgress, signal: request.signal };
  const steps: StepTiming[] = [];
  const timed = async <T>(name: string, action: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await action();
    } finally {
      steps.push({ name, milliseconds: Date.now() - started });
    }
  };
  const destination = formatReference({ ...request.target, digest: undefined });
  const cleanup = { job: true, secrets: true, context: true, ...options.cleanup };
  const dir = await mkdtemp(join(tmpdir(), "fairing-cluster-"));
  const context = await createDockerBuildContext(request.entries, request.dockerfile);

  try {
    const archivePath = join(dir, "context.tar.gz");
    const archive = await timed("archive-context", () =>
      writeArchive(
        context.entries,
        createWriteStream(archivePath),
        request.signal ? { signal: request.signal } : {},
      ),
    );
    logger.info(`archived the context: ${archive.size} bytes, ${archive.digest}`);

    const prepared = await timed("upload-context", () =>
      options.contextSource.prepare(archivePath, {
        digest: archive.digest,
        size: archive.size,
        ...(request.onProgress ? { onProgress: request.onProgress } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      }),
    );
    logger.info(`context ${prepared.uploaded ? "uploaded to" : "already at"} ${prepared.url}`);

    const connection = request.connection ?? (await connectKube(kubeOptions(options)));
    const result = await timed("follow-logs", () =>
      runBuildJob(
        connection,
        {
          executorImage: options.executorImage ?? DEFAULT_EXECUTOR_IMAGE,
          args: {
            dockerfile: CONTEXT_DOCKERFILE,
            context: prepared.url,
            destination,
            push: options.push ?? true,
            cache: options.cache ?? false,
            ...(options.cacheRepo ? { cacheRepo: options.cacheRepo } : {}),
            buildArgs: options.buildArgs ?? {},
            labels: request.contextDigest
              ? imageLabels(options.labels, request.contextDigest)
              : (options.labels ?? {}),
            ...(options.platform ? { platform: options.platform } : {}),
            insecureRegistry: isInsecure(options, request.target.registry),
          },
          registryHost: request.target.registry,
          ...(options.registrySecret ? { registrySecret: options.registrySecret } : {}),
          createRegistrySecret: options.createRegistrySecret ?? false,
          contextSource: options.contextSource,
          ...(options.podSpec ? { podSpec: options.podSpec } : {}),
          ...(options.podSpecMutators ? { mutators: options.podSpecMutators } : {}),
          timeoutSeconds: options.timeoutSeconds ?? 1800,
          startTimeoutSeconds: options.startTimeoutSeconds ?? 300,
          cleanup,
        },
        run,
      ),
    );
    return {
      image: `${destination}@${result.digest}`,
      digest: result.digest,
      tag: request.target.tag ?? "latest",
      upToDate: false,
      destination,
      steps,
    };
  } finally {
    await context.dispose();
    await rm(dir, { recursive: true, force: true });
    if (cleanup.context) {
      await timed("cleanup", () => options.contextSource.cleanup()).catch((error: unknown) =>
        logger.warn(`cannot delete the uploaded context: ${(error as Error).message}`),
      );
    }
  }
}

/**
 * The cluster builder's class API, for code ported from the original `ClusterBuilder`:
 * `build()`, `fullImageName(tag)` and `generatePodSpec()`.
 */
export class ClusterBuilder {
  readonly options: ClusterBuilderOptions;
  /** Tag of the last build, set by `build()`. */
  imageTag: string | undefined;
  /** Result of the last build. */
  result: BuildResult | undefined;

  /** Creates a builder; nothing is uploaded or created before `build()`. */
  constructor(options: ClusterBuilderOptions) {
    if (!options.registry) {
      throw new InputError(
        "ClusterBuilder needs a registry: the executor pushes the image there, e.g. registry: 127.0.0.1:5000/team",
      );
    }
    this.options = options;
  }

  /** Returns `registry/imageName:tag`. */
  fullImageName(tag: string): string {
    return fullImageName(this.options, tag);
  }

  /**
   * Collects the context, builds the image in the cluster and pushes it. The tag is
   * `options.tag`, else one derived from the context digest, the Dockerfile and the settings.
   */
  async build(
    options: RunOptions & { tag?: string; connection?: KubeConnection } = {},
  ): Promise<BuildResult> {
    const entries = await this.options.preprocessor.collect();
    const digest = await contextDigest(entries);
    const dockerfile = await dockerfileText(this.options, entries);
    const tag = options.tag ?? deriveTag(digest, dockerfile, this.options);
    this.result = await runClusterBuild({
      ...options,
      options: this.options,
      entries,
      dockerfile,
      target: parseReference(this.fullImageName(tag)),
      contextDigest: digest,
    });
    this.imageTag = tag;
    return this.result;
  }

  /** Returns the pod spec that runs the last built image; throws `InputError` before `build()`. */
  generatePodSpec(): PodSpec {
    if (!this.result) {
      throw new InputError("ClusterBuilder.generatePodSpec() needs an image: call build() first");
    }
    return generatePodSpec(this.result.image, this.options.preprocessor, this.options.env ?? {});
  }
}

/** Returns the kubeconfig settings of `options` for `connectKube`. */
export function kubeOptions(options: ClusterBuilderOptions): KubeConnectOptions {
  return {
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
    ...(options.namespace ? { namespace: options.namespace } : {}),
  };
}

function isInsecure(options: ClusterBuilderOptions, registry: string): boolean {
  return options.registries?.[registry]?.insecure === true || isLoopbackRegistry(registry);
}
