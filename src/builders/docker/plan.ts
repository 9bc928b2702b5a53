/**
 * The docker kind's planner: the steps `fairing plan` shows and the run `fairing apply` does.
 * An image is up to date when its tag exists in the registry (push) or in the engine (no push).
 */
import type { DockerBuilderConfig } from "../../config/types.ts";
import { silentLogger } from "../../log.ts";
import { inputsForApply } from "../../plan/inputs.ts";
import type { BuilderKindPlanner, KindPlan, PlanInputs } from "../../plan/kinds.ts";
import type { BuildPlan, BuildResult, RunOptions } from "../../plan/types.ts";
import { formatReference } from "../../registry/reference.ts";
import { runDockerBuild } from "./builder.ts";
import { connectDocker, describeConnection, resolveDockerConnection } from "./connection.ts";
import { findEngineImage } from "./engine.ts";
import {
  checkUpToDate,
  daemonOptionsFromConfig,
  daemonSteps,
  registryDigest,
  buildKeyLabel,
  reuseExisting,
} from "./planning.ts";
import { dockerfileText } from "./settings.ts";

function dockerConfig(inputs: { config: PlanInputs["config"] }): DockerBuilderConfig {
  return inputs.config.builder as DockerBuilderConfig;
}

/** Returns the digest of the target where it would be: the registry, or the engine without push. */
async function existingDigest(
  inputs: PlanInputs,
  options: RunOptions,
): Promise<{ upToDate: boolean; reason: string; digest?: string }> {
  const builder = dockerConfig(inputs);
  const reference = formatReference(inputs.target);
  let digest: string | undefined;
  const find = builder.push
    ? async () =>
        (digest = await registryDigest(
          inputs.config,
          inputs.target,
          options.logger ?? silentLogger,
          buildKeyLabel(inputs),
        ))
    : async () => {
        const connection = resolveDockerConnection(builder.dockerHost);
        return (digest = await findEngineImage(
          await connectDocker(connection),
          reference,
          buildKeyLabel(inputs),
        ));
      };
  const where = builder.push
    ? `registry ${inputs.target.registry}`
    : `the Docker Engine at ${describeConnection(resolveDockerConnection(builder.dockerHost))}`;
  const verdict = await checkUpToDate(where, reference, find);
  return digest ? { ...verdict, digest } : verdict;
}

/** The docker kind's share of planning and applying. */
export const planner: BuilderKindPlanner = {
  async plan(inputs: PlanInputs, options: RunOptions): Promise<KindPlan> {
    const builder = dockerConfig(inputs);
    const logger = options.logger ?? silentLogger;
    const builderOptions = daemonOptionsFromConfig(
      inputs.config,
      builder,
      inputs.preprocessor,
      logger,
    );
    const dockerfile = await dockerfileText(builderOptions, inputs.entries);
    const engine = describeConnection(resolveDockerConnection(builder.dockerHost));
    const steps = daemonSteps("docker", inputs, builder, dockerfile, engine);
    const { upToDate, reason } = await existingDigest(inputs, options);
    return { steps, upToDate, reason };
  },

  async apply(plan: BuildPlan, options: RunOptions): Promise<BuildResult> {
    const logger = options.logger ?? silentLogger;
    const inputs = await inputsForApply(plan, options);
    const builder = dockerConfig(inputs);

    if (plan.upToDate) {
      const existing = await reuseExisting(inputs, builder.push, logger, () =>
        existingDigest(inputs, options),
      );
      if (existing) return existing;
    }

    const builderOptions = daemonOptionsFromConfig(
      inputs.config,
      builder,
      inputs.preprocessor,
      logger,
    );
    const dockerfile = await dockerfileText(builderOptions, inputs.entries);
    return await runDockerBuild({
      ...options,
      logger,
      connection: resolveDockerConnection(builder.dockerHost),
      entries: inputs.entries,
      contextDigest: inputs.contextDigest,
      dockerfile,
      target: inputs.target,
      push: builder.push,
      buildArgs: builder.buildArgs,
      labels: { ...inputs.config.labels, ...buildKeyLabel(inputs) },
      platform: inputs.config.platform,
      ...(builder.target ? { buildTarget: builder.target } : {}),
      ...(builder.network ? { network: builder.network } : {}),
    });
  },
};
