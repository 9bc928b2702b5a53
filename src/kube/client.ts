/**
 * Connects to a Kubernetes API server with @kubernetes/client-node, imported on first use so
 * that commands which never build in a cluster do not load it. The kubeconfig comes from an
 * explicit path, KUBECONFIG, ~/.kube/config or the in-cluster service account, in that order.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { BatchV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { FairingError, InputError } from "../errors.ts";

/** The @kubernetes/client-node module. */
export type KubeModule = typeof import("@kubernetes/client-node");

/** Options of `connectKube`. */
export interface KubeConnectOptions {
  /** Path of a kubeconfig file; default KUBECONFIG, then ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** kubeconfig context name; default the file's current context. */
  context?: string;
  /** Namespace; default the in-cluster service account's, then the context's, then `default`. */
  namespace?: string;
  /** Environment to read KUBECONFIG and HOME from; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** A connection to one API server and the namespace builds run in. */
export interface KubeConnection {
  k8s: KubeModule;
  config: KubeConfig;
  namespace: string;
  core: CoreV1Api;
  batch: BatchV1Api;
  /** API server URL, for messages. */
  server: string;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Imports @kubernetes/client-node, or throws an InputError naming the package to install. */
export async function importKubeClient(): Promise<KubeModule> {
  try {
    return await import("@kubernetes/client-node");
  } catch (error) {
    throw new InputError(
      `cannot load @kubernetes/client-node (${(error as Error).message}): install @kubernetes/client-node@1.4 to use builder.kind cluster`,
      { cause: error },
    );
  }
}

/** Loads the kubeconfig, picks the context and namespace, and creates the API clients. */
export async function connectKube(options: KubeConnectOptions = {}): Promise<KubeConnection> {
  const env = options.env ?? process.env;
  const k8s = await importKubeClient();
  const config = new k8s.KubeConfig();
  let inCluster = false;

  const file = kubeconfigPath(options.kubeconfig, env);
  if (file) {
    try {
      config.loadFromFile(file);
    } catch (error) {
      throw new InputError(
        `cannot load kubeconfig ${file}: ${(error as Error).message}; fix the file or set builder.kubeconfig`,
        { cause: error },
      );
    }
  } else if (existsSync(join(SERVICE_ACCOUNT_DIR, "token"))) {
    config.loadFromCluster();
    inCluster = true;
  } else {
    throw new InputError(
      "no kubeconfig found: set builder.kubeconfig or KUBECONFIG, create ~/.kube/config, or run inside a cluster",
    );
  }

  if (options.context) {
    if (!config.getContextObject(options.context)) {
      const known = config.getContexts().map((context) => context.name);
      throw new InputError(
        `kubeconfig context "${options.context}" not found in ${file ?? "the in-cluster config"}: use one of ${known.join(", ") || "(none)"}`,
      );
    }
    config.setCurrentContext(options.context);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw new InputError(
      `kubeconfig ${file ?? "(in-cluster)"} has no current cluster: set current-context or builder.context`,
    );
  }

  const namespace = options.namespace ?? defaultNamespace(config, inCluster);
  return {
    k8s,
    config,
    namespace,
    core: config.makeApiClient(k8s.CoreV1Api),
    batch: config.makeApiClient(k8s.BatchV1Api),
    server: cluster.server,
  };
}

/** Returns the kubeconfig file to load: the explicit path, KUBECONFIG's first entry, or ~/.kube/config. */
export function kubeconfigPath(
  explicit: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  if (explicit) return explicit;
  const fromEnv = env.KUBECONFIG?.split(process.platform === "win32" ? ";" : ":").find(Boolean);
  if (fromEnv) return fromEnv;
  const home = env.HOME || env.USERPROFILE || homedir();
  const file = join(home, ".kube", "config");
  return existsSync(file) ? file : undefined;
}

function defaultNamespace(config: KubeConfig, inCluster: boolean): string {
  if (inCluster) {
    try {
      const namespace = readFileSync(join(SERVICE_ACCOUNT_DIR, "namespace"), "utf8").trim();
      if (namespace) return namespace;
    } catch {
      // No namespace file: fall through to the context's namespace.
    }
  }
  const context = config.getContextObject(config.getCurrentContext());
  return context?.namespace || "default";
}

/** Returns the HTTP status of a failed @kubernetes/client-node call, when it has one. */
export function apiStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown; statusCode?: unknown }).code;
  if (typeof code === "number") return code;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  return typeof statusCode === "number" ? statusCode : undefined;
}

/** Returns the `message` of the Status object in a failed call's body, or the error message. */
export function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  let status: unknown = body;
  if (typeof body === "string") {
    try {
      status = JSON.parse(body);
    } catch {
      return body || (error as Error).message;
    }
  }
  const message = (status as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : (error as Error).message;
}

/** Wraps a failed API call in a FairingError naming the operation, the object and the server. */
export function apiError(operation: string, error: unknown, server: string): FairingError {
  if (error instanceof FairingError) return error;
  const status = apiStatus(error);
  let hint = "check the cluster and the kubeconfig";
  if (status === 401) hint = "the kubeconfig credentials were rejected: refresh them";
  if (status === 403)
    hint =
      "the kubeconfig user lacks permission: grant it access to Jobs, Pods and Secrets in the namespace";
  if (status === 404) hint = "check that the namespace exists";
  return new FairingError(
    `${operation} failed at ${server}${status ? ` with HTTP ${status}` : ""}: ${apiMessage(error)}; ${hint}`,
    { cause: error },
  );
}
