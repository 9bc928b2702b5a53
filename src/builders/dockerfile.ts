/**
 * Dockerfile generation for the docker, podman and cluster builders.
 *
 * The build context these Dockerfiles expect is fairing's context archive, whose paths are
 * already image paths relative to `/` (a file the image contains as `/app/train.py` is
 * `app/train.py` in the archive). The generated Dockerfile therefore copies the context root to
 * `/`, which lays the files out exactly as the append builder's context layer does.
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InputError } from "../errors.ts";

/** Options of `renderDockerfile` and `writeDockerfile`; names follow the original `write_dockerfile`. */
export interface DockerfileOptions {
  /** Base image reference for `FROM`; `scratch` for none. */
  baseImage: string;
  /** Command the image runs, written as `CMD` in exec (JSON) form; no `CMD` when absent or empty. */
  dockerCommand?: string[];
  /** File the Dockerfile is written to by `writeDockerfile`; default a new file in the temp folder. */
  destination?: string;
  /** Working directory and the folder the input files live under in the image. Default `/app/`. */
  pathPrefix?: string;
  /** Install `requirements.txt` (at `<pathPrefix>requirements.txt`) before the rest is copied. Default false. */
  installReqsBeforeCopy?: boolean;
  /**
   * Installs `requirements.txt` after copying the context, for projects that keep
   * `installReqsBeforeCopy` off. Ignored when `installReqsBeforeCopy` is set. Default false.
   */
  installReqsAfterCopy?: boolean;
  /** Directory put in front of `PATH`, e.g. the folder of a virtual environment's executables. */
  executablePathPrefix?: string;
  /** User the image runs as; root when unset. A non-root user gets `pip install --user`. */
  user?: string;
  /** Environment added to the image; `FAIRING_RUNTIME=1` is always set. */
  env?: Record<string, string>;
}

/** Default folder the input files live under in the image. */
export const DEFAULT_PATH_PREFIX = "/app/";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Renders the Dockerfile text for `options`: `FROM`, `WORKDIR`, `ENV`, an optional `USER`,
 * the requirements install when requested, `COPY . /` and `CMD`. Throws `InputError` when a
 * value contains a line break or NUL (it would start a new instruction), or an `env` name is
 * not a valid variable name.
 */
export function renderDockerfile(options: DockerfileOptions): string {
  const baseImage = checkValue("baseImage", options.baseImage);
  if (baseImage.trim() === "" || /\s/.test(baseImage)) {
    throw new InputError(
      `invalid baseImage ${JSON.stringify(baseImage)}: a Dockerfile needs an image reference without spaces, or "scratch"`,
    );
  }
  const pathPrefix = normalizePrefix(
    checkValue("pathPrefix", options.pathPrefix ?? DEFAULT_PATH_PREFIX),
  );
  const lines = [`FROM ${baseImage}`, `WORKDIR ${escapeWord(pathPrefix)}`, "ENV FAIRING_RUNTIME=1"];

  const env = options.env ?? {};
  for (const name of Object.keys(env).sort()) {
    if (!ENV_NAME.test(name)) {
      throw new InputError(
        `invalid env name ${JSON.stringify(name)}: use letters, digits and underscores, not starting with a digit`,
      );
    }
    if (name === "FAIRING_RUNTIME") continue;
    lines.push(`ENV ${name}=${quoteEnvValue(checkValue(`env.${name}`, env[name] ?? ""))}`);
  }

  if (options.executablePathPrefix !== undefined) {
    const prefix = checkValue("executablePathPrefix", options.executablePathPrefix);
    lines.push(`ENV PATH=${quoteEnvValue(prefix, { keepTrailing: ":$PATH" })}`);
  }

  const user = options.user === undefined ? undefined : checkValue("user", options.user).trim();
  if (user) lines.push(`USER ${escapeWord(user)}`);

  const userFlag = user && !isRootUser(user) ? " --user" : "";
  const pipInstall = `RUN pip install --no-cache-dir${userFlag} -r requirements.txt`;
  if (options.installReqsBeforeCopy) {
    const inImage = `${pathPrefix}requirements.txt`;
    lines.push(`COPY ${jsonArray([inImage.slice(1), inImage])}`);
    lines.push(pipInstall);
  }

  lines.push("COPY . /");
  if (options.installReqsAfterCopy && !options.installReqsBeforeCopy) lines.push(pipInstall);

  const command = (options.dockerCommand ?? []).map((part, i) =>
    checkValue(`dockerCommand[${i}]`, part),
  );
  if (command.length > 0) lines.push(`CMD ${JSON.stringify(command)}`);
  return lines.join("\n") + "\n";
}

/**
 * Writes the Dockerfile for `options` to `options.destination`, or to a new file in the temp
 * folder, and returns its path. The caller removes a temp file it no longer needs.
 */
export async function writeDockerfile(options: DockerfileOptions): Promise<string> {
  const text = renderDockerfile(options);
  const destination = options.destination ?? join(tmpdir(), `fairing-dockerfile-${randomUUID()}`);
  await writeFile(destination, text, { mode: 0o644 });
  return destination;
}

/** Returns true for the user names and ids that mean root (`root`, `0`, `root:root`, `0:0`). */
export function isRootUser(user: string | undefined): boolean {
  if (user === undefined || user.trim() === "") return true;
  const name = user.trim().split(":")[0];
  return name === "root" || name === "0";
}

function checkValue(field: string, value: string): string {
  if (typeof value !== "string") {
    throw new InputError(`invalid ${field}: expected a string, got ${typeof value}`);
  }
  if (/[\r\n\0]/.test(value)) {
    throw new InputError(
      `invalid ${field} ${JSON.stringify(value)}: a Dockerfile value cannot contain a line break or NUL; remove it`,
    );
  }
  return value;
}

function normalizePrefix(prefix: string): string {
  if (!prefix.startsWith("/")) {
    throw new InputError(
      `invalid pathPrefix ${JSON.stringify(prefix)}: it must be an absolute path in the image, e.g. "/app/"`,
    );
  }
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

/**
 * Escapes `$` and `\` for instructions that expand variables and take the rest of the line
 * as one word (`WORKDIR`, `USER`). Spaces need no quoting there.
 */
function escapeWord(value: string): string {
  return value.replace(/[\\$]/g, (character) => `\\${character}`);
}

/** Escapes a string for a JSON-form instruction that also expands variables (`COPY [...]`). */
function jsonArray(values: string[]): string {
  return JSON.stringify(values.map((value) => value.replace(/[\\$]/g, (c) => `\\${c}`)));
}

/** Double-quotes an `ENV` value, escaping `\`, `"` and `$`; `keepTrailing` is appended unescaped. */
function quoteEnvValue(value: string, options: { keepTrailing?: string } = {}): string {
  const escaped = value.replace(/[\\"$]/g, (character) => `\\${character}`);
  return `"${escaped}${options.keepTrailing ?? ""}"`;
}
