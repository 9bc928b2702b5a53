/**
 * The typed config that `loadConfig()` returns: the YAML document after schema validation,
 * semantic checks and defaults. `schemas/fairing.schema.json` is the source of truth for the
 * file format; these types mirror it with every default filled in.
 */

/** Position of a value in the config file, for error messages. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** Looks up the position of a value by its path in the document, e.g. `["builder", "push"]`. */
export type Locate = (path: readonly (string | number)[]) => SourcePosition;

export interface PreprocessorConfig {
  /** Files and directories to put in the context, relative to `Config.root`. */
  inputFiles: string[];
  /** The program the command runs, relative to `Config.root`; inferred when not given. */
  executable?: string;
  /** Default `["python"]`. */
  command: string[];
  /** Directory in the image the input files are copied under; always ends with `/`. Default `/app/`. */
  pathPrefix: string;
  /** Extra files: local path (relative to `Config.root`) to absolute path in the image. */
  outputMap: Record<string, string>;
  /** `.dockerignore`-syntax patterns, added after those of `<root>/.dockerignore`. */
  ignore: string[];
  /** Allows output-map sources and symlinks that resolve outside `Config.root`. Default false. */
  allowOutsideRoot: boolean;
}

export interface AppendBuilderConfig {
  kind: "append";
  /** Default true. False requires a non-registry `output`. */
  push: boolean;
  /** gzip level of the context layer, 0-9. Default 6. */
  compressionLevel: number;
}

interface DaemonBuilderCommon {
  push: boolean;
  /** A Dockerfile of the project, relative to `Config.root`; generated when absent. */
  dockerfilePath?: string;
  buildArgs: Record<string, string>;
  /** Build target stage of a multi-stage Dockerfile. */
  target?: string;
  /** Network mode for RUN instructions, e.g. `none` or `host`. */
  network?: string;
  /** Install `requirements.txt` before copying the rest of the context (generated Dockerfile). Default true. */
  installRequirementsBeforeCopy: boolean;
}

export interface DockerBuilderConfig extends DaemonBuilderCommon {
  kind: "docker";
  /** Overrides DOCKER_HOST, e.g. `unix:///var/run/docker.sock` or `tcp://host:2376`. */
  dockerHost?: string;
}

export interface PodmanBuilderConfig extends DaemonBuilderCommon {
  kind: "podman";
  /** Verify TLS when pushing; default true, false for loopback and `insecure` registries. */
  tlsVerify?: boolean;
  /** Extra global podman flags, e.g. `["--root", "/tmp/storage"]`, passed before the subcommand. */
  globalArgs: string[];
}

export interface ClusterBuilderConfig {
  kind: "cluster";
  push: boolean;
  dockerfilePath?: string;
  buildArgs: Record<string, string>;
  /** Namespace of the build Job; default from the in-cluster service account or the kubeconfig context. */
  namespace?: string;
  /** Kaniko-compatible executor image. */
  executorImage: string;
  cache: boolean;
  cacheRepo?: string;
  /** Seconds to wait for the build to finish before failing. */
  timeoutSeconds: number;
  /** Seconds a build pod may stay unscheduled or waiting (e.g. image pull errors) before failing. */
  startTimeoutSeconds: number;
  cleanup: { job: boolean; secrets: boolean; context: boolean };
  /** Name of an existing `kubernetes.io/dockerconfigjson` Secret with push credentials. */
  registrySecret?: string;
  /** Create the registry Secret from the local Docker config for the target registry. */
  createRegistrySecret: boolean;
  /** Pod spec fields merged into the build pod (volumes, nodeSelector, resources, serviceAccountName...). */
  podSpec: Record<string, unknown>;
  /** Path of a kubeconfig file; default KUBECONFIG, then ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** kubeconfig context name. */
  context?: string;
}

export type BuilderConfig =
  AppendBuilderConfig | DockerBuilderConfig | PodmanBuilderConfig | ClusterBuilderConfig;

export type OutputConfig =
  | { kind: "registry" }
  | { kind: "oci-layout"; path: string }
  | { kind: "docker-archive"; path: string };

export interface RegistrySettings {
  /** Plain HTTP or unverified TLS to this registry. Loopback registries may use plain HTTP without it. */
  insecure: boolean;
}

export type ContextSourceConfig =
  | {
      kind: "gcs";
      bucket?: string;
      project?: string;
      prefix: string;
      endpoint?: string;
      /** Copy the service account key into the build pod's Secret. Default true. */
      podCredentials?: boolean;
    }
  | {
      kind: "s3";
      bucket?: string;
      /** AWS account id; names the default bucket `fairing-<account>-<region>`. */
      account?: string;
      region: string;
      prefix: string;
      /** Default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL. */
      endpoint?: string;
      /** Copy the upload credentials into the build pod's Secret. Default true. */
      podCredentials?: boolean;
    }
  | {
      kind: "azure";
      account: string;
      container: string;
      prefix: string;
      endpoint?: string;
    }
  | {
      kind: "minio";
      endpoint: string;
      bucket: string;
      region: string;
      prefix: string;
      /** Copy the upload credentials into the build pod's Secret. Default true. */
      podCredentials?: boolean;
    };

export interface Config {
  apiVersion: "fairing/v1";
  /** Absolute path of the config file, or `<inline>` for a config given as an object. */
  file: string;
  /** Absolute project root: the `context` field resolved against the config file's directory. */
  root: string;
  /** Any image reference, `scratch`, or `oci:PATH[:TAG]` for a local OCI image layout. */
  baseImage: string;
  /** Repository prefix the image is pushed under, e.g. `127.0.0.1:5000/team`. */
  registry?: string;
  /** Default `fairing-job`. */
  imageName: string;
  /** `auto` (default) derives the tag from the context, base image and image settings. */
  tag: string;
  /** Platform picked from a base image index, `os/arch[/variant]`. Default `linux/amd64`. */
  platform: string;
  /** Environment added to the image config; FAIRING_RUNTIME=1 is always set. */
  env: Record<string, string>;
  /** Labels added to the image config. */
  labels: Record<string, string>;
  /** User the image runs as, when set. */
  user?: string;
  preprocessor: PreprocessorConfig;
  builder: BuilderConfig;
  output: OutputConfig;
  registries: Record<string, RegistrySettings>;
  contextSource?: ContextSourceConfig;
  /** Position of any value of the document; `{file, 1, 1}` for values it does not contain. */
  locate: Locate;
}
