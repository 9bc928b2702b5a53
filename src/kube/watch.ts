/**
 * A watch on a collection that survives dropped connections: it lists once, then watches from
 * the list's resourceVersion, resumes from the last resourceVersion it saw when the stream
 * ends, and lists again when the server returns 410 Gone (that version has been compacted).
 */
import { FairingError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { apiStatus, type KubeConnection } from "./client.ts";

/** An object of the watched collection. */
export interface WatchedObject {
  metadata?: { name?: string; resourceVersion?: string };
  [field: string]: unknown;
}

/** Options of `watchUntil`. */
export interface WatchOptions<R> {
  connection: KubeConnection;
  /** Collection path, e.g. `/apis/batch/v1/namespaces/ns/jobs`. */
  path: string;
  labelSelector: string;
  /** Lists the collection; returns its items and the list's resourceVersion. */
  list(): Promise<{ items: WatchedObject[]; resourceVersion: string | undefined }>;
  /** Called for every object seen; a value other than undefined ends the watch with it. */
  onObject(type: "ADDED" | "MODIFIED" | "DELETED", object: WatchedObject): R | undefined;
  signal: AbortSignal;
  logger?: Logger;
  /** Failed reconnects in a row before giving up. Default 5. */
  maxRetries?: number;
}

type StreamEnd = { kind: "result" } | { kind: "gone" } | { kind: "dropped"; error?: unknown };

/** Watches until `onObject` returns a value or `signal` aborts. */
export async function watchUntil<R>(options: WatchOptions<R>): Promise<R> {
  const logger = options.logger ?? silentLogger;
  const { k8s, config } = options.connection;
  const watch = new k8s.Watch(config);
  const maxRetries = options.maxRetries ?? 5;
  let resourceVersion: string | undefined;
  let failures = 0;
  let result: { value: R } | undefined;

  const deliver = (type: "ADDED" | "MODIFIED" | "DELETED", object: WatchedObject): boolean => {
    const value = options.onObject(type, object);
    if (value === undefined) return false;
    result = { value };
    return true;
  };

  for (;;) {
    options.signal.throwIfAborted();
    if (resourceVersion === undefined) {
      const listed = await options.list();
      for (const item of listed.items) {
        if (deliver("ADDED", item)) return result!.value;
      }
      resourceVersion = listed.resourceVersion;
    }

    const end = await new Promise<StreamEnd>((resolve) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (value: StreamEnd) => {
        if (settled) return;
        settled = true;
        options.signal.removeEventListener("abort", onAbort);
        controller?.abort();
        resolve(value);
      };
      const onAbort = () => finish({ kind: "dropped", error: options.signal.reason });
      options.signal.addEventListener("abort", onAbort, { once: true });

      const query: Record<string, string | boolean> = {
        labelSelector: options.labelSelector,
        allowWatchBookmarks: true,
      };
      if (resourceVersion) query.resourceVersion = resourceVersion;
      watch
        .watch(
          options.path,
          query,
          (type: string, object: WatchedObject & { code?: number }) => {
            if (settled) return;
            if (type === "ERROR") {
              finish(object.code === 410 ? { kind: "gone" } : { kind: "dropped", error: object });
              return;
            }
            const version = object.metadata?.resourceVersion;
            if (version) resourceVersion = version;
            if (type === "BOOKMARK") return;
            failures = 0;
            if (deliver(type as "ADDED" | "MODIFIED" | "DELETED", object))
              finish({ kind: "result" });
          },
          (error: unknown) => finish(error ? { kind: "dropped", error } : { kind: "dropped" }),
        )
        .then(
          (started: AbortController) => {
            controller = started;
            if (settled) started.abort();
          },
          (error: unknown) => finish({ kind: "dropped", error }),
        );
    });

    if (end.kind === "result") return result!.value;
    options.signal.throwIfAborted();
    if (end.kind === "gone" || apiStatus(end.error) === 410) {
      logger.debug(`watch of ${options.path} expired (410 Gone): listing again`);
      resourceVersion = undefined;
      continue;
    }
    if (end.error) {
      failures++;
      if (failures > maxRetries) {
        throw new FairingError(
          `watch of ${options.path} at ${options.connection.server} failed ${failures} times in a row: ${describe(end.error)}; check the connection to the cluster`,
          { cause: end.error },
        );
      }
      logger.debug(`watch of ${options.path} failed (${describe(end.error)}): retrying`);
      await delay(Math.min(200 * 2 ** failures, 5000), options.signal);
    } else {
      logger.debug(
        `watch of ${options.path} ended: resuming from resourceVersion ${resourceVersion}`,
      );
      await delay(100, options.signal);
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  const message = (error as { message?: unknown }).message;
  return typeof message === "string" ? message : JSON.stringify(error);
}

async function delay(ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
