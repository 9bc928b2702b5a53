/**
 * Build, push and inspect through the Docker Engine API with dockerode. Build and push output
 * is streamed line by line to the logger and to progress events; an error message in either
 * stream becomes a `BuildError` with the engine's own text and the last lines of output.
 */
import type Dockerode from "dockerode";
import { BuildError } from "../../errors.ts";
import { redact, type Logger, type ProgressEvent } from "../../log.ts";
import type { Credential } from "../../registry/credentials.ts";
import { CONTEXT_DOCKERFILE, type DockerBuildContext } from "./context.ts";
import { messageError, OutputTail, readMessages, type DockerMessage } from "./messages.ts";
import { checkLabels } from "../labels.ts";

/** Destinations of build output and progress. */
export interface OutputSinks {
  logger: Logger;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

/** One `docker build` request. */
export interface EngineBuildRequest extends OutputSinks {
  context: DockerBuildContext;
  /** Full reference the image is tagged with, e.g. `127.0.0.1:5000/team/mnist:3f2a`. */
  reference: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  /** `os/arch[/variant]` of the image to build. */
  platform?: string;
  /** Stage of a multi-stage Dockerfile to stop at. */
  target?: string;
  /** Network mode of RUN instructions, e.g. `none`. */
  network?: string;
  /** Text naming the engine in messages, e.g. `unix:///var/run/docker.sock`. */
  engine: string;
}

/**
 * Sends the build context to `POST /build` with the classic builder, streams its output and
 * returns the built image id. Rejects with a `BuildError` when the engine reports an error.
 */
export async function buildOnEngine(
  docker: Dockerode,
  request: EngineBuildRequest,
): Promise<{ imageId: string }> {
  const step = "docker-build";
  const options: Record<string, unknown> = {
    t: request.reference,
    dockerfile: CONTEXT_DOCKERFILE,
    rm: true,
    forcerm: true,
    version: "1",
  };
  if (request.buildArgs && Object.keys(request.buildArgs).length > 0) {
    options.buildargs = request.buildArgs;
  }
  if (request.labels && Object.keys(request.labels).length > 0) options.labels = request.labels;
  if (request.platform) options.platform = request.platform;
  if (request.target) options.target = request.target;
  if (request.network) options.networkmode = request.network;
  if (request.signal) options.abortSignal = request.signal;

  request.onProgress?.({ step, status: "start", message: `building ${request.reference}` });
  const tail = new OutputTail();
  let response: NodeJS.ReadableStream;
  try {
    response = await docker.buildImage(request.context.stream(), options);
  } catch (error) {
    throw engineFailure("docker build", request, error, tail);
  }

  let imageId: string | undefined;
  let failure: string | undefined;
  try {
    for await (const message of readMessages(response as AsyncIterable<Uint8Array>)) {
      forwardOutput(step, message, tail, request);
      if (message.aux?.ID) imageId = message.aux.ID;
      const text = messageError(message);
      if (text) failure = text;
    }
  } catch (error) {
    throw engineFailure("docker build", request, error, tail);
  }

  if (failure !== undefined) {
    throw new BuildError(
      redact(`docker build of ${request.reference} failed on ${request.engine}: ${failure}`),
      { outputTail: tail.lines().map(redact) },
    );
  }
  if (!imageId) {
    // Engines before API 1.30 print "Successfully built <id>" instead of an `aux` message.
    const built = tail.lines().map((line) => /^Successfully built ([0-9a-f]+)$/.exec(line)?.[1]);
    imageId = built.filter((id) => id !== undefined).pop();
  }
  if (!imageId) {
    throw new BuildError(
      `docker build of ${request.reference} on ${request.engine} ended without an image id; ` +
        `check the engine's log`,
      { outputTail: tail.lines().map(redact) },
    );
  }
  request.onProgress?.({ step, status: "done", message: imageId });
  return { imageId };
}

/** One `docker push` request. */
export interface EnginePushRequest extends OutputSinks {
  /** `registry/repository`, without tag. */
  name: string;
  tag: string;
  /** Credential for the registry; anonymous when null or undefined. */
  credential?: Credential | null;
  /** Registry host the credential is for, sent as `serveraddress`. */
  registry: string;
  engine: string;
}

/**
 * Pushes `name:tag` from the engine and returns the manifest digest the registry stored.
 * The credential travels only in the `X-Registry-Auth` header. Rejects with a `BuildError`
 * when the engine reports an error or no digest.
 */
export async function pushFromEngine(
  docker: Dockerode,
  request: EnginePushRequest,
): Promise<{ digest: string }> {
  const step = "docker-push";
  const reference = `${request.name}:${request.tag}`;
  const options: Record<string, unknown> = {
    tag: request.tag,
    authconfig: authConfig(request.credential, request.registry),
  };
  if (request.signal) options.abortSignal = request.signal;

  request.onProgress?.({ step, status: "start", message: `pushing ${reference}` });
  const tail = new OutputTail();
  const labelled = { ...request, reference };
  let response: NodeJS.ReadableStream;
  try {
    response = await docker.getImage(request.name).push(options);
  } catch (error) {
    throw engineFailure("docker push", labelled, error, tail);
  }

  let digest: string | undefined;
  let failure: string | undefined;
  try {
    for await (const message of readMessages(response as AsyncIterable<Uint8Array>)) {
      forwardOutput(step, message, tail, request);
      if (message.aux?.Digest) digest = message.aux.Digest;
      const fromStatus = /digest: (sha256:[a-f0-9]{64})/.exec(message.status ?? "")?.[1];
      if (!digest && fromStatus) digest = fromStatus;
      const text = messageError(message);
      if (text) failure = text;
    }
  } catch (error) {
    throw engineFailure("docker push", labelled, error, tail);
  }

  if (failure !== undefined) {
    throw new BuildError(
      redact(`docker push of ${reference} failed on ${request.engine}: ${failure}`),
      { outputTail: tail.lines().map(redact) },
    );
  }
  if (!digest) {
    throw new BuildError(
      `docker push of ${reference} on ${request.engine} reported no manifest digest`,
      { outputTail: tail.lines().map(redact) },
    );
  }
  request.onProgress?.({ step, status: "done", message: digest });
  return { digest };
}

/**
 * Returns the id of the image `reference` in the engine, or undefined when it has none. Throws
 * `StaleImageError` when the image lacks one of `labels` or has another value for it.
 */
export async function findEngineImage(
  docker: Dockerode,
  reference: string,
  labels: Record<string, string> = {},
): Promise<string | undefined> {
  try {
    const info = await docker.getImage(reference).inspect();
    checkLabels(info.Config?.Labels, labels);
    return info.Id;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

/** Builds the `X-Registry-Auth` object dockerode encodes; an empty object means anonymous. */
function authConfig(credential: Credential | null | undefined, registry: string): object {
  if (!credential) return {};
  if (credential.registryToken) return { registrytoken: credential.registryToken };
  const config: Record<string, string> = { serveraddress: registry };
  if (credential.identityToken) config.identitytoken = credential.identityToken;
  if (credential.username !== undefined) config.username = credential.username;
  if (credential.password !== undefined) config.password = credential.password;
  return config;
}

/** Logs a message's output lines and reports them as progress; keeps them in `tail`. */
function forwardOutput(
  step: string,
  message: DockerMessage,
  tail: OutputTail,
  sinks: OutputSinks,
): void {
  if (message.stream) {
    for (const line of tail.write(message.stream)) {
      sinks.logger.info(line);
      sinks.onProgress?.({ step, status: "progress", message: redact(line) });
    }
    return;
  }
  const error = messageError(message);
  if (error) {
    tail.write(`${error}\n`);
    return;
  }
  if (message.status) {
    const line = message.id ? `${message.id}: ${message.status}` : message.status;
    const detail = message.progressDetail;
    if (detail?.current !== undefined) {
      const event: ProgressEvent = { step, status: "progress", message: redact(line) };
      event.bytes = detail.current;
      if (detail.total !== undefined) event.total = detail.total;
      sinks.onProgress?.(event);
      return;
    }
    tail.write(`${line}\n`);
    sinks.logger.info(line);
    sinks.onProgress?.({ step, status: "progress", message: redact(line) });
  }
}

/** Wraps a failed request (no socket, HTTP error, aborted) in a `BuildError` with the engine's text. */
function engineFailure(
  operation: string,
  request: { reference: string; engine: string },
  error: unknown,
  tail: OutputTail,
): BuildError {
  const failure = error as {
    json?: { message?: string };
    statusCode?: number;
    code?: string;
    message?: string;
    name?: string;
  };
  if (failure.name === "AbortError") {
    return new BuildError(`${operation} of ${request.reference} was aborted`, {
      outputTail: tail.lines().map(redact),
      cause: error,
    });
  }
  const engineText = failure.json?.message ?? failure.message ?? String(error);
  const unreachable = ["ENOENT", "ECONNREFUSED", "EACCES", "ENOTFOUND", "ECONNRESET"].includes(
    failure.code ?? "",
  );
  const hint = unreachable
    ? "; start the Docker Engine, or set DOCKER_HOST or builder.dockerHost to where it listens"
    : "";
  const status = failure.statusCode ? ` (HTTP ${failure.statusCode})` : "";
  return new BuildError(
    redact(
      `${operation} of ${request.reference} failed on ${request.engine}${status}: ${engineText.trim()}${hint}`,
    ),
    { outputTail: tail.lines().map(redact), cause: error },
  );
}
