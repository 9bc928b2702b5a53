/**
 * A Kubernetes API server of our own for the cluster builder tests, on 127.0.0.1 over plain
 * HTTP. It follows the wire conventions the builder relies on: object JSON, generateName,
 * uid/resourceVersion, 409 AlreadyExists, label selectors, `watch=true` event streams, pod log
 * `follow=true`, deletion with propagationPolicy and Status objects for errors. A test can drop
 * the watch streams mid-stream or expire their resourceVersion with 410 Gone. A scriptable kubelet creates the Pod of each
 * Job and makes it succeed, fail or stay Pending. Every Job and Secret sent is validated with
 * kubernetes-models (the Kubernetes OpenAPI schema) and checked for unknown fields.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomBytes, randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Job } from "kubernetes-models/batch/v1/Job";
import { Secret } from "kubernetes-models/v1/Secret";
import { findUnknownFields } from "../../src/kube/fields.ts";
import { importKubeClient } from "../../src/kube/client.ts";
import { freePort, makeTempDir, removeDir } from "./common.ts";

/** What the kubelet does with the next build pod. */
export type PodScript =
  | { outcome: "succeed"; logs: string[]; digest: string; delayMs?: number }
  | { outcome: "fail"; logs: string[]; exitCode?: number; delayMs?: number }
  | { outcome: "pending"; reason: string; message: string };

type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    creationTimestamp?: string;
    ownerReferences?: unknown[];
  };
  [field: string]: unknown;
};

type Resource = "jobs" | "pods" | "secrets";

interface WatchEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  resource: Resource;
  object: KubeObject;
}

/** A running test API server and what the builder did to it. */
export interface KubeApiServer {
  url: string;
  /** A kubeconfig file for the server, with `insecure-skip-tls-verify: true`. */
  kubeconfig: string;
  /** Every object the builder created, as sent, by resource. */
  created: { jobs: KubeObject[]; secrets: KubeObject[] };
  /** Deletions as `resource/name?propagationPolicy=...`. */
  deletions: string[];
  /** Validation problems found in objects sent (schema errors and unknown fields). */
  problems: string[];
  /** Current objects, by resource. */
  objects(resource: Resource): KubeObject[];
  /** Sets what the kubelet does with the next pods, in order; the last one repeats. */
  script(...scripts: PodScript[]): void;
  /** Makes the next `count` Job creations fail with 409 AlreadyExists. */
  conflictNextJobs(count: number): void;
  /** Ends every open watch stream without an error, as a dropped connection would. */
  dropWatches(): void;
  /** Makes watches from a resourceVersion before the current one fail with 410 Gone. */
  expireHistory(): void;
  /** Number of watch requests received, by resource. */
  watchCount: Record<Resource, number>;
  stop(): Promise<void>;
}

/** Starts the test API server with an empty store. */
export async function startKubeApi(): Promise<KubeApiServer> {
  const k8s = await importKubeClient();
  const dir = await makeTempDir("kube-api");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const stores: Record<Resource, Map<string, KubeObject>> = {
    jobs: new Map(),
    pods: new Map(),
    secrets: new Map(),
  };
  const events: WatchEvent[] = [];
  const watchers = new Set<{
    resource: Resource;
    ns: string;
    selector: string;
    res: ServerResponse;
  }>();
  const logs = new Map<
    string,
    { lines: string[]; ended: boolean; followers: Set<ServerResponse> }
  >();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let scripts: PodScript[] = [
    { outcome: "succeed", logs: ["done"], digest: `sha256:${"0".repeat(64)}` },
  ];
  let conflicts = 0;
  let revision = 1;
  let compactedBelow = 0;

  const state: KubeApiServer = {
    url,
    kubeconfig: join(dir, "kubeconfig"),
    created: { jobs: [], secrets: [] },
    deletions: [],
    problems: [],
    watchCount: { jobs: 0, pods: 0, secrets: 0 },
    objects: (resource) => [...stores[resource].values()],
    script: (...next) => {
      scripts = next;
    },
    conflictNextJobs: (count) => {
      conflicts = count;
    },
    dropWatches: () => {
      for (const watcher of watchers) watcher.res.end();
      watchers.clear();
    },
    expireHistory: () => {
      compactedBelow = revision;
    },
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      state.dropWatches();
      for (const log of logs.values()) for (const res of log.followers) res.end();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeDir(dir);
    },
  };

  function later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      action();
    }, ms);
    timers.add(timer);
  }

  function record(resource: Resource, type: WatchEvent["type"], object: KubeObject): void {
    revision++;
    object.metadata.resourceVersion = String(revision);
    const event: WatchEvent = { rv: revision, type, resource, object: structuredClone(object) };
    events.push(event);
    for (const watcher of watchers) {
      if (watcher.resource === resource && matches(watcher, object)) {
        watcher.res.write(JSON.stringify({ type, object: event.object }) + "\n");
      }
    }
  }

  function matches(filter: { ns: string; selector: string }, object: KubeObject): boolean {
    if (object.metadata.namespace !== filter.ns) return false;
    const labels = object.metadata.labels ?? {};
    for (const term of filter.selector.split(",").filter(Boolean)) {
      const [key, value] = term.split("=") as [string, string | undefined];
      if (!(key in labels)) return false;
      if (value !== undefined && labels[key] !== value) return false;
    }
    return true;
  }

  function status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message,
        reason,
        code,
      }),
    );
  }

  function json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  function validate(resource: Resource, object: KubeObject): string[] {
    const problems: string[] = [];
    try {
      if (resource === "jobs") new Job(object as never).validate();
      if (resource === "secrets") new Secret(object as never).validate();
    } catch (error) {
      problems.push(`${resource}: ${(error as Error).message}`);
    }
    const model = resource === "jobs" ? "V1Job" : "V1Secret";
    for (const path of findUnknownFields(k8s, model, object))
      problems.push(`${resource}: unknown field ${path}`);
    return problems;
  }

  function create(resource: Resource, ns: string, object: KubeObject): KubeObject {
    const name =
      object.metadata.name ??
      `${object.metadata.generateName ?? ""}${randomBytes(3).toString("hex").slice(0, 5)}`;
    object.metadata = {
      ...object.metadata,
      name,
      namespace: ns,
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString(),
    };
    stores[resource].set(`${ns}/${name}`, object);
    record(resource, "ADDED", object);
    return object;
  }

  function update(resource: Resource, object: KubeObject): void {
    const key = `${object.metadata.namespace}/${object.metadata.name}`;
    if (!stores[resource].has(key)) return;
    record(resource, "MODIFIED", object);
  }

  function remove(resource: Resource, key: string): void {
    const object = stores[resource].get(key);
    if (!object) return;
    stores[resource].delete(key);
    record(resource, "DELETED", object);
  }

  function runKubelet(job: KubeObject): void {
    const script = scripts.length > 1 ? scripts.shift()! : scripts[0]!;
    const ns = job.metadata.namespace!;
    const template = (
      job.spec as {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { name: string }[] };
        };
      }
    ).template;
    const container = template.spec.containers[0]!.name;
    const pod = create("pods", ns, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: `${job.metadata.name}-`,
        labels: { ...template.metadata.labels, "job-name": job.metadata.name! },
        ownerReferences: [{ kind: "Job", name: job.metadata.name, uid: job.metadata.uid }],
      },
      spec: template.spec,
      status: {
        phase: "Pending",
        containerStatuses: [
          { name: container, state: { waiting: { reason: "ContainerCreating" } } },
        ],
      },
    });
    const podKey = `${ns}/${pod.metadata.name}`;
    const log = { lines: [] as string[], ended: false, followers: new Set<ServerResponse>() };
    logs.set(podKey, log);
    const setPod = (phase: string, containerState: unknown) => {
      pod.status = { phase, containerStatuses: [{ name: container, state: containerState }] };
      update("pods", pod);
    };
    const setJob = (conditionType: string, reason?: string, message?: string) => {
      job.status = {
        conditions: [
          {
            type: conditionType,
            status: "True",
            ...(reason ? { reason } : {}),
            ...(message ? { message } : {}),
          },
        ],
      };
      update("jobs", job);
    };

    if (script.outcome === "pending") {
      later(30, () =>
        setPod("Pending", { waiting: { reason: script.reason, message: script.message } }),
      );
      return;
    }
    const step = script.delayMs ?? 20;
    later(step, () => setPod("Running", { running: { startedAt: new Date().toISOString() } }));
    script.logs.forEach((line, index) => {
      later(step * (index + 2), () => {
        log.lines.push(line);
        for (const res of log.followers) res.write(`${line}\n`);
      });
    });
    later(step * (script.logs.length + 3), () => {
      log.ended = true;
      for (const res of log.followers) res.end();
      log.followers.clear();
      if (script.outcome === "succeed") {
        setPod("Succeeded", {
          terminated: { exitCode: 0, reason: "Completed", message: script.digest },
        });
        later(step, () => setJob("Complete"));
      } else {
        const exitCode = script.exitCode ?? 1;
        setPod("Failed", { terminated: { exitCode, reason: "Error" } });
        later(step, () =>
          setJob("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        );
      }
    });
  }

  function serveWatch(
    res: ServerResponse,
    resource: Resource,
    ns: string,
    selector: string,
    since: number,
  ): void {
    state.watchCount[resource]++;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    if (since && since < compactedBelow) {
      const gone = {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Expired",
        code: 410,
        message: `too old resource version: ${since}`,
      };
      res.end(JSON.stringify({ type: "ERROR", object: gone }) + "\n");
      return;
    }
    const filter = { resource, ns, selector, res };
    for (const event of events) {
      if (event.resource === resource && event.rv > since && matches(filter, event.object)) {
        res.write(JSON.stringify({ type: event.type, object: event.object }) + "\n");
      }
    }
    watchers.add(filter);
    res.on("close", () => watchers.delete(filter));
  }

  function serveLog(res: ServerResponse, key: string, follow: boolean): void {
    const log = logs.get(key);
    if (!log) return status(res, 404, "NotFound", `pods "${key}" not found`);
    res.writeHead(200, { "content-type": "text/plain" });
    for (const line of log.lines) res.write(`${line}\n`);
    if (!follow || log.ended) return void res.end();
    log.followers.add(res);
    res.on("close", () => log.followers.delete(res));
  }

  async function readBody(req: IncomingMessage): Promise<KubeObject> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as KubeObject;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? "/", url);
    const match =
      /^\/(?:apis\/batch\/v1|api\/v1)\/namespaces\/([^/]+)\/(jobs|pods|secrets)(?:\/([^/]+))?(\/log)?$/.exec(
        requestUrl.pathname,
      );
    if (!match)
      return status(
        res,
        404,
        "NotFound",
        `the server could not find the requested resource ${requestUrl.pathname}`,
      );
    const [, ns, resourceName, name, logPath] = match as unknown as [
      string,
      string,
      Resource,
      string | undefined,
      string | undefined,
    ];
    const resource = resourceName;
    const query = requestUrl.searchParams;
    const selector = query.get("labelSelector") ?? "";

    if (req.method === "GET" && logPath && name)
      return serveLog(res, `${ns}/${name}`, query.get("follow") === "true");
    if (req.method === "GET" && !name && query.get("watch") === "true") {
      return serveWatch(res, resource, ns, selector, Number(query.get("resourceVersion") ?? 0));
    }
    if (req.method === "GET" && !name) {
      const items = [...stores[resource].values()].filter((object) =>
        matches({ ns, selector }, object),
      );
      return json(res, 200, {
        kind: "List",
        apiVersion: "v1",
        metadata: { resourceVersion: String(revision) },
        items,
      });
    }
    if (req.method === "GET" && name) {
      const object = stores[resource].get(`${ns}/${name}`);
      return object
        ? json(res, 200, object)
        : status(res, 404, "NotFound", `${resource} "${name}" not found`);
    }
    if (req.method === "POST" && !name && resource !== "pods") {
      const object = await readBody(req);
      const problems = validate(resource, object);
      state.problems.push(...problems);
      if (problems.length > 0) return status(res, 422, "Invalid", problems.join("; "));
      if (resource === "jobs" && conflicts > 0) {
        conflicts--;
        return status(
          res,
          409,
          "AlreadyExists",
          `jobs "${object.metadata.generateName}x" already exists`,
        );
      }
      state.created[resource].push(structuredClone(object));
      const stored = create(resource, ns, object);
      if (resource === "jobs") later(10, () => runKubelet(stored));
      return json(res, 201, stored);
    }
    if (req.method === "DELETE" && name) {
      const key = `${ns}/${name}`;
      if (!stores[resource].has(key))
        return status(res, 404, "NotFound", `${resource} "${name}" not found`);
      const policy = query.get("propagationPolicy") ?? "";
      state.deletions.push(`${resource}/${name}${policy ? `?propagationPolicy=${policy}` : ""}`);
      if (resource === "jobs" && policy !== "Orphan") {
        for (const [podKey, pod] of stores.pods) {
          if (pod.metadata.labels?.["job-name"] === name) remove("pods", podKey);
        }
      }
      remove(resource, key);
      return json(res, 200, { kind: "Status", apiVersion: "v1", status: "Success", code: 200 });
    }
    return status(
      res,
      405,
      "MethodNotAllowed",
      `${req.method} is not supported on ${requestUrl.pathname}`,
    );
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) =>
      status(res, 500, "InternalError", (error as Error).message),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));

  await writeFile(
    state.kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: test",
      "  cluster:",
      `    server: ${url}`,
      "    insecure-skip-tls-verify: true",
      "users:",
      "- name: test",
      "  user:",
      "    token: test-token-value",
      "contexts:",
      "- name: test",
      "  context: { cluster: test, user: test, namespace: builds }",
      "current-context: test",
      "",
    ].join("\n"),
  );
  return state;
}
