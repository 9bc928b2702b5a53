import type { Config, OutputConfig, RegistrySettings } from "../../config/types.ts";
import type { BasePreProcessor } from "../../context/preprocessor.ts";
import { FairingError } from "../../errors.ts";
import { generatePodSpec } from "../../kube/podspec.ts";
import type { BuildResult, PodSpec, RunOptions } from "../../plan/types.ts";

/** Options of `AppendBuilder`, named as in the original Python API. */
export interface AppendBuilderOptions {
  /** Repository prefix, e.g. `127.0.0.1:5000/team`; required for the registry output. */
  registry?: string;
  /** Default `fairing-job`. */
  imageName?: string;
  /** Image reference, `scratch` or `oci:PATH[:TAG]`. */
  baseImage: string;
  /** Default true. */
  push?: boolean;
  preprocessor: BasePreProcessor;
  /** Default `{ kind: "registry" }`; relative paths resolve against the preprocessor's root. */
  output?: OutputConfig;
  /** Default `auto`: derived from the context, base image and image settings. */
  tag?: string;
  platform?: string;
  registries?: Record<string, Partial<RegistrySettings>>;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  user?: string;
  /** gzip level of the context layer, 0-9; default 6. */
  compressionLevel?: number;
}

/**
 * Builds an image without a daemon by appending the preprocessor's context as a layer on top of
 * the base image: the class API of the original Fairing, over the same planner as `fairing apply`.
 */
export class AppendBuilder {
  readonly options: AppendBuilderOptions;
  private built: BuildResult | undefined;

  constructor(options: AppendBuilderOptions) {
    this.options = options;
  }

  /** Returns the config this builder runs, validated like a config file. */
  async config(): Promise<Config> {
    const { configFromObject } = await import("../../config/load.ts");
    const options = this.options;
    const pre = options.preprocessor;
    const document: Record<string, unknown> = {
      apiVersion: "fairing/v1",
      context: pre.root,
      baseImage: options.baseImage,
      ...(options.registry !== undefined ? { registry: options.registry } : {}),
      ...(options.imageName !== undefined ? { imageName: options.imageName } : {}),
      ...(options.tag !== undefined ? { tag: options.tag } : {}),
      ...(options.platform !== undefined ? { platform: options.platform } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      preprocessor: {
        inputFiles: pre.inputFiles,
        ...(pre.executable !== undefined ? { executable: pre.executable } : {}),
        command: pre.command,
        pathPrefix: pre.pathPrefix,
        outputMap: pre.outputMap,
        ignore: pre.ignore,
        allowOutsideRoot: pre.allowOutsideRoot,
      },
      builder: {
        kind: "append",
        ...(options.push !== undefined ? { push: options.push } : {}),
        ...(options.compressionLevel !== undefined
          ? { compressionLevel: options.compressionLevel }
          : {}),
      },
      ...(options.output !== undefined ? { output: options.output } : {}),
      ...(options.registries !== undefined ? { registries: options.registries } : {}),
    };
    return await configFromObject(document, { root: pre.root });
  }

  /** Builds and writes the image; resolves with the reference, digest and tag. */
  async build(options: RunOptions = {}): Promise<BuildResult> {
    const { plan, apply } = await import("../../plan/plan.ts");
    this.built = await apply(await plan(await this.config(), options), options);
    return this.built;
  }

  /** Returns `registry/imageName:tag`. */
  fullImageName(tag: string): string {
    const name = this.options.imageName ?? "fairing-job";
    return this.options.registry
      ? `${this.options.registry.replace(/\/+$/, "")}/${name}:${tag}`
      : `${name}:${tag}`;
  }

  /** Returns a V1PodSpec-shaped object running the built image; call `build()` first. */
  generatePodSpec(): PodSpec {
    if (!this.built) {
      throw new FairingError("generatePodSpec() needs the built image: call build() first");
    }
    return generatePodSpec(this.built.image, this.options.preprocessor, this.options.env);
  }
}
