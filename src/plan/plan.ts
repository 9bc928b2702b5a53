/**
 * `plan()` and `apply()`: turn a config into a build plan and run it, with the builder kind's
 * planner loaded on demand.
 */
import type { Config } from "../config/types.ts";
import { silentLogger } from "../log.ts";
import { collectInputs, rememberInputs } from "./inputs.ts";
import type { BuilderKindPlanner } from "./kinds.ts";
import type { BuildPlan, BuildResult, RunOptions } from "./types.ts";
import { formatReference } from "../registry/reference.ts";

/** Loads the planner of a builder kind; each kind's dependencies load only when it is used. */
export async function loadKind(kind: Config["builder"]["kind"]): Promise<BuilderKindPlanner> {
  switch (kind) {
    case "append":
      return (await import("../builders/append/plan.ts")).planner;
    case "docker":
      return (await import("../builders/docker/plan.ts")).planner;
    case "podman":
      return (await import("../builders/podman/plan.ts")).planner;
    case "cluster":
      return (await import("../builders/cluster/plan.ts")).planner;
  }
}

/**
 * Plans a build: collects the context, derives the tag, resolves the base image and checks
 * whether the target already contains this build. Same config and same files give the same plan.
 */
export async function plan(config: Config, options: RunOptions = {}): Promise<BuildPlan> {
  const logger = options.logger ?? silentLogger;
  const kind = await loadKind(config.builder.kind);
  kind.prepare?.(config, { ...options, logger });
  const inputs = await collectInputs(config, { ...options, logger });
  const kindPlan = await kind.plan(inputs, { ...options, logger });
  // Append file outputs have no registry; docker and podman tag `localhost/name:tag` then.
  const image =
    config.registry !== undefined || config.builder.kind !== "append"
      ? formatReference(inputs.target)
      : `${inputs.target.repository}:${inputs.tag}`;
  const buildPlan: BuildPlan = {
    version: 1,
    builder: config.builder.kind,
    image,
    tag: inputs.tag,
    contextDigest: inputs.contextDigest,
    base: {
      reference: config.baseImage,
      ...(kindPlan.baseDigest ? { digest: kindPlan.baseDigest } : {}),
    },
    steps: kindPlan.steps,
    upToDate: kindPlan.upToDate,
    reason: kindPlan.reason,
    config,
  };
  rememberInputs(buildPlan, inputs);
  return buildPlan;
}

/** Runs a plan. An up-to-date target is checked again and, when still current, nothing is uploaded. */
export async function apply(buildPlan: BuildPlan, options: RunOptions = {}): Promise<BuildResult> {
  const kind = await loadKind(buildPlan.builder);
  return await kind.apply(buildPlan, { ...options, logger: options.logger ?? silentLogger });
}

/** Returns the plan as plain JSON-ready data (the config without its position lookup). */
export function planToJSON(buildPlan: BuildPlan): Record<string, unknown> {
  const { locate: _locate, ...config } = buildPlan.config;
  return { ...buildPlan, config };
}
