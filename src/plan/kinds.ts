/**
 * The contract between the planner and each builder kind. `plan()` collects the context and
 * derives the tag once, then hands both to the kind's planner; `apply()` hands the plan back.
 * Kinds live in `src/builders/<kind>/plan.ts` and are imported lazily, so planning an append
 * build never loads dockerode or the Kubernetes client.
 */
import type { Config } from "../config/types.ts";
import type { BasePreProcessor } from "../context/preprocessor.ts";
import type { ContextEntry } from "../context/entries.ts";
import type { ImageReference } from "../registry/reference.ts";
import type { BuildPlan, BuildResult, PlanStep, RunOptions } from "./types.ts";

/** Values the planner computes before it calls a builder kind. */
export interface PlanInputs {
  config: Config;
  preprocessor: BasePreProcessor;
  /** Context entries, sorted, ignore rules applied. */
  entries: ContextEntry[];
  contextDigest: string;
  /**
   * Content sha256 of each file entry, computed (or confirmed through the digest cache) when
   * `contextDigest` was, so the archive step does not stat or look up the files again.
   */
  contentHashes: Map<ContextEntry, string>;
  /**
   * Hash of the context digest and every setting that changes the image; `tag: auto` uses it as
   * the tag, and builders store it in the image so a fixed tag is rebuilt when a setting changes.
   */
  buildKey: string;
  tag: string;
  /** Target reference with the tag; its registry is `config.registry`'s, or `localhost` for file outputs. */
  target: ImageReference;
  /** Milliseconds the walk and the context digest took when these inputs were collected. */
  collectMilliseconds?: number;
}

/** A builder kind's share of planning: its steps and whether the target is up to date. */
export interface KindPlan {
  steps: PlanStep[];
  upToDate: boolean;
  reason: string;
  baseDigest?: string;
}

export interface BuilderKindPlanner {
  /**
   * Starts the part of `plan` that needs only the config, such as resolving the base image, so
   * that it runs while the context is collected. `plan` takes the result for the same config.
   */
  prepare?(config: Config, options: RunOptions): void;
  plan(inputs: PlanInputs, options: RunOptions): Promise<KindPlan>;
  apply(plan: BuildPlan, options: RunOptions): Promise<BuildResult>;
}
