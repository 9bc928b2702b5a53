/**
 * fairing: build container images for code in a repository from a declarative config, on
 * Node, Deno and Bun. The config path (`loadConfig`, `plan`, `apply`) and the class API of the
 * original Kubeflow Fairing (`BasePreProcessor`, `AppendBuilder`, ...) share one implementation.
 */
export { loadConfig, configFromObject } from "./config/load.ts";
export type * from "./config/types.ts";
export { plan, apply, planToJSON } from "./plan/plan.ts";
export type * from "./plan/types.ts";
export { BasePreProcessor } from "./context/preprocessor.ts";
export type { PreProcessorOptions } from "./context/preprocessor.ts";
export type { ContextEntry } from "./context/entries.ts";
export { writeArchive } from "./context/archive.ts";
export type { ArchiveResult } from "./context/archive.ts";
export { AppendBuilder } from "./builders/append/builder.ts";
export type { AppendBuilderOptions } from "./builders/append/builder.ts";
export { generatePodSpec } from "./kube/podspec.ts";
export { parseReference, formatReference } from "./registry/reference.ts";
export type { ImageReference } from "./registry/reference.ts";
export { RegistryClient } from "./registry/client.ts";
export { resolveCredential } from "./registry/credentials.ts";
export {
  FairingError,
  InputError,
  ConfigError,
  RegistryError,
  BuildError,
  formatProblem,
} from "./errors.ts";
export type { ConfigProblem } from "./errors.ts";
export { createLogger, silentLogger, registerSecret, redact } from "./log.ts";
export type { Logger, LogLevel, ProgressEvent } from "./log.ts";
