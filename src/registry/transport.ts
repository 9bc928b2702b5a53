/**
 * The HTTP layer under the registry client. It chooses https or http and authenticates each
 * request (anonymous, Basic, or Bearer tokens per scope). It retries 5xx and network failures
 * where that is safe, and turns failed responses into RegistryError with a hint on what to do.
 */
import { RegistryError } from "../errors.ts";
import { redact, silentLogger, type Logger } from "../log.ts";
import {
  basicAuthorization,
  parseAuthChallenges,
  TokenSource,
  type AuthChallenge,
} from "./auth.ts";
import { resolveCredential, unauthorizedHint, type Credential } from "./credentials.ts";
import { nodeFetch } from "./node-fetch.ts";
import { DOCKER_HUB, isLoopbackRegistry } from "./reference.ts";

/** Options shared by the transport and the client. */
export interface TransportOptions {
  /** Allow plain HTTP to a registry that is not on loopback. */
  insecure?: boolean;
  /** Credential to use; `null` for anonymous; `undefined` resolves it from the config files. */
  credential?: Credential | null;
  logger?: Logger;
  fetch?: typeof fetch;
  /** Retries after a 5xx, 429 or network failure of a request that is safe to repeat; default 3. */
  retries?: number;
  /** Delay before the first retry in milliseconds, doubled for each further retry; default 250. */
  retryDelayMs?: number;
}

/** Kind of resource a request addresses, so a 404 error can name what was not found. */
export type RequestSubject = "manifest" | "blob" | "upload" | "registry";

/** One request through the transport. */
export interface RequestSpec {
  method: string;
  /** A path below the API base (`/v2/...`) or an absolute URL from a Location header. */
  url: string;
  /** Token scopes the request needs, e.g. `repository:team/app:pull`. */
  scopes: string[];
  headers?: Record<string, string>;
  /** Request body as bytes, which a retry can send again. */
  body?: Uint8Array;
  /**
   * Request body as a stream, sent with chunked encoding as it is produced. It can be sent only
   * once: the request is not retried, not even with fresh auth after a 401.
   */
  stream?: ReadableStream<Uint8Array>;
  /** Whether a 5xx or network failure may be retried. */
  retrySafe: boolean;
  subject: RequestSubject;
  /** Repository and reference, for messages. */
  repository?: string;
  reference?: string;
  redirect?: RequestRedirect;
}

/** Returns the path of a URL without its query string, which may carry upload state or tokens. */
export function urlPath(url: string): string {
  try {
    return new URL(url, "http://placeholder").pathname;
  } catch {
    return url.split("?")[0] ?? url;
  }
}

/** Reads the registry's JSON error body: the first error code and its message. */
export async function readRegistryError(
  response: Response,
): Promise<{ code?: string; message?: string }> {
  const text = await response.text().catch(() => "");
  if (!text) return {};
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    if (first) return { code: first.code, message: first.message };
  } catch {
    // Not JSON: report the start of the text instead.
  }
  return { message: text.trim().slice(0, 200) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends requests to one registry host with authentication and retries. */
export class RegistryTransport {
  readonly registry: string;
  readonly logger: Logger;
  readonly fetcher: typeof fetch;
  /**
   * Whether the fetch in use is done with each chunk of a streamed body when it reads the next
   * one, as the node:http fetch is: a producer may then reuse a chunk's memory. Other fetch
   * implementations may keep chunks queued, and get copies.
   */
  readonly releasesBodyChunks: boolean;
  private readonly insecure: boolean;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private credentialOption: Credential | null | undefined;
  private credentialPromise: Promise<Credential | null> | undefined;
  private resolvedCredential: Credential | null | undefined;
  private basePromise: Promise<string> | undefined;
  private challenge: AuthChallenge | undefined;
  private tokens: TokenSource | undefined;

  constructor(registry: string, options: TransportOptions = {}) {
    this.registry = registry;
    this.insecure = options.insecure ?? false;
    this.credentialOption = options.credential;
    this.logger = options.logger ?? silentLogger;
    // On Node, node:http: on Node 20 the first global fetch loads undici and compiles its
    // WebAssembly HTTP parser, about 40 MiB of peak memory and 70 ms per process. On Node 24
    // node:http loads undici itself, and the two cost about the same.
    const viaNodeHttp = options.fetch ? undefined : nodeFetch();
    this.fetcher = options.fetch ?? viaNodeHttp ?? globalThis.fetch.bind(globalThis);
    this.releasesBodyChunks = viaNodeHttp !== undefined;
    this.retries = options.retries ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 250;
  }

  /** Returns the credential in use, resolving it from the config files on first use. */
  credential(): Promise<Credential | null> {
    if (this.credentialOption !== undefined) return Promise.resolve(this.credentialOption);
    this.credentialPromise ??= resolveCredential(this.registry).then((credential) => {
      this.resolvedCredential = credential;
      return credential;
    });
    return this.credentialPromise;
  }

  /**
   * Returns the API base URL, found by probing `GET /v2/`. A registry on loopback is tried over
   * plain http first, which never leaves the machine, then over https. Any other registry gets
   * https, and when it is `insecure`, plain http after https fails at the connection or TLS
   * level, as Docker does. The probe also learns the registry's auth challenge.
   */
  base(): Promise<string> {
    // A failed probe is not cached, so a registry that starts later is found by the next request.
    this.basePromise ??= this.probe().catch((error: unknown) => {
      this.basePromise = undefined;
      throw error;
    });
    return this.basePromise;
  }

  private async probe(): Promise<string> {
    if (this.registry === DOCKER_HUB) {
      const base = "https://registry-1.docker.io";
      await this.ping(base);
      return base;
    }
    const https = `https://${this.registry}`;
    const http = `http://${this.registry}`;
    if (isLoopbackRegistry(this.registry)) {
      // Distribution returns 400 to plain http on a TLS port, so 400 means "use https". An http
      // probe that fails to connect is not retried over https: nothing listens on the port.
      if ((await this.ping(http)) !== 400) return http;
      try {
        await this.ping(https);
        return https;
      } catch (error) {
        throw untrustedTls(https, (error as RegistryError).cause ?? error);
      }
    }
    if (!this.insecure) {
      await this.ping(https);
      return https;
    }

    // NOTE: `insecure` allows plain http but cannot skip TLS verification, because `fetch` has no
    // portable option for it across Node, Deno and Bun. A registry with an untrusted certificate
    // needs its CA in the runtime's trust store.
    let tlsFailure: unknown;
    try {
      await this.ping(https);
      return https;
    } catch (error) {
      tlsFailure = (error as RegistryError).cause ?? error;
      this.logger.debug(
        `https to ${this.registry} failed, trying http: ${redact(String(tlsFailure))}`,
      );
    }
    // Distribution returns 400 to plain HTTP on a TLS port. So the https failure was the real
    // problem, most likely a certificate this runtime does not trust.
    if ((await this.ping(http)) === 400) throw untrustedTls(https, tlsFailure);
    return http;
  }

  private async ping(base: string): Promise<number> {
    let response: Response;
    try {
      response = await this.fetcher(`${base}/v2/`, { method: "GET" });
    } catch (error) {
      throw new RegistryError(
        `GET /v2/ on ${this.registry} failed: ${describeCause(error)}; is the registry running at ${base}?`,
        { method: "GET", path: "/v2/", status: 0, cause: error },
      );
    }
    await response.body?.cancel().catch(() => {});
    if (response.status === 401) this.rememberChallenge(response);
    return response.status;
  }

  private rememberChallenge(response: Response): void {
    const header = response.headers.get("www-authenticate");
    if (!header) return;
    const challenges = parseAuthChallenges(header);
    const chosen =
      challenges.find((challenge) => challenge.scheme === "bearer") ??
      challenges.find((challenge) => challenge.scheme === "basic");
    if (!chosen) return;
    if (chosen.scheme === "bearer" && this.challenge?.params.realm !== chosen.params.realm) {
      this.tokens = undefined;
    }
    this.challenge = chosen;
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    const credential = await this.credential();
    if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") {
      return credential && credential.password !== undefined
        ? basicAuthorization(credential)
        : undefined;
    }
    if (challenge.scheme === "bearer") {
      this.tokens ??= new TokenSource(this.registry, credential, this.fetcher);
      return `Bearer ${await this.tokens.token(challenge, scopes)}`;
    }
    return undefined;
  }

  /** Resolves `url` (a `/v2/` path or an absolute Location) against the API base. */
  async resolve(url: string): Promise<string> {
    const base = await this.base();
    return new URL(url, `${base}/`).toString();
  }

  /**
   * Sends a request with authentication. Retries once with fresh auth after a 401, and up to
   * `retries` times after a 5xx, 429 or network failure when `spec.retrySafe`. Returns the final
   * response whatever its status; use `fail` to turn an unexpected one into an error.
   */
  async send(spec: RequestSpec): Promise<Response> {
    const url = await this.resolve(spec.url);
    const path = urlPath(url);
    let authRetried = false;

    // A streamed body is read by the first attempt, so it is never sent twice.
    const canResend = !spec.stream;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...spec.headers };
      const authorization = await this.authorization(spec.scopes);
      if (authorization) headers.Authorization = authorization;

      let response: Response;
      try {
        response = await this.fetcher(url, {
          method: spec.method,
          headers,
          body: spec.stream ?? (spec.body as Uint8Array<ArrayBuffer> | undefined),
          redirect: spec.redirect ?? "follow",
          ...(spec.stream ? { duplex: "half" } : {}),
        } as RequestInit);
      } catch (error) {
        if (spec.retrySafe && canResend && attempt < this.retries) {
          this.logger.warn(
            `${spec.method} ${path} on ${this.registry} failed (${describeCause(error)}); retry ${attempt + 1} of ${this.retries}`,
          );
          await sleep(this.retryDelayMs * 2 ** attempt);
          continue;
        }
        throw new RegistryError(
          `${spec.method} ${path} on ${this.registry} failed: ${describeCause(error)}; ` +
            `is the registry running at ${new URL(url).origin}?`,
          { method: spec.method, path, status: 0, cause: error },
        );
      }
      this.logger.debug(`${spec.method} ${path} -> ${response.status}`);

      // A 401 with a challenge means the cached auth is stale or was never sent: retry once
      // with auth built from the new challenge. The retry does not count against `retries`.
      if (
        response.status === 401 &&
        canResend &&
        !authRetried &&
        response.headers.has("www-authenticate")
      ) {
        authRetried = true;
        this.rememberChallenge(response);
        this.tokens?.clear();
        await response.body?.cancel().catch(() => {});
        attempt--;
        continue;
      }

      const transient = response.status >= 500 || response.status === 429;
      if (transient && spec.retrySafe && canResend && attempt < this.retries) {
        await response.body?.cancel().catch(() => {});
        this.logger.warn(
          `${spec.method} ${path} on ${this.registry} returned ${response.status}; retry ${attempt + 1} of ${this.retries}`,
        );
        await sleep(this.retryDelayMs * 2 ** attempt);
        continue;
      }
      return response;
    }
  }

  /** Builds the RegistryError for an unexpected response, reading the registry's error body. */
  async fail(spec: RequestSpec, response: Response): Promise<RegistryError> {
    const { code, message } = await readRegistryError(response);
    const path = urlPath(response.url || spec.url);
    const status = response.status;
    const detail = [code, message].filter(Boolean).join(": ");
    const text =
      `${spec.method} ${path} on ${this.registry} failed with status ${status}` +
      `${detail ? ` (${detail})` : ""}; ${this.hint(spec, status)}`;
    return new RegistryError(redact(text), { method: spec.method, path, status, code });
  }

  private hint(spec: RequestSpec, status: number): string {
    const host = this.registry;
    const name = spec.repository ? `${host}/${spec.repository}` : host;
    if (status === 401) {
      const credential =
        this.credentialOption !== undefined ? this.credentialOption : this.resolvedCredential;
      return unauthorizedHint(host, credential ?? null);
    }
    if (status === 403)
      return `the credentials for ${host} lack access to ${name}; check permissions`;
    if (status === 404) {
      if (spec.subject === "manifest") {
        return `image not found: ${name}${formatSuffix(spec.reference)} does not exist; check the repository and tag`;
      }
      if (spec.subject === "blob") return `blob ${spec.reference ?? ""} not found in ${name}`;
      if (spec.subject === "upload")
        return "the upload session is unknown or expired; retry the push";
      return `check that ${host} is an OCI registry`;
    }
    if (status === 429) return "the registry rate-limited the request; retry later";
    if (status >= 500) return "the registry failed; retry";
    return "check the request and the registry's logs";
  }
}

/** Builds the error for a registry that serves https this runtime cannot connect to. */
function untrustedTls(https: string, cause: unknown): RegistryError {
  return new RegistryError(
    `TLS connection to ${https} failed: ${describeCause(cause)}; the registry serves https. ` +
      `If this runtime does not trust its CA yet, add the CA certificate to the trust store ` +
      `(NODE_EXTRA_CA_CERTS for Node and Bun, DENO_CERT for Deno); if it does, check the ` +
      `registry's certificate against the error`,
    { method: "GET", path: "/v2/", status: 0, cause },
  );
}

function formatSuffix(reference: string | undefined): string {
  if (!reference) return "";
  return reference.includes(":") ? `@${reference}` : `:${reference}`;
}

/** Describes a fetch failure with its underlying cause (ECONNREFUSED, TLS errors), secrets redacted. */
export function describeCause(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth++) {
    const value = current as { message?: string; code?: string; cause?: unknown };
    const text =
      value.code && !value.message?.includes(value.code)
        ? `${value.message} (${value.code})`
        : value.message;
    if (text && !parts.includes(text)) parts.push(text);
    current = value.cause;
  }
  return redact(parts.join(": ") || String(error));
}
