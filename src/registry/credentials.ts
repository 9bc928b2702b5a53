/**
 * Registry credentials from the places Docker and Podman keep them: `REGISTRY_AUTH_FILE`
 * (Podman's auth.json), then the Docker config (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`) with its `credHelpers`, `auths` and `credsStore`.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { FairingError, InputError } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { DOCKER_HUB } from "./reference.ts";

/** Credentials for one registry. Secrets in it are registered for redaction when resolved. */
export interface Credential {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (`identitytoken` in config.json), exchanged at the token realm. */
  identityToken?: string;
  /** Bearer token sent to the registry as is (`registrytoken` in config.json). */
  registryToken?: string;
  /** Origin of the credential, e.g. `/home/u/.docker/config.json (auths)`; contains no secret. */
  source?: string;
}

/** Options of `resolveCredential`. */
export interface ResolveCredentialOptions {
  /** Environment to read HOME, DOCKER_CONFIG, REGISTRY_AUTH_FILE and PATH from; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Repository, for auth.json entries scoped to `host/namespace/repository`. */
  repository?: string;
  /** Milliseconds a credential helper may run before it is stopped; default 30 000. */
  helperTimeoutMs?: number;
}

/** Key Docker stores Docker Hub credentials under, and the server URL its helpers expect. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/**
 * Reduces an `auths` key to the registry host the way Docker does: the scheme and any path are
 * dropped, so `https://127.0.0.1:5000/v2/` matches `127.0.0.1:5000`. Docker Hub aliases
 * become `docker.io`.
 */
export function normalizeAuthKey(key: string): string {
  let host = key.trim();
  host = host.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = host.indexOf("/");
  if (slash >= 0) host = host.slice(0, slash);
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/** Returns the server URL credential helpers and `auths` use for `registry`. */
export function helperServerUrl(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry) ? DOCKER_HUB_AUTH_KEY : registry;
}

async function readJsonFile(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new InputError(`cannot read credentials file ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(
      `invalid credentials file ${path}: not JSON (${(error as Error).message}); fix or remove the file`,
    );
  }
}

// Finds the `auths` entry for a registry: an exact key first (most specific repository scope
// first for auth.json), then any key that normalises to the same host.
function findAuthEntry(
  auths: Record<string, AuthEntry>,
  registry: string,
  repository: string | undefined,
): [string, AuthEntry] | undefined {
  const host = normalizeAuthKey(registry);
  if (repository) {
    const parts = repository.split("/");
    for (let length = parts.length; length > 0; length--) {
      const key = `${registry}/${parts.slice(0, length).join("/")}`;
      const entry = auths[key];
      if (entry) return [key, entry];
    }
  }
  const exact = [helperServerUrl(registry), registry];
  for (const key of exact) {
    const entry = auths[key];
    if (entry) return [key, entry];
  }
  // Keys with a scheme, or without a path, name a whole registry. A key such as `host/namespace`
  // without a scheme is scoped to repositories, and the loop above already tried it.
  for (const [key, entry] of Object.entries(auths)) {
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(key);
    if ((hasScheme || !key.includes("/")) && normalizeAuthKey(key) === host) return [key, entry];
  }
  return undefined;
}

function decodeBase64(text: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)));
}

// Converts one `auths` entry to a credential; an entry without secrets returns undefined (Docker
// writes such empty entries when a credsStore keeps the secret).
function credentialFromEntry(entry: AuthEntry, source: string): Credential | undefined {
  registerSecret(entry.auth);
  registerSecret(entry.password);
  registerSecret(entry.identitytoken);
  registerSecret(entry.registrytoken);

  const credential: Credential = { source };
  if (entry.auth) {
    let decoded: string;
    try {
      decoded = decodeBase64(entry.auth);
    } catch {
      throw new InputError(
        `invalid "auth" value in ${source}: not base64; run docker login again to rewrite it`,
      );
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new InputError(
        `invalid "auth" value in ${source}: expected base64 of user:password; run docker login again`,
      );
    }
    credential.username = decoded.slice(0, colon);
    credential.password = decoded.slice(colon + 1);
    registerSecret(credential.password);
  } else if (entry.username || entry.password) {
    credential.username = entry.username ?? "";
    credential.password = entry.password ?? "";
  }
  if (entry.identitytoken) credential.identityToken = entry.identitytoken;
  if (entry.registrytoken) credential.registryToken = entry.registrytoken;

  const hasSecret =
    credential.password !== undefined ||
    credential.identityToken !== undefined ||
    credential.registryToken !== undefined;
  return hasSecret ? credential : undefined;
}

/**
 * Runs `docker-credential-<helper> get` with the server URL on stdin (no shell) and returns the
 * credential, or undefined when the helper has none for the host. Throws when the helper is
 * missing or fails.
 */
export async function runCredentialHelper(
  helper: string,
  registry: string,
  options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) {
    throw new InputError(
      `invalid credential helper name "${helper}" for ${registry}: expected a plain name such as ` +
        `"pass" or "secretservice"`,
    );
  }
  const serverUrl = helperServerUrl(registry);
  const env = (options.env ?? process.env) as NodeJS.ProcessEnv;

  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(program, ["get"], { env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
      child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
      child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
      child.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (error.code === "ENOENT") {
          reject(
            new InputError(
              `credential helper ${program} for ${registry} not found on PATH; install it or ` +
                `remove "${helper}" from credHelpers/credsStore in the Docker config`,
            ),
          );
        } else {
          reject(
            new FairingError(
              `credential helper ${program} for ${registry} failed to start: ${error.message}`,
            ),
          );
        }
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.on("error", () => {
        // The helper exited before reading stdin; its exit code reports the failure.
      });
      child.stdin.end(serverUrl);
    },
  );

  if (result.code !== 0) {
    const output = (result.stdout + result.stderr).trim();
    if (/credentials not found/i.test(output)) return undefined;
    throw new FairingError(
      `credential helper ${program} failed for ${registry} (exit code ${result.code}): ` +
        `${output.split("\n")[0] || "no output"}; check the helper, or run docker login ${registry}`,
    );
  }

  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(result.stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new FairingError(
      `credential helper ${program} returned invalid JSON for ${registry}; check the helper`,
    );
  }
  registerSecret(parsed.Secret);
  if (!parsed.Secret) return undefined;
  const source = `credential helper ${program}`;
  if (parsed.Username === "<token>") return { identityToken: parsed.Secret, source };
  return { username: parsed.Username ?? "", password: parsed.Secret, source };
}

/** Returns the Docker config file path: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
export function dockerConfigPath(env: Record<string, string | undefined> = process.env): string {
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, "config.json");
  const home = env.HOME || env.USERPROFILE || homedir();
  return join(home, ".docker", "config.json");
}

/**
 * Resolves the credential for `registry`, a normalised host such as `127.0.0.1:5000` or
 * `docker.io`. The first match wins: REGISTRY_AUTH_FILE `auths`, then in the Docker config
 * `credHelpers[host]`, `auths[host]` and `credsStore`. Returns null for anonymous access. Every
 * secret found is registered for redaction.
 */
export async function resolveCredential(
  registry: string,
  options: ResolveCredentialOptions = {},
): Promise<Credential | null> {
  const env = options.env ?? process.env;
  const host = normalizeAuthKey(registry);
  const helperOptions = { env, timeoutMs: options.helperTimeoutMs ?? 30_000 };

  const authFile = env.REGISTRY_AUTH_FILE;
  if (authFile) {
    const data = (await readJsonFile(authFile)) as DockerConfigFile | undefined;
    const found = data?.auths ? findAuthEntry(data.auths, registry, options.repository) : undefined;
    if (found) {
      const credential = credentialFromEntry(found[1], `${authFile} (auths["${found[0]}"])`);
      if (credential) return credential;
    }
  }

  const configPath = dockerConfigPath(env);
  const config = (await readJsonFile(configPath)) as DockerConfigFile | undefined;
  if (!config) return null;

  const helpers = config.credHelpers ?? {};
  const helper = helpers[registry] ?? helpers[helperServerUrl(registry)] ?? helpers[host];
  if (helper) return (await runCredentialHelper(helper, host, helperOptions)) ?? null;

  const found = config.auths ? findAuthEntry(config.auths, registry, undefined) : undefined;
  if (found) {
    const credential = credentialFromEntry(found[1], `${configPath} (auths["${found[0]}"])`);
    if (credential) return credential;
  }

  if (config.credsStore) {
    return (await runCredentialHelper(config.credsStore, host, helperOptions)) ?? null;
  }
  return null;
}

/**
 * Returns what to do after a registry returned 401: which credentials it rejected and where they
 * came from, or where fairing looked when it found none.
 */
export function unauthorizedHint(
  registry: string,
  credential: Credential | null,
  env: Record<string, string | undefined> = process.env,
): string {
  if (credential) {
    const from = credential.source ? ` from ${credential.source}` : "";
    return `the registry rejected the credentials for ${registry}${from}; update them or run docker login ${registry}`;
  }
  const places = [
    ...(env.REGISTRY_AUTH_FILE ? [env.REGISTRY_AUTH_FILE] : []),
    dockerConfigPath(env),
  ].join(" and ");
  return `no credentials for ${registry} were found in ${places}; run docker login ${registry}`;
}
