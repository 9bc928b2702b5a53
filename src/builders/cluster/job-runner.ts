/**
 * Runs one build Job in the cluster. It creates the Secrets and the Job, follows the build
 * pod's log, waits for the Job to complete or fail and reads the pushed digest from the
 * executor's termination message. It deletes what it created, also when the build fails,
 * times out or is aborted.
 */
import { randomBytes } from "node:crypto";
import { BuildError, FairingError, InputError } from "../../errors.ts";
import { silentLogger, type Logger } from "../../log.ts";
import type { RunOptions } from "../../plan/types.ts";
import { resolveCredential } from "../../registry/credentials.ts";
import { apiError, apiStatus, type KubeConnection } from "../../kube/client.ts";
import {
  buildJobManifest,
  buildSelector,
  EXECUTOR_CONTAINER,
  type ExecutorArgs,
  type PodSpecMutator,
} from "../../kube/job.ts";
import { findUnknownFields } from "../../kube/fields.ts";
import { followPodLog, type LogFollower } from "../../kube/logs.ts";
import { createBuildSecret, deleteSecret, dockerConfigJson } from "../../kube/secrets.ts";
import { watchUntil, type WatchedObject } from "../../kube/watch.ts";
import type { BuildPodSpec, ContextSource } from "./context-source.ts";

/** Settings of `runBuildJob` besides the connection. */
export interface BuildJobOptions {
  executorImage: string;
  args: ExecutorArgs;
  /** Registry host of the destination, for `createRegistrySecret`. */
  registryHost: string;
  registrySecret?: string;
  createRegistrySecret: boolean;
  contextSource?: ContextSource;
  podSpec?: Record<string, unknown>;
  mutators?: PodSpecMutator[];
  timeoutSeconds: number;
  startTimeoutSeconds: number;
  cleanup: { job: boolean; secrets: boolean };
  /** Environment for resolving registry credentials; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** The outcome of a successful build Job. */
export interface BuildJobResult {
  /** Manifest digest the executor pushed. */
  digest: string;
  jobName: string;
  podName: string | undefined;
  buildId: string;
  /** Last lines of the executor's log. */
  logTail: string[];
}

/** Container waiting reasons that mean the build pod will not start without a change. */
const STUCK_REASONS = new Set([
  "ImagePullBackOff",
  "ErrImagePull",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CreateContainerError",
]);

interface PodState {
  name?: string;
  started: boolean;
  /** Reason the pod is not running yet, e.g. `ImagePullBackOff: Back-off pulling image "x"`. */
  waiting?: string;
}

type JobOutcome = { kind: "complete" } | { kind: "failed"; reason: string } | { kind: "deleted" };

/** Runs the build Job and returns the pushed digest, or throws a BuildError with the log tail. */
export async function runBuildJob(
  connection: KubeConnection,
  options: BuildJobOptions,
  run: RunOptions = {},
): Promise<BuildJobResult> {
  const logger = run.logger ?? silentLogger;
  const buildId = randomBytes(6).toString("hex");
  const secrets: string[] = [];
  let jobName: string | undefined;
  const pod: PodState = { started: false };
  let follower: LogFollower | undefined;
  let followerStart: Promise<LogFollower | undefined> | undefined;

  const controller = new AbortController();
  const forwardAbort = () => controller.abort(run.signal?.reason);
  run.signal?.addEventListener("abort", forwardAbort, { once: true });
  const timers: ReturnType<typeof setTimeout>[] = [];

  try {
    run.signal?.throwIfAborted();
    const registrySecret = await prepareRegistrySecret(
      connection,
      options,
      buildId,
      secrets,
      logger,
    );
    const contextSecret = await prepareContextSecret(connection, options, buildId, secrets);

    const manifest = buildJobManifest({
      namespace: connection.namespace,
      buildId,
      executorImage: options.executorImage,
      args: options.args,
      ...(registrySecret ? { registrySecret } : {}),
      timeoutSeconds: options.timeoutSeconds,
      ...(options.podSpec ? { podSpec: options.podSpec } : {}),
      ...(options.mutators ? { mutators: options.mutators } : {}),
      ...(options.contextSource
        ? {
            contextSourceSpec: (spec) =>
              options.contextSource!.podSpec(
                spec as BuildPodSpec,
                contextSecret ? { secretName: contextSecret } : {},
              ) as typeof spec,
          }
        : {}),
    });
    const unknown = findUnknownFields(connection.k8s, "V1Job", manifest);
    if (unknown.length > 0) {
      throw new InputError(
        `the build Job has fields Kubernetes does not define: ${unknown.join(", ")}; fix their spelling in builder.podSpec or the pod spec mutators`,
      );
    }
    run.onProgress?.({ step: "create-job", status: "start" });
    jobName = await createJob(connection, manifest);
    logger.info(`created Job ${jobName} in namespace ${connection.namespace} (build ${buildId})`);
    run.onProgress?.({ step: "create-job", status: "done", message: jobName });

    const signal = controller.signal;
    timers.push(
      setTimeout(() => {
        controller.abort(
          new BuildError(
            `build Job ${jobName} did not finish within timeoutSeconds ${options.timeoutSeconds}: raise builder.timeoutSeconds or make the build faster`,
            { outputTail: follower?.tail() ?? [] },
          ),
        );
      }, options.timeoutSeconds * 1000),
      setTimeout(() => {
        if (pod.started) return;
        const why =
          pod.waiting ?? (pod.name ? `pod ${pod.name} is still Pending` : "no pod was created");
        controller.abort(
          new BuildError(
            `build pod of Job ${jobName} did not start within startTimeoutSeconds ${options.startTimeoutSeconds}: ${why}; check the executor image ${options.executorImage}, image pull secrets and cluster capacity`,
          ),
        );
      }, options.startTimeoutSeconds * 1000),
    );

    run.onProgress?.({ step: "follow-logs", status: "start" });
    const onPod = (object: WatchedObject) => {
      updatePodState(pod, object);
      if (pod.started && !followerStart && pod.name) {
        const name = pod.name;
        followerStart = followPodLog(connection, name, EXECUTOR_CONTAINER, { logger }).then(
          (started) => (follower = started),
          (error: unknown) => {
            logger.warn(`cannot follow the log of pod ${name}: ${(error as Error).message}`);
            return undefined;
          },
        );
      }
    };
    const podWatch = watchUntil<never>({
      connection,
      path: `/api/v1/namespaces/${connection.namespace}/pods`,
      labelSelector: buildSelector(buildId),
      list: async () => {
        const list = await connection.core.listNamespacedPod({
          namespace: connection.namespace,
          labelSelector: buildSelector(buildId),
        });
        return {
          items: list.items as WatchedObject[],
          resourceVersion: list.metadata?.resourceVersion,
        };
      },
      onObject: (_type, object) => {
        onPod(object);
        return undefined;
      },
      signal,
      logger,
    });
    podWatch.catch(() => {});
    const outcome = await watchUntil<JobOutcome>({
      connection,
      path: `/apis/batch/v1/namespaces/${connection.namespace}/jobs`,
      labelSelector: buildSelector(buildId),
      list: async () => {
        const list = await connection.batch.listNamespacedJob({
          namespace: connection.namespace,
          labelSelector: buildSelector(buildId),
        });
        return {
          items: list.items as WatchedObject[],
          resourceVersion: list.metadata?.resourceVersion,
        };
      },
      onObject: (type, object) =>
        object.metadata?.name === jobName ? jobOutcome(type, object) : undefined,
      signal,
      logger,
    });

    const finalPod = await readBuildPod(connection, buildId);
    if (finalPod) onPod(finalPod);
    const tail = await collectLogTail(connection, await followerStart, pod, logger);
    const terminated = executorTermination(finalPod);
    run.onProgress?.({ step: "follow-logs", status: "done" });

    if (outcome.kind !== "complete") {
      const why =
        outcome.kind === "deleted"
          ? "the Job was deleted before it finished"
          : terminated && terminated.exitCode !== 0
            ? `the executor exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ""}`
            : outcome.reason;
      throw new BuildError(
        `build Job ${jobName} failed: ${why}; see the executor output below${tail.length ? `:\n${tail.join("\n")}` : ""}`,
        { outputTail: tail },
      );
    }
    const digest = terminated?.message?.trim() ?? "";
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw new BuildError(
        `build Job ${jobName} completed but the executor wrote no digest to its termination message (got ${JSON.stringify(digest.slice(0, 80))}): use a Kaniko-compatible executor image that supports --digest-file`,
        { outputTail: tail },
      );
    }
    return { digest, jobName, podName: pod.name, buildId, logTail: tail };
  } catch (error) {
    if (controller.signal.aborted && controller.signal.reason instanceof FairingError) {
      throw controller.signal.reason;
    }
    throw error;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    follower?.stop();
    controller.abort();
    run.signal?.removeEventListener("abort", forwardAbort);
    await cleanupBuild(connection, options, jobName, secrets, logger);
  }
}

async function prepareRegistrySecret(
  connection: KubeConnection,
  options: BuildJobOptions,
  buildId: string,
  secrets: string[],
  logger: Logger,
): Promise<string | undefined> {
  if (options.registrySecret) return options.registrySecret;
  if (!options.createRegistrySecret) return undefined;
  const credential = await resolveCredential(
    options.registryHost,
    options.env ? { env: options.env } : {},
  );
  if (!credential) {
    logger.warn(
      `no credentials for ${options.registryHost} in the Docker config: the executor pushes anonymously`,
    );
    return undefined;
  }
  const name = await createBuildSecret(connection, {
    prefix: "fairing-registry-",
    buildId,
    type: "kubernetes.io/dockerconfigjson",
    stringData: { ".dockerconfigjson": dockerConfigJson(options.registryHost, credential) },
  });
  secrets.push(name);
  return name;
}

async function prepareContextSecret(
  connection: KubeConnection,
  options: BuildJobOptions,
  buildId: string,
  secrets: string[],
): Promise<string | undefined> {
  const data = await options.contextSource?.secretData();
  if (!data) return undefined;
  const name = await createBuildSecret(connection, {
    prefix: "fairing-context-",
    buildId,
    stringData: data,
  });
  secrets.push(name);
  return name;
}

/** Creates the Job; a 409 on a generated name is retried, as the API conventions ask. */
async function createJob(
  connection: KubeConnection,
  manifest: Record<string, unknown>,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const job = await connection.batch.createNamespacedJob({
        namespace: connection.namespace,
        body: manifest,
      });
      const name = job.metadata?.name;
      if (!name)
        throw new FairingError(
          `the API server at ${connection.server} returned a Job without a name`,
        );
      return name;
    } catch (error) {
      if (apiStatus(error) === 409 && attempt < 3) continue;
      throw apiError(
        `creating the build Job in namespace ${connection.namespace}`,
        error,
        connection.server,
      );
    }
  }
}

function jobOutcome(type: string, job: WatchedObject): JobOutcome | undefined {
  if (type === "DELETED") return { kind: "deleted" };
  const status = job.status as {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
  for (const condition of status?.conditions ?? []) {
    if (condition.status !== "True") continue;
    if (condition.type === "Complete") return { kind: "complete" };
    if (condition.type === "Failed") {
      const reason = [condition.reason, condition.message].filter(Boolean).join(": ");
      return { kind: "failed", reason: reason || "the Job failed" };
    }
  }
  return undefined;
}

interface ContainerStatus {
  name: string;
  state?: {
    waiting?: { reason?: string; message?: string };
    running?: unknown;
    terminated?: { exitCode: number; reason?: string; message?: string };
  };
}

function executorStatus(object: WatchedObject | undefined): ContainerStatus | undefined {
  const status = object?.status as { containerStatuses?: ContainerStatus[] } | undefined;
  return status?.containerStatuses?.find((c) => c.name === EXECUTOR_CONTAINER);
}

function executorTermination(object: WatchedObject | undefined) {
  return executorStatus(object)?.state?.terminated;
}

function updatePodState(pod: PodState, object: WatchedObject): void {
  pod.name = object.metadata?.name ?? pod.name;
  const state = executorStatus(object)?.state;
  if (state?.running || state?.terminated) {
    pod.started = true;
    return;
  }
  const waiting = state?.waiting;
  if (waiting?.reason && (STUCK_REASONS.has(waiting.reason) || !pod.waiting)) {
    pod.waiting = [waiting.reason, waiting.message].filter(Boolean).join(": ");
  }
  const status = object.status as {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
  const scheduled = status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason) {
    pod.waiting = [scheduled.reason, scheduled.message].filter(Boolean).join(": ");
  }
}

async function readBuildPod(
  connection: KubeConnection,
  buildId: string,
): Promise<WatchedObject | undefined> {
  const list = await connection.core.listNamespacedPod({
    namespace: connection.namespace,
    labelSelector: buildSelector(buildId),
  });
  return list.items[list.items.length - 1] as WatchedObject | undefined;
}

async function collectLogTail(
  connection: KubeConnection,
  follower: LogFollower | undefined,
  pod: PodState,
  logger: Logger,
): Promise<string[]> {
  if (follower) {
    await follower.finished(5000);
    return follower.tail();
  }
  if (!pod.name || !pod.started) return [];
  try {
    const once = await followPodLog(connection, pod.name, EXECUTOR_CONTAINER, {
      logger,
      follow: false,
    });
    await once.finished(5000);
    return once.tail();
  } catch (error) {
    logger.warn(`cannot read the log of pod ${pod.name}: ${(error as Error).message}`);
    return [];
  }
}

async function cleanupBuild(
  connection: KubeConnection,
  options: BuildJobOptions,
  jobName: string | undefined,
  secrets: string[],
  logger: Logger,
): Promise<void> {
  if (jobName && options.cleanup.job) {
    try {
      await connection.batch.deleteNamespacedJob({
        name: jobName,
        namespace: connection.namespace,
        propagationPolicy: "Foreground",
      });
      logger.debug(`deleted Job ${jobName}`);
    } catch (error) {
      if (apiStatus(error) !== 404) {
        logger.warn(
          `cannot delete Job ${jobName}: ${apiError("deleting the Job", error, connection.server).message}`,
        );
      }
    }
  }
  if (!options.cleanup.secrets) return;
  for (const name of secrets) {
    try {
      await deleteSecret(connection, name);
    } catch (error) {
      logger.warn((error as Error).message);
    }
  }
}
