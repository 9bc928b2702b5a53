/**
 * Semantic checks that run after the schema: files exist, references parse, fields that
 * depend on each other agree. Values of the wrong type are skipped here because the schema
 * check already reports them.
 */
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { rm, stat, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, posix, relative, resolve } from "node:path";
import { inferExecutable } from "../context/preprocessor.ts";
import type { ConfigProblem } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { isValidTag, parseReference } from "../registry/reference.ts";
import type { DocumentFields } from "./defaults.ts";
import { nearestPosition, problemAt, type ConfigSource, type DocumentPath } from "./source.ts";
import type { SourcePosition } from "./types.ts";

/** Everything the semantic checks look at. */
export interface CheckInputs {
  /** The document with defaults filled in. */
  fields: DocumentFields;
  /** The document as written, to tell given values from defaults. */
  document: Record<string, unknown>;
  source: ConfigSource;
  /** Absolute directory of the config file. */
  configDir: string;
  /** Absolute project root (`context` resolved against `configDir`). */
  root: string;
}

/** A local OCI image layout named as `oci:PATH[:TAG]`. */
export interface OciLayoutReference {
  /** Layout directory as written (relative paths resolve against the config file's directory). */
  path: string;
  tag?: string;
}

/** Parses `oci:PATH[:TAG]`; the part after the last `:` is a tag when it follows the last `/`. */
export function parseOciLayoutReference(value: string): OciLayoutReference {
  const rest = value.slice("oci:".length);
  const colon = rest.lastIndexOf(":");
  const slash = rest.lastIndexOf("/");
  if (colon > slash && colon > 0 && isValidTag(rest.slice(colon + 1))) {
    return { path: rest.slice(0, colon), tag: rest.slice(colon + 1) };
  }
  return { path: rest };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST_PORT =
  /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:\d{1,5})?$/;

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

function isInside(root: string, path: string): boolean {
  const relativePath = relative(root, path);
  return relativePath === "" || (!relativePath.startsWith("..") && !isAbsolute(relativePath));
}

function normalizeRelative(path: string): string {
  return posix.normalize(path.replace(/\\/g, "/")).replace(/\/+$/, "").replace(/^\.\//, "");
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Collects problems, positioned at a value, at a key, or at an explicit position. */
class Problems {
  readonly list: ConfigProblem[] = [];

  constructor(private readonly source: ConfigSource) {}

  atValue(path: DocumentPath, message: string): void {
    this.list.push(problemAt(nearestPosition(this.source, path), path, message));
  }

  atKey(path: DocumentPath, message: string): void {
    const position = this.source.findKey(path) ?? nearestPosition(this.source, path.slice(0, -1));
    this.list.push(problemAt(position, path, message));
  }

  at(position: SourcePosition, path: DocumentPath, message: string): void {
    this.list.push(problemAt(position, path, message));
  }

  /** Position of the first of `paths` the document contains. */
  firstOf(...paths: DocumentPath[]): SourcePosition {
    for (const path of paths) {
      const position = this.source.findValue(path);
      if (position) return position;
    }
    return nearestPosition(this.source, []);
  }
}

async function checkContext(inputs: CheckInputs, problems: Problems): Promise<boolean> {
  const info = await statOrUndefined(inputs.root);
  const contextGiven = typeof inputs.document.context === "string";
  if (!info) {
    problems.atValue(
      ["context"],
      `directory "${inputs.root}" not found; set \`context\` to the project directory, ` +
        `relative to ${inputs.configDir}`,
    );
    return false;
  }
  if (!info.isDirectory()) {
    problems.atValue(
      ["context"],
      `"${inputs.root}" is not a directory; set \`context\` to the project directory` +
        (contextGiven ? "" : " (the default is the config file's directory)"),
    );
    return false;
  }
  return true;
}

async function checkInputFiles(inputs: CheckInputs, problems: Problems): Promise<void> {
  const { inputFiles } = inputs.fields.preprocessor;
  if (!Array.isArray(inputFiles)) return;
  for (const [index, file] of inputFiles.entries()) {
    if (typeof file !== "string" || file === "") continue;
    const path = ["preprocessor", "inputFiles", index];
    const absolute = resolve(inputs.root, file);
    if (isAbsolute(file) || !isInside(inputs.root, absolute)) {
      problems.atValue(
        path,
        `input file "${file}" is outside the context ${inputs.root}; ` +
          `list files relative to \`context\`, or move \`context\` up`,
      );
      continue;
    }
    const info = await statOrUndefined(absolute);
    if (!info) {
      problems.atValue(
        path,
        `input file "${file}" not found in ${inputs.root}; fix the path (relative to ` +
          `\`context\`) or remove it`,
      );
    } else if (file.endsWith("/") && !info.isDirectory()) {
      problems.atValue(path, `"${file}" ends with "/" but is a file; remove the trailing "/"`);
    }
  }
}

function checkExecutable(inputs: CheckInputs, problems: Problems): void {
  const { executable, inputFiles } = inputs.fields.preprocessor;
  if (typeof executable !== "string" || !Array.isArray(inputFiles)) return;
  const target = normalizeRelative(executable);
  const files = inputFiles.filter((file): file is string => typeof file === "string");
  const covered = files.some((file) => {
    const entry = normalizeRelative(file);
    return entry === target || entry === "." || target.startsWith(`${entry}/`);
  });
  if (covered) return;
  const choices = files.length > 0 ? ` (input files: ${files.join(", ")})` : "";
  problems.atValue(
    ["preprocessor", "executable"],
    `executable "${executable}" is not one of preprocessor.inputFiles${choices}; ` +
      `add it to inputFiles or fix the name`,
  );
}

/**
 * Reports a missing executable that cannot be inferred while the command is the default
 * `[python]`, because the image would run plain `python`. An explicit `command` may run
 * without an executable, and a project Dockerfile sets its own command.
 */
function checkExecutableInferable(inputs: CheckInputs, problems: Problems): void {
  const { executable, inputFiles } = inputs.fields.preprocessor;
  const written = inputs.document.preprocessor;
  const commandGiven = isMapping(written) && written.command !== undefined;
  const builder = inputs.fields.builder;
  const ownDockerfile = builder.kind !== "append" && builder.dockerfilePath !== undefined;
  if (executable !== undefined || commandGiven || ownDockerfile || !Array.isArray(inputFiles)) {
    return;
  }
  const files = [
    ...new Set(
      inputFiles.filter((file): file is string => typeof file === "string" && file !== ""),
    ),
  ].map(normalizeRelative);
  if (inferExecutable(files) !== undefined) return;

  const orCommand = "or set preprocessor.command to the full command";
  if (files.length === 0) {
    problems.atValue(
      ["preprocessor"],
      `no input files and no executable, so the image would run plain \`python\`; add the ` +
        `program to preprocessor.inputFiles and set preprocessor.executable, ${orCommand}`,
    );
    return;
  }
  const python = files.filter(
    (file) => file.endsWith(".py") && posix.basename(file) !== "__init__.py",
  );
  const candidates =
    python.length > 1
      ? `${python.length} candidates (${python.join(", ")})`
      : `${files.length} candidates (${files.join(", ")}), none of them a .py file`;
  problems.atValue(
    ["preprocessor", "inputFiles"],
    `no executable set and none can be inferred from ${candidates}, so the image would run ` +
      `plain \`python\`; set preprocessor.executable to the program to run, ${orCommand}`,
  );
}

async function checkOutputMap(inputs: CheckInputs, problems: Problems): Promise<void> {
  const { outputMap, allowOutsideRoot } = inputs.fields.preprocessor;
  if (outputMap === null || typeof outputMap !== "object" || Array.isArray(outputMap)) return;
  for (const [from, to] of Object.entries(outputMap)) {
    const path = ["preprocessor", "outputMap", from];
    const absolute = resolve(inputs.root, from);
    if (!isInside(inputs.root, absolute) && allowOutsideRoot !== true) {
      problems.atKey(
        path,
        `output-map source "${from}" is outside the context ${inputs.root}; move it into the ` +
          `context or set preprocessor.allowOutsideRoot: true`,
      );
    } else if (!(await statOrUndefined(absolute))) {
      problems.atKey(
        path,
        `output-map source "${from}" not found in ${inputs.root}; fix the path (relative to ` +
          `\`context\`) or remove the entry`,
      );
    }
    if (typeof to !== "string") continue;
    if (!to.startsWith("/") || to.split("/").includes("..")) {
      problems.atValue(
        path,
        `target "${to}" must be an absolute path in the image without "..", e.g. "/app/conf.json"`,
      );
    }
  }
}

function checkPathPrefix(inputs: CheckInputs, problems: Problems): void {
  const prefix = inputs.document.preprocessor as Record<string, unknown> | undefined;
  const value = prefix?.pathPrefix;
  if (typeof value !== "string" || value === "") return;
  if (!value.startsWith("/") || value.split("/").includes("..")) {
    problems.atValue(
      ["preprocessor", "pathPrefix"],
      `"${value}" must be an absolute directory in the image without "..", e.g. "/app/"`,
    );
  }
}

async function checkDockerfile(inputs: CheckInputs, problems: Problems): Promise<void> {
  const builder = inputs.fields.builder;
  if (builder.kind === "append") return;
  const dockerfile = builder.dockerfilePath;
  if (typeof dockerfile !== "string" || dockerfile === "") return;
  const path = ["builder", "dockerfilePath"];
  const absolute = resolve(inputs.root, dockerfile);
  if (!isInside(inputs.root, absolute)) {
    problems.atValue(
      path,
      `Dockerfile "${dockerfile}" is outside the context ${inputs.root}; move it into the context`,
    );
    return;
  }
  const info = await statOrUndefined(absolute);
  if (!info) {
    problems.atValue(
      path,
      `Dockerfile "${dockerfile}" not found in ${inputs.root}; fix the path (relative to ` +
        `\`context\`) or remove dockerfilePath to generate one`,
    );
  } else if (!info.isFile()) {
    problems.atValue(
      path,
      `Dockerfile "${dockerfile}" is not a file; point dockerfilePath at a file`,
    );
  }
}

async function checkBaseImage(inputs: CheckInputs, problems: Problems): Promise<void> {
  const baseImage = inputs.fields.baseImage;
  if (typeof baseImage !== "string" || baseImage === "" || baseImage === "scratch") return;
  const path = ["baseImage"];

  if (baseImage.startsWith("oci:")) {
    const layout = parseOciLayoutReference(baseImage);
    const directory = resolve(inputs.configDir, layout.path);
    const info = await statOrUndefined(directory);
    if (layout.path === "" || !info?.isDirectory()) {
      problems.atValue(
        path,
        `OCI image layout directory "${directory}" not found; write \`oci:PATH[:TAG]\` with ` +
          `PATH relative to ${inputs.configDir}`,
      );
    } else if (!(await statOrUndefined(join(directory, "index.json")))?.isFile()) {
      problems.atValue(
        path,
        `"${directory}" is not an OCI image layout (it has no index.json); point \`oci:\` at ` +
          `a directory written as an OCI image layout`,
      );
    }
    return;
  }

  if (reportCredentials(baseImage, path, problems)) return;
  try {
    parseReference(baseImage);
  } catch (error) {
    problems.atValue(
      path,
      `${errorText(error)}; use an image reference such as ` +
        `"127.0.0.1:5000/base/python:3.12", "scratch" or "oci:PATH[:TAG]"`,
    );
  }
}

function checkImageName(inputs: CheckInputs, problems: Problems): boolean {
  const imageName = inputs.fields.imageName;
  if (typeof imageName !== "string" || imageName === "") return false;
  if (imageName !== imageName.toLowerCase()) {
    problems.atValue(
      ["imageName"],
      `"${imageName}" must be lowercase; use "${imageName.toLowerCase()}"`,
    );
    return false;
  }
  try {
    const reference = parseReference(`localhost/${imageName}`);
    if (reference.tag !== "latest" || reference.digest || imageName.includes(":")) {
      problems.atValue(
        ["imageName"],
        `"${imageName}" must be a repository name without tag or digest; set the tag in \`tag\``,
      );
      return false;
    }
  } catch {
    problems.atValue(
      ["imageName"],
      `"${imageName}" is not a valid repository name; use lowercase letters and digits ` +
        `separated by ".", "_", "-" or "/", e.g. "mnist"`,
    );
    return false;
  }
  return true;
}

function checkRegistry(inputs: CheckInputs, problems: Problems, imageNameValid: boolean): void {
  const registry = inputs.fields.registry;
  if (typeof registry !== "string" || registry === "") return;
  const path = ["registry"];
  if (registry.includes("://")) {
    problems.atValue(
      path,
      `"${registry}" must not include a scheme; write host[:port]/path, and add ` +
        `\`registries: { "HOST:PORT": { insecure: true } }\` for plain HTTP`,
    );
    return;
  }
  if (reportCredentials(registry, path, problems)) return;
  const prefix = registry.replace(/\/+$/, "");
  const lastSlash = prefix.lastIndexOf("/");
  if (prefix.includes("@") || (lastSlash >= 0 && prefix.lastIndexOf(":") > lastSlash)) {
    problems.atValue(
      path,
      `"${registry}" must be a repository prefix without tag or digest, e.g. "127.0.0.1:5000/team"`,
    );
    return;
  }
  if (!imageNameValid) return;
  try {
    parseReference(`${prefix}/${inputs.fields.imageName}`);
  } catch (error) {
    problems.atValue(
      path,
      `${errorText(error)}; set \`registry\` to a repository prefix such as "127.0.0.1:5000/team"`,
    );
  }
}

// `user[:password]@host[:port][/path]`. The password may contain `/` but the host may not.
const CREDENTIALS = /^([^/:@\s]+)(?::([^@\s]*))?@([^/@\s]+)(\/[^@\s]*)?$/;

/**
 * Reports credentials written into a reference (`user:password@host/path`), with the password
 * replaced by `***` and registered as a secret. Returns true when it reported them.
 */
function reportCredentials(value: string, path: DocumentPath, problems: Problems): boolean {
  const match = CREDENTIALS.exec(value);
  const [, user, password, host, rest] = match ?? [];
  if (user === undefined || host === undefined || !HOST_PORT.test(host)) return false;
  if (password) registerSecret(password);
  const userinfo = password === undefined ? `${user}@` : `${user}:***@`;
  problems.atValue(
    path,
    `"${userinfo}${host}${rest ?? ""}" contains credentials, which do not belong in an image ` +
      `reference: write "${host}${rest ?? ""}" and store them in the Docker config with ` +
      `\`docker login ${host}\` (or a credential helper)`,
  );
  return true;
}

function checkTag(inputs: CheckInputs, problems: Problems): void {
  const tag = inputs.fields.tag;
  if (typeof tag !== "string" || tag === "" || tag === "auto" || isValidTag(tag)) return;
  problems.atValue(
    ["tag"],
    `"${tag}" is not a valid tag: it must start with a letter, digit or underscore and ` +
      `contain at most 128 letters, digits, "_", "." or "-"; or use "auto"`,
  );
}

/**
 * Creates and removes an empty file in `directory`. access(W_OK) is not enough: Deno's
 * implementation reads only the mode bits, and root passes it on read-only mounts.
 */
async function canCreateFileIn(directory: string): Promise<boolean> {
  const probe = join(directory, `.fairing-write-check-${randomBytes(6).toString("hex")}`);
  try {
    await writeFile(probe, "", { flag: "wx" });
  } catch {
    return false;
  }
  await rm(probe, { force: true });
  return true;
}

async function checkWritableParent(path: string): Promise<string | undefined> {
  let directory = dirname(path);
  for (;;) {
    const info = await statOrUndefined(directory);
    if (info) {
      if (!info.isDirectory()) return `"${directory}" is a file, so "${path}" cannot be created`;
      return (await canCreateFileIn(directory))
        ? undefined
        : `directory "${directory}" is not writable`;
    }
    const parent = dirname(directory);
    if (parent === directory) return `no existing parent directory of "${path}"`;
    directory = parent;
  }
}

async function checkOutput(inputs: CheckInputs, problems: Problems): Promise<void> {
  const { output, builder } = inputs.fields;
  if (output.kind !== "registry" && builder.kind !== "append") {
    problems.atValue(
      ["output", "kind"],
      `output kind ${output.kind} works only with the append builder (builder.kind is ` +
        `${builder.kind}); remove \`output\` or set builder.kind: append`,
    );
  }
  if (builder.kind === "append" && builder.push === false && output.kind === "registry") {
    problems.atValue(
      ["builder", "push"],
      `push is false but output.kind is registry${inputs.document.output ? "" : " (the default)"}; ` +
        `set output.kind to oci-layout or docker-archive, or push: true`,
    );
  }
  if (output.kind === "registry" || typeof output.path !== "string" || output.path === "") return;

  const absolute = resolve(inputs.configDir, output.path);
  const path = ["output", "path"];
  const info = await statOrUndefined(absolute);
  if (info && output.kind === "docker-archive" && info.isDirectory()) {
    problems.atValue(
      path,
      `"${absolute}" is a directory; docker-archive writes a tar file, so name a file`,
    );
    return;
  }
  if (info && output.kind === "oci-layout" && !info.isDirectory()) {
    problems.atValue(
      path,
      `"${absolute}" is a file; oci-layout writes a directory, so name a directory`,
    );
    return;
  }
  const unwritable = await checkWritableParent(absolute);
  if (unwritable) {
    problems.atValue(path, `cannot write "${absolute}": ${unwritable}; choose another path`);
  }
}

function checkRegistryRequired(inputs: CheckInputs, problems: Problems): void {
  const { builder, output, registry } = inputs.fields;
  if (registry !== undefined) return;
  const pushes = builder.push === true && (builder.kind !== "append" || output.kind === "registry");
  if (!pushes) return;
  const alternative =
    builder.kind === "append"
      ? "or write the image to a file with output.kind oci-layout or docker-archive and push: false"
      : "or set builder.push: false";
  problems.at(
    problems.firstOf(["builder", "push"], ["builder"], ["output"]),
    ["registry"],
    `missing: the image is pushed (builder.push is true), so set \`registry\` to a ` +
      `repository prefix such as "127.0.0.1:5000/team", ${alternative}`,
  );
}

function checkContextSource(inputs: CheckInputs, problems: Problems): void {
  const { builder } = inputs.fields;
  const contextSourceGiven = inputs.document.contextSource !== undefined;
  if (builder.kind === "cluster" && !contextSourceGiven) {
    problems.at(
      problems.firstOf(["builder", "kind"], ["builder"]),
      ["contextSource"],
      `missing: the cluster builder uploads the context to an object store; add ` +
        `\`contextSource: { kind: s3, bucket: BUCKET }\` (kinds gcs, s3, azure, minio)`,
    );
  }
  const contextSource = inputs.fields.contextSource;
  if (
    builder.kind === "cluster" &&
    contextSource?.kind === "s3" &&
    contextSource.bucket === undefined &&
    contextSource.account === undefined
  ) {
    problems.atValue(
      ["contextSource"],
      "an s3 context source needs `bucket`, or `account` to name the default bucket " +
        "fairing-<account>-<region>; add `bucket: BUCKET`",
    );
  }
  if (
    builder.kind === "cluster" &&
    contextSource?.kind === "gcs" &&
    contextSource.bucket === undefined &&
    contextSource.project === undefined
  ) {
    problems.atValue(
      ["contextSource"],
      "a gcs context source needs `bucket`, or `project` to name the default bucket " +
        "fairing-<project>; add `bucket: BUCKET`",
    );
  }
  if (builder.kind !== "cluster" && contextSourceGiven) {
    problems.atValue(
      ["contextSource"],
      `only the cluster builder uses a context source (builder.kind is ${builder.kind}); ` +
        `remove \`contextSource\` or set builder.kind: cluster`,
    );
  }
}

/** Label keys with `=` or white space are split or rejected by `podman build --label` and Kaniko. */
function checkLabelKeys(inputs: CheckInputs, problems: Problems): void {
  const labels = inputs.document.labels;
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) return;
  for (const key of Object.keys(labels)) {
    if (key === "" || /[=\s]/.test(key)) {
      problems.atKey(
        ["labels", key],
        `invalid label key ${JSON.stringify(key)}: keys contain no "=" or white space, e.g. org.example.team`,
      );
    }
  }
}

/** Rejects naming a registry Secret and asking to create one, since the build pod gets one. */
function checkRegistrySecret(inputs: CheckInputs, problems: Problems): void {
  const builder = inputs.fields.builder as {
    kind: string;
    registrySecret?: string;
    createRegistrySecret?: boolean;
  };
  if (builder.kind === "cluster" && builder.registrySecret && builder.createRegistrySecret) {
    problems.atValue(
      ["builder", "createRegistrySecret"],
      `createRegistrySecret is true but registrySecret names the Secret "${builder.registrySecret}" ` +
        "to use; keep one of them",
    );
  }
}

/** Rejects a build target without a project Dockerfile, since the generated one has no stages. */
function checkBuildTarget(inputs: CheckInputs, problems: Problems): void {
  const builder = inputs.fields.builder as {
    kind: string;
    target?: string;
    dockerfilePath?: string;
  };
  if ((builder.kind === "docker" || builder.kind === "podman") && builder.target !== undefined) {
    if (builder.dockerfilePath === undefined) {
      problems.atValue(
        ["builder", "target"],
        `target "${builder.target}" names a stage of a multi-stage Dockerfile, but the generated ` +
          "Dockerfile has one unnamed stage; set builder.dockerfilePath or remove target",
      );
    }
  }
}

function checkRegistryHosts(inputs: CheckInputs, problems: Problems): void {
  const registries = inputs.document.registries;
  if (registries === null || typeof registries !== "object" || Array.isArray(registries)) return;
  for (const host of Object.keys(registries)) {
    const path = ["registries", host];
    if (host.includes("://")) {
      problems.atKey(
        path,
        `"${host}" must be host[:port] without a scheme; use "${host.replace(/^[^:]+:\/\//, "").replace(/\/.*$/, "")}"`,
      );
    } else if (host.includes("/")) {
      problems.atKey(
        path,
        `"${host}" must be host[:port] without a path; use "${host.replace(/\/.*$/, "")}"`,
      );
    } else if (!HOST_PORT.test(host)) {
      problems.atKey(path, `"${host}" is not a valid host[:port], e.g. "127.0.0.1:5000"`);
    }
  }
}

function checkEnvNames(inputs: CheckInputs, problems: Problems): void {
  const env = inputs.document.env;
  if (env === null || typeof env !== "object" || Array.isArray(env)) return;
  for (const name of Object.keys(env)) {
    if (ENV_NAME.test(name)) continue;
    problems.atKey(
      ["env", name],
      `"${name}" is not a valid environment variable name; use letters, digits and "_", ` +
        `not starting with a digit`,
    );
  }
}

function checkClusterImages(inputs: CheckInputs, problems: Problems): void {
  const builder = inputs.fields.builder;
  if (builder.kind !== "cluster") return;
  for (const field of ["executorImage", "cacheRepo"] as const) {
    const value = builder[field];
    if (typeof value !== "string" || value === "") continue;
    try {
      parseReference(value);
    } catch (error) {
      problems.atValue(["builder", field], `${errorText(error)}; fix the image reference`);
    }
  }
}

const BUILDER_KINDS = new Set(["append", "docker", "podman", "cluster"]);
const OUTPUT_KINDS = new Set(["registry", "oci-layout", "docker-archive"]);

// True when `value` is absent or a mapping whose `kind` is one of `kinds`. Checks that combine
// the builder and the output skip a kind the schema rejected, to report one problem, not three.
function hasKnownKind(value: unknown, kinds: Set<string>): boolean {
  if (value === undefined) return true;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const kind = (value as Record<string, unknown>).kind;
  return typeof kind === "string" && kinds.has(kind);
}

/** Runs every semantic check and returns all problems found. */
export async function checkSemantics(inputs: CheckInputs): Promise<ConfigProblem[]> {
  const problems = new Problems(inputs.source);
  const kindsKnown =
    hasKnownKind(inputs.document.builder, BUILDER_KINDS) &&
    hasKnownKind(inputs.document.output, OUTPUT_KINDS);

  if (await checkContext(inputs, problems)) {
    await checkInputFiles(inputs, problems);
    await checkOutputMap(inputs, problems);
    if (kindsKnown) await checkDockerfile(inputs, problems);
  }
  checkExecutable(inputs, problems);
  if (kindsKnown) checkExecutableInferable(inputs, problems);
  checkPathPrefix(inputs, problems);
  await checkBaseImage(inputs, problems);
  const imageNameValid = checkImageName(inputs, problems);
  checkRegistry(inputs, problems, imageNameValid);
  checkTag(inputs, problems);
  if (kindsKnown) {
    await checkOutput(inputs, problems);
    checkRegistryRequired(inputs, problems);
    checkContextSource(inputs, problems);
    checkClusterImages(inputs, problems);
  }
  if (kindsKnown) checkBuildTarget(inputs, problems);
  checkLabelKeys(inputs, problems);
  if (kindsKnown) checkRegistrySecret(inputs, problems);
  checkRegistryHosts(inputs, problems);
  checkEnvNames(inputs, problems);

  return problems.list;
}
