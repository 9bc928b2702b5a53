/**
 * The podman kind's planner: the steps `fairing plan` shows and the run `fairing apply` does.
 * An image is up to date when its tag exists in the registry (push) or in podman's storage
 * (no push).
 */
import type { PodmanBuilderConfig } from "../../config/types.ts";
import { silentLogger } from "../../log.ts";
import { inputsForApply } from "../../plan/inputs.ts";
import type { BuilderKindPlanner, KindPlan, PlanInputs } from "../../plan/kinds.ts";
import type { BuildPlan, BuildResult, RunOptions } from "../../plan/types.ts";
import { formatReference } from "../../registry/reference.ts";
import {
  checkUpToDate,
  daemonOptionsFromConfig,
  daemonSteps,
  registryDigest,
  buildKeyLabel,
  reuseExisting,
} from "../docker/planning.ts";
import { dockerfileText } from "../docker/settings.ts";
import { findPodmanImage, runPodmanBuild } from "./builder.ts";

function podmanConfig(inputs: { config: PlanInputs["config"] }): PodmanBuilderConfig {
  return inputs.config.builder as PodmanBuilderConfig;
}

/** Describes podman's storage for messages: its global flags, or `podman` without any. */
function describeStorage(builder: PodmanBuilderConfig): string {
  return builder.globalArgs.length > 0 ? `podman ${builder.globalArgs.join(" ")}` : "podman";
}

async function existingDigest(
  inputs: PlanInputs,
  options: RunOptions,
): Promise<{ upToDate: boolean; reason: string; digest?: string }> {
  const builder = podmanConfig(inputs);
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
    : async () =>
        (digest = await findPodmanImage(builder.globalArgs, reference, buildKeyLabel(inputs)));
  const where = builder.push
    ? `registry ${inputs.target.registry}`
    : `the storage of ${describeStorage(builder)}`;
  const verdict = await checkUpToDate(where, reference, find);
  return digest ? { ...verdict, digest } : verdict;
}

/** The podman kind's share of planning and applying. */
export const planner: BuilderKindPlanner = {
  async plan(inputs: PlanInputs, options: RunOptions): Promise<KindPlan> {
    const builder = podmanConfig(inputs);
    const logger = options.logger ?? silentLogger;
    const builderOptions = daemonOptionsFromConfig(
      inputs.config,
      builder,
      inputs.preprocessor,
      logger,
    );
    const dockerfile = await dockerfileText(builderOptions, inputs.entries);
    const steps = daemonSteps("podman", inputs, builder, dockerfile, describeStorage(builder));
    const { upToDate, reason } = await existingDigest(inputs, options);
    return { steps, upToDate, reason };
  },

  async apply(plan: BuildPlan, options: RunOptions): Promise<BuildResult> {
    const logger = options.logger ?? silentLogger;
    const inputs = await inputsForApply(plan, options);
    const builder = podmanConfig(inputs);

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
    return await runPodmanBuild({
      ...options,
      logger,
      globalArgs: builder.globalArgs,
      entries: inputs.entries,
      contextDigest: inputs.contextDigest,
      dockerfile,
      target: inputs.target,
      push: builder.push,
      ...(builder.tlsVerify !== undefined ? { tlsVerify: builder.tlsVerify } : {}),
      registries: inputs.config.registries,
      buildArgs: builder.buildArgs,
      labels: { ...inputs.config.labels, ...buildKeyLabel(inputs) },
      platform: inputs.config.platform,
      ...(builder.target ? { buildTarget: builder.target } : {}),
      ...(builder.network ? { network: builder.network } : {}),
      baseImage: inputs.config.baseImage,
    });
  },
};
