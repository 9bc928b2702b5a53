/**
 * The context source contract of the cluster builder: where the context archive goes so that
 * the in-cluster executor can read it, and what the build pod needs to read it (environment,
 * volumes and the Secret with the storage credentials).
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { ContextSourceConfig } from "../../config/types.ts";
import { InputError } from "../../errors.ts";
import type { ProgressEvent } from "../../log.ts";

/** Context archive to upload: a file path, a Node readable or a web stream of the gzip tar. */
export type ContextArchive = string | Readable | ReadableStream<Uint8Array>;

/** Options of `ContextSource.prepare()`. */
export interface PrepareOptions {
  /** Digest of the compressed context archive, `sha256:<hex>`; it names the object. */
  digest: string;
  /** Size of the archive in bytes, for progress and the multipart decision. */
  size?: number;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

/** Location `prepare()` uploaded the context to. */
export interface PreparedContext {
  /** URL the executor reads the context from (`s3://`, `gs://` or an Azure blob URL). */
  url: string;
  bucket: string;
  key: string;
  /** False when an object with this key already existed and nothing was sent. */
  uploaded: boolean;
}

/** Kubernetes pod spec fields a context source adds to; the rest passes through unchanged. */
export interface BuildPodSpec {
  containers: BuildContainer[];
  volumes?: Record<string, unknown>[];
  [field: string]: unknown;
}

/** Container fields a context source adds to. */
export interface BuildContainer {
  name: string;
  image?: string;
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: Record<string, unknown>[];
  [field: string]: unknown;
}

/** A container environment variable: a plain value or a reference to a Secret key. */
export type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } };

/** Options of `ContextSource.podSpec()`. */
export interface PodSpecOptions {
  /** Name of the Secret the builder created from `secretData()`, when it returned data. */
  secretName?: string;
}

/**
 * Storage the cluster builder uploads the context to. `prepare()` uploads the archive (once per
 * digest), `secretData()` lists the credentials the executor needs, which the builder stores in a
 * Secret it creates and deletes, and `podSpec()` points the executor container at them.
 */
export interface ContextSource {
  readonly kind: ContextSourceConfig["kind"];
  /** Uploads the archive unless an object with its digest exists; returns the URL for the executor. */
  prepare(archive: ContextArchive, options: PrepareOptions): Promise<PreparedContext>;
  /** Returns the Secret string data the executor needs, or undefined when it needs none. */
  secretData(): Promise<Record<string, string> | undefined>;
  /** Adds the environment, volumes and mounts the executor needs to read the context. */
  podSpec(spec: BuildPodSpec, options?: PodSpecOptions): BuildPodSpec;
  /** Deletes the uploaded context, when this source uploaded one. */
  cleanup(): Promise<void>;
  /** Describes where the context goes (store, bucket, endpoint) for plans, never credentials. */
  describe?(): string;
}

/** Returns the object key of a context archive: `<prefix>context-<sha256 hex>.tar.gz`. */
export function contextObjectKey(prefix: string, digest: string): string {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match) {
    throw new InputError(
      `invalid context archive digest "${digest}": expected sha256:<64 hex digits> from the context archive`,
    );
  }
  return `${prefix}context-${match[1]}.tar.gz`;
}

/**
 * Imports an optional SDK package, or throws an InputError naming the package to install
 * for which context source kind.
 */
export async function importSdk<T>(specifier: string, kind: string): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing =
      code === "ERR_MODULE_NOT_FOUND" ||
      code === "MODULE_NOT_FOUND" ||
      /Cannot find (module|package)|not found/i.test(String((error as Error).message));
    if (!missing) throw error;
    throw new InputError(
      `package ${specifier} is not installed: install ${specifier} to use contextSource.kind ${kind}`,
      { cause: error },
    );
  }
}

/** Converts any `ContextArchive` into a Node readable, opening files lazily. */
export function toNodeReadable(archive: ContextArchive): Readable {
  if (typeof archive === "string") return createReadStream(archive);
  if (archive instanceof Readable) return archive;
  return Readable.fromWeb(archive as import("node:stream/web").ReadableStream<Uint8Array>);
}

/** Wraps `source` so every chunk reports the bytes sent so far to `onProgress`. */
export function countBytes(
  source: Readable,
  step: string,
  total: number | undefined,
  onProgress: ((event: ProgressEvent) => void) | undefined,
): Readable {
  if (!onProgress) return source;
  let bytes = 0;
  source.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    onProgress({ step, status: "progress", bytes, ...(total === undefined ? {} : { total }) });
  });
  return source;
}

/** Adds `env` to the container named `container` (default: the first), replacing same names. */
export function addEnv(spec: BuildPodSpec, env: EnvVar[], container?: string): BuildPodSpec {
  return updateContainer(spec, container, (c) => {
    const names = new Set(env.map((variable) => variable.name));
    return { ...c, env: [...(c.env ?? []).filter((v) => !names.has(v.name)), ...env] };
  });
}

/** Adds a Secret volume and its read-only mount at `mountPath` to the executor container. */
export function addSecretVolume(
  spec: BuildPodSpec,
  volumeName: string,
  secretName: string,
  mountPath: string,
  container?: string,
): BuildPodSpec {
  const volumes = [
    ...(spec.volumes ?? []).filter((v) => v.name !== volumeName),
    { name: volumeName, secret: { secretName } },
  ];
  const withMount = updateContainer(spec, container, (c) => ({
    ...c,
    volumeMounts: [
      ...(c.volumeMounts ?? []).filter((m) => m.name !== volumeName),
      { name: volumeName, mountPath, readOnly: true },
    ],
  }));
  return { ...withMount, volumes };
}

/** Returns a plain environment variable and one read from key `key` of Secret `secretName`. */
export function secretEnv(name: string, secretName: string, key: string = name): EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

function updateContainer(
  spec: BuildPodSpec,
  name: string | undefined,
  update: (container: BuildContainer) => BuildContainer,
): BuildPodSpec {
  const index = name === undefined ? 0 : spec.containers.findIndex((c) => c.name === name);
  const target = spec.containers[index];
  if (!target) {
    throw new InputError(
      `build pod spec has no container ${name ? `named "${name}"` : "at all"}: keep the executor container in podSpec`,
    );
  }
  const containers = spec.containers.slice();
  containers[index] = update(target);
  return { ...spec, containers };
}
