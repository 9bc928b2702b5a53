/**
 * The build plan: plain, serialisable data that `plan()` computes from a config and the
 * project files, and that `apply()` runs. Every builder kind produces the same shape.
 */
import type { Config } from "../config/types.ts";
import type { Logger, ProgressEvent } from "../log.ts";

/** One named step of a plan, e.g. `archive-context` or `push-manifest`. */
export interface PlanStep {
  name: string;
  /** One line saying what the step does, with the values it uses (never a secret). */
  description: string;
  /** Extra text shown by `fairing plan`, e.g. a generated Dockerfile. */
  detail?: string;
}

export interface BuildPlan {
  /** Plan format version. */
  version: 1;
  builder: Config["builder"]["kind"];
  /** Full image reference with the tag, e.g. `127.0.0.1:5000/team/mnist:3f2a...`. */
  image: string;
  tag: string;
  /** sha256 over the context's file list, modes and contents; the default tag derives from it. */
  contextDigest: string;
  base: {
    reference: string;
    /** Manifest digest of the resolved base image, when it was resolved while planning. */
    digest?: string;
  };
  steps: PlanStep[];
  /** True when the target already contains this exact build, so `apply()` uploads nothing. */
  upToDate: boolean;
  /** Reason the plan is or is not up to date, for people. */
  reason: string;
  /** The config the plan was made from; `apply()` reads everything else from here. */
  config: Config;
}

/** How long one step took. */
export interface StepTiming {
  name: string;
  milliseconds: number;
}

export interface BuildResult {
  /**
   * Full reference with digest, e.g. `registry/name:tag@sha256:...`; for file outputs,
   * `name:tag@sha256:...`; for an image left in a Docker Engine or podman storage, `name:tag`.
   */
  image: string;
  /** Manifest digest; for an image left in a Docker Engine or podman storage, its image id. */
  digest: string;
  tag: string;
  upToDate: boolean;
  /** Destination of the image: a registry reference, or a local path for file outputs. */
  destination: string;
  steps: StepTiming[];
  /** Blob transfer counts, for builders that push to a registry themselves; absent otherwise. */
  blobs?: { uploaded: number; mounted: number; skipped: number; uploadedBytes: number };
}

/** Options every builder run and `apply()` accept. */
export interface RunOptions {
  logger?: Logger;
  onProgress?: (event: ProgressEvent) => void;
  /** Aborts the build; builders clean up what they created before rejecting. */
  signal?: AbortSignal;
}

/** Kubernetes V1PodSpec-shaped object that runs the built image. */
export interface PodSpec {
  containers: {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    workingDir?: string;
    env?: { name: string; value: string }[];
    [field: string]: unknown;
  }[];
  restartPolicy?: string;
  [field: string]: unknown;
}
