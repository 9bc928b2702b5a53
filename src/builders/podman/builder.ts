/**
 * The podman builder: `podman build` with the context tar on stdin and the Dockerfile beside
 * it, then `podman push` with a temporary auth file, so no password is ever on a command line.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { RegistrySettings } from "../../config/types.ts";
import type { ContextEntry } from "../../context/entries.ts";
import { tarStream } from "../../context/tar.ts";
import { BuildError, InputError } from "../../errors.ts";
import { generatePodSpec } from "../../kube/podspec.ts";
import { silentLogger } from "../../log.ts";
import type { BuildResult, PodSpec, RunOptions, StepTiming } from "../../plan/types.ts";
import { resolveCredential, type Credential } from "../../registry/credentials.ts";
import {
  formatReference,
  isLoopbackRegistry,
  parseReference,
  type ImageReference,
} from "../../registry/reference.ts";
import {
  prepareClassBuild,
  fullImageName,
  imageLabels,
  type DaemonBuilderOptions,
} from "../docker/settings.ts";
import { runPodman } from "./cli.ts";
import { checkLabels } from "../labels.ts";

/** Options of `PodmanBuilder`. */
export interface PodmanBuilderOptions extends DaemonBuilderOptions {
  /** Verify TLS when pushing; default true, false for loopback and `insecure` registries. */
  tlsVerify?: boolean;
  /** Global podman flags before the subcommand, e.g. `["--root", "/tmp/storage"]`. */
  globalArgs?: string[];
}

/** Everything one podman build and push needs; the planner and `PodmanBuilder` both fill it. */
export interface PodmanBuildRequest extends RunOptions {
  globalArgs: readonly string[];
  entries: readonly ContextEntry[];
  contextDigest: string;
  dockerfile: string;
  /** Target reference with its tag. */
  target: ImageReference;
  push: boolean;
  tlsVerify?: boolean;
  registries?: Record<string, RegistrySettings>;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  platform?: string;
  buildTarget?: string;
  /** `--network` of the build; podman's default when unset. */
  network?: string;
  /** Base image reference; its registry decides `--tls-verify` of the build's pull. */
  baseImage?: string;
}

/**
 * Returns whether podman verifies TLS for `registry` (push, and the build's base image pull): the explicit setting, else false
 * for loopback registries and registries marked `insecure`, else true.
 */
export function pushTlsVerify(
  registry: string,
  tlsVerify: boolean | undefined,
  registries: Record<string, RegistrySettings> = {},
): boolean {
  if (tlsVerify !== undefined) return tlsVerify;
  return !(isLoopbackRegistry(registry) || registries[registry]?.insecure === true);
}

/**
 * Builds the image with podman and pushes it when `push` is set. Returns the reference with
 * the manifest digest podman wrote; without a push, `digest` is the image id (the config
 * digest). The temp folder with the Dockerfile, id, digest and auth files is always removed.
 */
export async function runPodmanBuild(request: PodmanBuildRequest): Promise<BuildResult> {
  const logger = request.logger ?? silentLogger;
  const reference = formatReference(request.target);
  const tag = request.target.tag;
  if (!tag) throw new InputError(`image reference ${reference} has no tag; give it one`);
  const common = {
    globalArgs: request.globalArgs,
    logger,
    ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  };
  const steps: StepTiming[] = [];
  const dir = await mkdtemp(join(tmpdir(), "fairing-podman-"));
  try {
    const dockerfilePath = join(dir, "Dockerfile");
    const idFile = join(dir, "image-id");
    await writeFile(dockerfilePath, request.dockerfile);

    const args = ["build", "-f", dockerfilePath, "-t", reference, "--iidfile", idFile];
    if (request.network) args.push(`--network=${request.network}`);
    const baseRegistry = registryOf(request.baseImage);
    if (baseRegistry) {
      const verify = pushTlsVerify(baseRegistry, request.tlsVerify, request.registries);
      args.push(`--tls-verify=${verify}`);
    }
    if (request.platform) args.push(`--platform=${request.platform}`);
    if (request.buildTarget) args.push(`--target=${request.buildTarget}`);
    for (const [name, value] of Object.entries(request.buildArgs ?? {})) {
      args.push("--build-arg", `${name}=${value}`);
    }
    for (const [name, value] of Object.entries(
      imageLabels(request.labels, request.contextDigest),
    )) {
      args.push("--label", `${name}=${value}`);
    }
    args.push("-");

    let started = Date.now();
    logger.info(`building ${reference} with podman`);
    request.onProgress?.({
      step: "podman-build",
      status: "start",
      message: `building ${reference}`,
    });
    await runPodman({
      ...common,
      args,
      input: Readable.from(tarStream(request.entries)),
      step: "podman-build",
      description: `podman build of ${reference}`,
    });
    const imageId = normalizeId((await readFile(idFile, "utf8")).trim());
    request.onProgress?.({ step: "podman-build", status: "done", message: imageId });
    steps.push({ name: "podman-build", milliseconds: Date.now() - started });

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

    started = Date.now();
    const digestFile = join(dir, "digest");
    const verify = pushTlsVerify(request.target.registry, request.tlsVerify, request.registries);
    const pushArgs = ["push", `--tls-verify=${verify}`, "--digestfile", digestFile];
    const credential = await resolveCredential(request.target.registry, {
      repository: request.target.repository,
    });
    if (credential) {
      const authFile = join(dir, "auth.json");
      await writeFile(authFile, authFileText(request.target.registry, credential), { mode: 0o600 });
      pushArgs.push("--authfile", authFile);
    }
    pushArgs.push(reference);

    logger.info(
      `pushing ${reference}${credential?.source ? ` with credentials from ${credential.source}` : ""}`,
    );
    request.onProgress?.({ step: "podman-push", status: "start", message: `pushing ${reference}` });
    await runPodman({
      ...common,
      args: pushArgs,
      step: "podman-push",
      description: `podman push of ${reference}`,
    });
    const digest = (await readFile(digestFile, "utf8")).trim();
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) {
      throw new BuildError(
        `podman push of ${reference} wrote no valid manifest digest (got ${JSON.stringify(digest)})`,
      );
    }
    request.onProgress?.({ step: "podman-push", status: "done", message: digest });
    steps.push({ name: "podman-push", milliseconds: Date.now() - started });
    logger.info(`pushed ${reference}@${digest}`);
    return {
      image: `${reference}@${digest}`,
      digest,
      tag,
      upToDate: false,
      destination: reference,
      steps,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Returns the image id of `reference` in podman's storage, or undefined when it has none.
 * Throws `StaleImageError` when the image lacks one of `labels` or has another value for it.
 */
export async function findPodmanImage(
  globalArgs: readonly string[],
  reference: string,
  labels: Record<string, string> = {},
): Promise<string | undefined> {
  const { execa } = await import("execa");
  const result = await execa(
    "podman",
    [...globalArgs, "image", "inspect", "--format", "{{json .}}", reference],
    {
      reject: false,
      stdin: "ignore",
    },
  );
  if (result.exitCode !== 0) return undefined;
  // `podman image inspect` prints a JSON array with one object per reference.
  const parsed = JSON.parse(String(result.stdout)) as unknown;
  const info = (Array.isArray(parsed) ? parsed[0] : parsed) as {
    Id: string;
    Labels?: Record<string, string> | null;
    Config?: { Labels?: Record<string, string> | null };
  };
  checkLabels(info.Labels ?? info.Config?.Labels, labels);
  return normalizeId(info.Id);
}

/**
 * The podman builder's class API, matching `DockerBuilder`: `build()`, `fullImageName(tag)`
 * and `generatePodSpec()`.
 */
export class PodmanBuilder {
  readonly options: PodmanBuilderOptions;
  /** Tag of the last build, set by `build()`. */
  imageTag: string | undefined;
  /** Result of the last build. */
  result: BuildResult | undefined;

  /** Creates a builder; podman runs only in `build()`. */
  constructor(options: PodmanBuilderOptions) {
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

    this.result = await runPodmanBuild({
      ...options,
      logger,
      globalArgs: this.options.globalArgs ?? [],
      entries,
      contextDigest: digest,
      dockerfile,
      target: parseReference(this.fullImageName(tag)),
      push: this.options.push ?? true,
      ...(this.options.tlsVerify !== undefined ? { tlsVerify: this.options.tlsVerify } : {}),
      registries: this.options.registries ?? {},
      buildArgs: this.options.buildArgs ?? {},
      labels: this.options.labels ?? {},
      ...(this.options.platform ? { platform: this.options.platform } : {}),
      ...(this.options.target ? { buildTarget: this.options.target } : {}),
      ...(this.options.network ? { network: this.options.network } : {}),
      baseImage: this.options.baseImage,
    });
    this.imageTag = tag;
    return this.result;
  }

  /** Returns the pod spec that runs the last built image; throws `InputError` before `build()`. */
  generatePodSpec(): PodSpec {
    if (!this.result) {
      throw new InputError("PodmanBuilder.generatePodSpec() needs an image: call build() first");
    }
    return generatePodSpec(this.result.image, this.options.preprocessor, this.options.env ?? {});
  }
}

/** Writes a containers-auth.json document holding `credential` for `registry`. */
function authFileText(registry: string, credential: Credential): string {
  if (credential.username !== undefined && credential.password !== undefined) {
    const auth = Buffer.from(`${credential.username}:${credential.password}`).toString("base64");
    return JSON.stringify({ auths: { [registry]: { auth } } });
  }
  if (credential.identityToken) {
    return JSON.stringify({ auths: { [registry]: { identitytoken: credential.identityToken } } });
  }
  throw new InputError(
    `the credential for ${registry}${credential.source ? ` from ${credential.source}` : ""} is a bare ` +
      `registry token, which podman cannot use; store a username and password for it instead`,
  );
}

/** Returns the registry host of an image reference, or undefined for `scratch` and invalid values. */
function registryOf(image: string | undefined): string | undefined {
  if (!image || image === "scratch") return undefined;
  try {
    return parseReference(image).registry;
  } catch {
    return undefined;
  }
}

function normalizeId(id: string): string {
  return id.startsWith("sha256:") ? id : `sha256:${id}`;
}
