/** The config file: loading, validation and the typed Config it produces. */
export { configFromObject, loadConfig } from "./load.ts";
export type { ConfigFromObjectOptions, LoadConfigOptions } from "./load.ts";
export { DEFAULT_EXECUTOR_IMAGE } from "./defaults.ts";
export { parseOciLayoutReference } from "./checks.ts";
export type { OciLayoutReference } from "./checks.ts";
export { SCHEMA_URL } from "./schema.ts";
export type * from "./types.ts";
