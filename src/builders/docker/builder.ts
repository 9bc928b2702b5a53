/**
 * The docker builder: sends the context and a Dockerfile to a Docker Engine, tags the result
 * `registry/imageName:tag` and pushes it with the registry credential from the Docker config.
 */
import type { ContextEntry } from "../../context/entries.ts";
import { InputError } from "../../errors.ts";
import { generatePodSpec } from "../../kube/podspec.ts";
import { silentLogger } from "../../log.ts";
import type { BuildResult, PodSpec, RunOptions, StepTiming } from "../../plan/types.ts";
import { resolveCredential } from "../../registry/credentials.ts";
import { formatReference, parseReference, type ImageReference } from "../../registry/reference.ts";
import {
  connectDocker,
  describeConnection,
  resolveDockerConnection,
  type DockerConnection,
} from "./connection.ts";
import { createDockerBuildContext } from "./context.ts";
import { buildOnEngine, pushFromEngine } from "./engine.ts";
import {
  prepareClassBuild,
  fullImageName,
  imageLabels,
  type DaemonBuilderOptions,
} from "./settings.ts";

/** Options of `DockerBuilder`. */
export interface DockerBuilderOptions extends DaemonBuilderOptions {
  /** Engine address; overrides DOCKER_HOST, e.g. `unix:///var/run/docker.sock`. */
  dockerHost?: string;
}

/** Everything one engine build and push needs; the planner and `DockerBuilder` both fill it. */
export interface DockerBuildRequest extends RunOptions {
  connection: DockerConnection;
  entries: readonly ContextEntry[];
  contextDigest: string;
  dockerfile: string;
  /** Target reference with its tag. */
  target: ImageReference;
  push: boolean;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  platform?: string;
  buildTarget?: string;
  network?: string;
}

/**
 * Builds the image on the engine, and pushes it when `push` is set. Returns the reference with
 * the registry's manifest digest; without a push, `digest` is the engine's image id (the
 * config digest), because no manifest exists yet.
 */
export async function runDockerBuild(request: DockerBuildRequest): Promise<BuildResult> {
  const logger = request.logger ?? silentLogger;
  const sinks = { logger, onProgress: request.onProgress, signal: request.signal };
  const reference = formatReference(request.target);
  const tag = request.target.tag;
  if (!tag) throw new InputError(`image reference ${reference} has no tag; give it one`);
  const engine = describeConnection(request.connection);
  const docker = await connectDocker(request.connection);
  const steps: StepTiming[] = [];

  const context = await createDockerBuildContext(request.entries, request.dockerfile);
  let imageId: string;
  try {
    const started = Date.now();
    logger.info(`building ${reference} on ${engine}`);
    ({ imageId } = await buildOnEngine(docker, {
      ...sinks,
      context,
      reference,
      engine,
      buildArgs: request.buildArgs ?? {},
      labels: imageLabels(request.labels, request.contextDigest),
      ...(request.platform ? { platform: request.platform } : {}),
      ...(request.buildTarget ? { target: request.buildTarget } : {}),
      ...(request.network ? { network: request.network } : {}),
    }));
    steps.push({ name: "docker-build", milliseconds: Date.now() - started });
  } finally {
    await context.dispose();
  }

  if (!request.push) {
    logger.info(`built ${reference} (${imageId}); not pushed`);
    return {
      // An image id is no manifest digest, so `reference@id` could not be pulled or run.
      image: reference,
      digest: imageId,
      tag,
      upToDate: false,
      destination: reference,
      steps,
    };
  }

  const started = Date.now();
  const name = `${request.target.registry}/${request.target.repository}`;
  const credential = await resolveCredential(request.target.registry, {
    repository: request.target.repository,
  });
  logger.info(
    `pushing ${reference}${credential?.source ? ` with credentials from ${credential.source}` : ""}`,
  );
  const { digest } = await pushFromEngine(docker, {
    ...sinks,
    name,
    tag,
    credential,
    registry: request.target.registry,
    engine,
  });
  steps.push({ name: "docker-push", milliseconds: Date.now() - started });
  logger.info(`pushed ${reference}@${digest}`);
  return {
    image: `${reference}@${digest}`,
    digest,
    tag,
    upToDate: false,
    destination: reference,
    steps,
  };
}

/**
 * The docker builder's class API, for code ported from the original `DockerBuilder`:
 * `build()`, `fullImageName(tag)` and `generatePodSpec()`.
 */
export class DockerBuilder {
  readonly options: DockerBuilderOptions;
  /** Tag of the last build, set by `build()`. */
  imageTag: string | undefined;
  /** Result of the last build. */
  result: BuildResult | undefined;

  /** Creates a builder; nothing connects to the engine before `build()`. */
  constructor(options: DockerBuilderOptions) {
    this.options = options;
  }

  /** Returns `registry/imageName:tag`. */
  fullImageName(tag: string): string {
    return fullImageName(this.options, tag);
  }

  /**
   * Collects the context, builds the image and pushes it unless `push` is false. The tag is
   * `options.tag`, else one derived from the context digest, the Dockerfile and the settings.
   */
  async build(options: RunOptions & { tag?: string } = {}): Promise<BuildResult> {
    const logger = options.logger ?? this.options.logger ?? silentLogger;
    const {
      entries,
      contextDigest: digest,
      dockerfile,
      tag,
    } = await prepareClassBuild(this.options, options.tag);
    const target = parseReference(this.fullImageName(tag));

    this.result = await runDockerBuild({
      ...options,
      logger,
      connection: resolveDockerConnection(this.options.dockerHost),
      entries,
      contextDigest: digest,
      dockerfile,
      target,
      push: this.options.push ?? true,
      buildArgs: this.options.buildArgs ?? {},
      labels: this.options.labels ?? {},
      ...(this.options.platform ? { platform: this.options.platform } : {}),
      ...(this.options.target ? { buildTarget: this.options.target } : {}),
      ...(this.options.network ? { network: this.options.network } : {}),
    });
    this.imageTag = tag;
    return this.result;
  }

  /** Returns the pod spec that runs the last built image; throws `InputError` before `build()`. */
  generatePodSpec(): PodSpec {
    if (!this.result) {
      throw new InputError("DockerBuilder.generatePodSpec() needs an image: call build() first");
    }
    return generatePodSpec(this.result.image, this.options.preprocessor, this.options.env ?? {});
  }
}
