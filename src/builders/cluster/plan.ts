/**
 * The cluster kind's planner: the steps `fairing plan` shows and the run `fairing apply` does.
 * An image is up to date when its tag already exists in the registry.
 */
import type { ClusterBuilderConfig, Config } from "../../config/types.ts";
import type { BasePreProcessor } from "../../context/preprocessor.ts";
import { InputError } from "../../errors.ts";
import { silentLogger, type Logger } from "../../log.ts";
import { inputsForApply } from "../../plan/inputs.ts";
import type { BuilderKindPlanner, KindPlan, PlanInputs } from "../../plan/kinds.ts";
import type { BuildPlan, BuildResult, PlanStep, RunOptions } from "../../plan/types.ts";
import { formatReference } from "../../registry/reference.ts";
import { CONTEXT_DOCKERFILE } from "../docker/context.ts";
import { buildKeyLabel, checkUpToDate, registryDigest } from "../docker/planning.ts";
import { dockerfileText } from "../docker/settings.ts";
import { runClusterBuild, type ClusterBuilderOptions } from "./builder.ts";
import type { ContextSource } from "./context-source.ts";
import { createContextSource } from "./sources.ts";

function clusterConfig(config: Config): ClusterBuilderConfig {
  return config.builder as ClusterBuilderConfig;
}

/** Returns the ClusterBuilder options a config gives; the context source is created here. */
export function clusterOptionsFromConfig(
  config: Config,
  preprocessor: BasePreProcessor,
  logger: Logger = silentLogger,
): ClusterBuilderOptions {
  const builder = clusterConfig(config);
  if (!config.contextSource) {
    throw new InputError(
      `${config.file}: builder.kind cluster needs contextSource (gcs, s3, azure or minio) to upload the context to`,
    );
  }
  const options: ClusterBuilderOptions = {
    preprocessor,
    baseImage: config.baseImage,
    imageName: config.imageName,
    push: builder.push,
    buildArgs: builder.buildArgs,
    env: config.env,
    labels: config.labels,
    platform: config.platform,
    registries: config.registries,
    logger,
    contextSource: createContextSource(config.contextSource),
    executorImage: builder.executorImage,
    cache: builder.cache,
    timeoutSeconds: builder.timeoutSeconds,
    startTimeoutSeconds: builder.startTimeoutSeconds,
    cleanup: builder.cleanup,
    createRegistrySecret: builder.createRegistrySecret,
    podSpec: builder.podSpec,
  };
  if (config.registry !== undefined) options.registry = config.registry;
  if (config.user !== undefined) options.user = config.user;
  if (builder.dockerfilePath !== undefined) options.dockerfilePath = builder.dockerfilePath;
  if (builder.namespace !== undefined) options.namespace = builder.namespace;
  if (builder.kubeconfig !== undefined) options.kubeconfig = builder.kubeconfig;
  if (builder.context !== undefined) options.context = builder.context;
  if (builder.cacheRepo !== undefined) options.cacheRepo = builder.cacheRepo;
  if (builder.registrySecret !== undefined) options.registrySecret = builder.registrySecret;
  return options;
}

/** Says which registry credentials the build pod gets. */
function registryCredentials(builder: ClusterBuilderConfig): string {
  if (builder.registrySecret) return `, pushing with the Secret ${builder.registrySecret}`;
  if (builder.createRegistrySecret) {
    return ", pushing with a Secret made from the local Docker config";
  }
  return ", pushing without registry credentials";
}

/** Cluster and namespace the Job would run in, from the kubeconfig, or the kubeconfig problem. */
type KubeTarget = { server: string; namespace: string } | { problem: string };

/** Loads the kubeconfig the build would use, so the plan shows the cluster or the problem. */
async function kubeTarget(builder: ClusterBuilderConfig): Promise<KubeTarget> {
  try {
    const { connectKube } = await import("../../kube/client.ts");
    const connection = await connectKube({
      ...(builder.kubeconfig !== undefined ? { kubeconfig: builder.kubeconfig } : {}),
      ...(builder.context !== undefined ? { context: builder.context } : {}),
      ...(builder.namespace !== undefined ? { namespace: builder.namespace } : {}),
    });
    return { server: connection.server, namespace: connection.namespace };
  } catch (error) {
    return { problem: error instanceof Error ? error.message : String(error) };
  }
}

function describeJobTarget(target: KubeTarget): string {
  if ("problem" in target) return `(${target.problem}; apply fails until this is fixed)`;
  return `in namespace ${target.namespace} on ${target.server}`;
}

function clusterSteps(
  inputs: PlanInputs,
  dockerfile: string,
  contextSource: ContextSource,
  kube: KubeTarget,
): PlanStep[] {
  const { config } = inputs;
  const builder = clusterConfig(config);
  const source = config.contextSource;
  const reference = formatReference(inputs.target);
  const files = inputs.entries.filter((entry) => entry.type === "file");
  const bytes = files.reduce((sum, entry) => sum + entry.size, 0);
  const where = contextSource.describe?.() ?? `${contextSource.kind} storage`;
  const cleanup = Object.entries(builder.cleanup)
    .filter(([, enabled]) => enabled)
    .map(([what]) => what);
  return [
    {
      name: "write-dockerfile",
      description: builder.dockerfilePath
        ? `use the project's Dockerfile ${builder.dockerfilePath}`
        : `generate a Dockerfile on ${config.baseImage}`,
      detail: dockerfile,
    },
    {
      name: "archive-context",
      description: `archive ${inputs.entries.length} context entries (${files.length} files, ${bytes} bytes) and the Dockerfile as ${CONTEXT_DOCKERFILE} into a gzip tar`,
    },
    {
      name: "upload-context",
      description: `upload the archive to ${where} under ${source?.prefix ?? ""}context-<sha256>.tar.gz, unless it is there already`,
    },
    {
      name: "create-job",
      description: `create a Job ${describeJobTarget(kube)} running ${builder.executorImage} to build ${reference}${builder.push ? "" : " without pushing"}${registryCredentials(builder)}`,
    },
    {
      name: "follow-logs",
      description: "follow the build pod's log and wait for the Job to finish",
    },
    {
      name: "cleanup",
      description:
        cleanup.length > 0 ? `delete the ${cleanup.join(", ")} after the build` : "keep everything",
    },
  ];
}

/** The cluster kind's share of planning and applying. */
export const planner: BuilderKindPlanner = {
  async plan(inputs: PlanInputs, options: RunOptions): Promise<KindPlan> {
    const logger = options.logger ?? silentLogger;
    const builderOptions = clusterOptionsFromConfig(inputs.config, inputs.preprocessor, logger);
    builderOptions.labels = { ...builderOptions.labels, ...buildKeyLabel(inputs) };
    const dockerfile = await dockerfileText(builderOptions, inputs.entries);
    const kube = await kubeTarget(clusterConfig(inputs.config));
    const steps = clusterSteps(inputs, dockerfile, builderOptions.contextSource, kube);
    const reference = formatReference(inputs.target);
    const { upToDate, reason } = await checkUpToDate(
      `registry ${inputs.target.registry}`,
      reference,
      () => registryDigest(inputs.config, inputs.target, logger, buildKeyLabel(inputs)),
    );
    return { steps, upToDate, reason };
  },

  async apply(plan: BuildPlan, options: RunOptions): Promise<BuildResult> {
    const logger = options.logger ?? silentLogger;
    const inputs = await inputsForApply(plan, options);
    const reference = formatReference(inputs.target);

    if (plan.upToDate) {
      const digest = await registryDigest(
        inputs.config,
        inputs.target,
        logger,
        buildKeyLabel(inputs),
      ).catch(() => undefined);
      if (digest) {
        logger.info(`${reference} is up to date (${digest}); nothing to build`);
        return {
          image: `${reference}@${digest}`,
          digest,
          tag: inputs.tag,
          upToDate: true,
          destination: reference,
          steps: [],
        };
      }
      logger.info(`${reference} was up to date when planned but is gone now; building it`);
    }

    const builderOptions = clusterOptionsFromConfig(inputs.config, inputs.preprocessor, logger);
    builderOptions.labels = { ...builderOptions.labels, ...buildKeyLabel(inputs) };
    const dockerfile = await dockerfileText(builderOptions, inputs.entries);
    return await runClusterBuild({
      ...options,
      logger,
      options: builderOptions,
      entries: inputs.entries,
      dockerfile,
      target: inputs.target,
      contextDigest: inputs.contextDigest,
    });
  },
};
