/**
 * Loading a config: parse the YAML with positions, validate it against the JSON Schema, run
 * the semantic checks, and fill in defaults. Every problem is reported at once as one
 * ConfigError whose lines read `fairing.yaml:12:5: builder.push: must be true or false`.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { redact } from "../log.ts";
import { checkSemantics, parseOciLayoutReference } from "./checks.ts";
import { applyDefaults, type DocumentFields } from "./defaults.ts";
import { validateAgainstSchema } from "./schema.ts";
import { findSecrets } from "./secrets.ts";
import { objectSource, parseYamlSource, problemAt, type ConfigSource } from "./source.ts";
import type { Config, Locate } from "./types.ts";

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** Environment for defaults such as the S3 region (AWS_REGION); default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** Options of `configFromObject`. */
export interface ConfigFromObjectOptions extends LoadConfigOptions {
  /** Directory that relative paths (`context`, `output.path`, `oci:` base images) resolve against. */
  root: string;
  /** Name problems print for the config; default `<inline>`. */
  file?: string;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function shapeProblem(source: ConfigSource): ConfigProblem | undefined {
  const start = { file: source.file, line: 1, column: 1 };
  const position = source.findValue([]) ?? start;
  const hint = "start the file with `apiVersion: fairing/v1` followed by the other settings";
  if (source.value === undefined || source.value === null) {
    return problemAt(position, [], `the config is empty; ${hint}`);
  }
  if (Array.isArray(source.value)) {
    return problemAt(position, [], `the config must be a mapping of settings, not a list; ${hint}`);
  }
  if (!isMapping(source.value)) {
    const got = JSON.stringify(source.value);
    return problemAt(
      position,
      [],
      `the config must be a mapping of settings (got ${got}); ${hint}`,
    );
  }
  return undefined;
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? homedir() + path.slice(1) : path;
}

// Turns the paths the file resolves against its own directory into absolute paths.
function resolvePaths(fields: DocumentFields, configDir: string): void {
  if (fields.output.kind !== "registry") {
    fields.output.path = resolve(configDir, fields.output.path);
  }
  if (fields.baseImage.startsWith("oci:")) {
    const layout = parseOciLayoutReference(fields.baseImage);
    const absolute = resolve(configDir, layout.path);
    fields.baseImage = `oci:${absolute}${layout.tag === undefined ? "" : `:${layout.tag}`}`;
  }
  if (fields.builder.kind === "cluster" && fields.builder.kubeconfig !== undefined) {
    fields.builder.kubeconfig = resolve(configDir, expandHome(fields.builder.kubeconfig));
  }
  if (fields.registry !== undefined) fields.registry = fields.registry.replace(/\/+$/, "");
}

function locator(source: ConfigSource): Locate {
  return (path) => source.findValue(path) ?? { file: source.file, line: 1, column: 1 };
}

async function buildConfig(
  source: ConfigSource,
  configDir: string,
  absoluteFile: string,
  env: Record<string, string | undefined>,
): Promise<Config> {
  const problems: ConfigProblem[] = [...source.problems];
  const shape = shapeProblem(source);
  if (shape) problems.push(shape);
  if (problems.length > 0) throw new ConfigError(problems);

  const document = source.value as Record<string, unknown>;
  const secretProblems = findSecrets(source);
  const schemaProblems = await validateAgainstSchema(source);
  // A credential under an unknown key is reported as a credential only.
  const secretPaths = new Set(secretProblems.map((problem) => problem.path));
  problems.push(...secretProblems);
  problems.push(
    ...schemaProblems.filter(
      (problem) => !(secretPaths.has(problem.path) && problem.message.startsWith("unknown key")),
    ),
  );

  const fields = applyDefaults(document, env);
  const context = typeof document.context === "string" ? document.context : ".";
  const root = resolve(configDir, context);
  problems.push(...(await checkSemantics({ fields, document, source, configDir, root })));

  if (problems.length > 0) {
    const inFileOrder = [...problems].sort(
      (left, right) => left.line - right.line || left.column - right.column,
    );
    throw new ConfigError(
      inFileOrder.map((problem) => ({ ...problem, message: redact(problem.message) })),
    );
  }
  resolvePaths(fields, configDir);
  return { ...fields, file: absoluteFile, root, locate: locator(source) };
}

/**
 * Loads, validates and fills in the config file at `path`. Throws ConfigError listing every
 * problem with its file:line:column; a missing or unreadable file is a ConfigError at 1:1.
 */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<Config> {
  const absoluteFile = resolve(path);
  let text: string;
  try {
    text = await readFile(absoluteFile, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "file not found; create it or pass the path of an existing fairing.yaml"
        : code === "EISDIR"
          ? "is a directory; pass the path of the fairing.yaml inside it"
          : `cannot be read (${code ?? String(error)}); check its permissions`;
    throw new ConfigError([{ file: path, line: 1, column: 1, path: "", message: reason }]);
  }
  const source = parseYamlSource(text, path);
  return await buildConfig(source, dirname(absoluteFile), absoluteFile, options.env ?? process.env);
}

/**
 * Validates and fills in a config given as an object (e.g. built in code). Relative paths
 * resolve against `options.root`; problems name `options.file` (default `<inline>`) at 1:1.
 */
export async function configFromObject(
  document: unknown,
  options: ConfigFromObjectOptions,
): Promise<Config> {
  const file = options.file ?? "<inline>";
  const source = objectSource(document, file);
  const configDir = resolve(options.root);
  return await buildConfig(source, configDir, file, options.env ?? process.env);
}
