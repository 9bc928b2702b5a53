/**
 * Registry authentication: `WWW-Authenticate` challenge parsing, the Bearer token exchange of
 * the distribution token spec (password grant via Basic auth, or `refresh_token` grant for
 * identity tokens), and a per-scope token cache.
 */
import { RegistryError } from "../errors.ts";
import { redact, registerSecret } from "../log.ts";
import { unauthorizedHint, type Credential } from "./credentials.ts";

/** One parsed `WWW-Authenticate` challenge. */
export interface AuthChallenge {
  /** Lowercased scheme: `basic` or `bearer`. */
  scheme: string;
  /** Parameters with lowercased names: `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header value into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
 * Quoted values may contain commas and backslash escapes.
 */
export function parseAuthChallenges(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let index = 0;
  const text = header;
  const skipSpaces = () => {
    while (index < text.length && /[\s,]/.test(text[index] as string)) index++;
  };
  const readToken = () => {
    const start = index;
    while (index < text.length && /[^\s,=]/.test(text[index] as string)) index++;
    return text.slice(start, index);
  };

  skipSpaces();
  while (index < text.length) {
    const scheme = readToken();
    if (!scheme) break;
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);

    for (;;) {
      skipSpaces();
      const save = index;
      const name = readToken();
      while (index < text.length && text[index] === " ") index++;
      if (!name || text[index] !== "=") {
        // Not a parameter: the start of the next challenge.
        index = save;
        break;
      }
      index++;
      while (index < text.length && text[index] === " ") index++;
      let value = "";
      if (text[index] === '"') {
        index++;
        while (index < text.length && text[index] !== '"') {
          if (text[index] === "\\" && index + 1 < text.length) index++;
          value += text[index];
          index++;
        }
        index++;
      } else {
        value = readToken();
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

/** Builds a `repository:NAME:ACTIONS` scope string. */
export function repositoryScope(repository: string, actions: string[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Returns the `Authorization` header value for Basic auth with `credential`. */
export function basicAuthorization(credential: Credential): string {
  const raw = `${credential.username ?? ""}:${credential.password ?? ""}`;
  const bytes = new TextEncoder().encode(raw);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const value = `Basic ${btoa(binary)}`;
  registerSecret(value.slice("Basic ".length));
  return value;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Default token lifetime when the token server sends no `expires_in` (the token spec's 60 s). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Tokens are renewed this long before they expire, so a request does not race the expiry. */
const EXPIRY_MARGIN_MS = 10_000;

/**
 * Fetches and caches Bearer tokens per scope set for one registry. Tokens are registered as
 * secrets and never logged.
 */
export class TokenSource {
  private readonly cache = new Map<string, CachedToken>();

  constructor(
    private readonly registry: string,
    private readonly credential: Credential | null,
    private readonly fetcher: typeof fetch,
  ) {}

  /** Drops every cached token, so the next request fetches a fresh one. */
  clear(): void {
    this.cache.clear();
  }

  /**
   * Returns a token for `scopes` from the cache, or from the realm in `challenge`. A cached token
   * whose scopes are a superset of the ones asked for is reused.
   */
  async token(challenge: AuthChallenge, scopes: string[]): Promise<string> {
    const key = scopes.slice().sort().join(" ");
    const now = Date.now();
    const cached = this.cache.get(key) ?? this.findCovering(scopes, now);
    if (cached && cached.expiresAt > now) return cached.token;

    const fetched = await this.fetchToken(challenge, scopes);
    this.cache.set(key, fetched);
    return fetched.token;
  }

  // A `pull,push` token covers a later `pull` request on the same repository.
  private findCovering(scopes: string[], now: number): CachedToken | undefined {
    for (const [key, cached] of this.cache) {
      if (cached.expiresAt <= now) continue;
      const granted = key.split(" ");
      const covers = scopes.every((scope) => {
        const [type, name, actions = ""] = splitScope(scope);
        return granted.some((grantedScope) => {
          const [grantedType, grantedName, grantedActions = ""] = splitScope(grantedScope);
          const grantedSet = new Set(grantedActions.split(","));
          return (
            grantedType === type &&
            grantedName === name &&
            actions.split(",").every((action) => grantedSet.has(action))
          );
        });
      });
      if (covers) return cached;
    }
    return undefined;
  }

  private async fetchToken(challenge: AuthChallenge, scopes: string[]): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new RegistryError(
        `the registry ${this.registry} sent a Bearer challenge without a realm; ` +
          `check the registry's auth.token configuration`,
        { method: "GET", path: "/v2/", status: 401 },
      );
    }
    const realmUrl = new URL(realm);
    const service = challenge.params.service;
    const credential = this.credential;
    let response: Response;

    try {
      if (credential?.identityToken) {
        // OAuth2 refresh-token grant, as Docker does for identity tokens.
        const form = new URLSearchParams();
        form.set("grant_type", "refresh_token");
        form.set("refresh_token", credential.identityToken);
        form.set("client_id", "fairing");
        if (service) form.set("service", service);
        if (scopes.length > 0) form.set("scope", scopes.join(" "));
        response = await this.fetcher(realmUrl, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: form.toString(),
        });
      } else {
        if (service) realmUrl.searchParams.set("service", service);
        for (const scope of scopes) realmUrl.searchParams.append("scope", scope);
        const headers: Record<string, string> = {};
        if (credential && credential.password !== undefined) {
          headers.Authorization = basicAuthorization(credential);
        }
        response = await this.fetcher(realmUrl, { method: "GET", headers });
      }
    } catch (error) {
      throw new RegistryError(
        `token request to ${realmUrl.origin}${realmUrl.pathname} for ${this.registry} failed: ` +
          `${redact((error as Error).message)}; is the token server running?`,
        { method: "GET", path: realmUrl.pathname, status: 0, cause: error },
      );
    }

    if (!response.ok) {
      const text = await response.text().catch(() => "");
      const hint =
        response.status === 401 || response.status === 403
          ? unauthorizedHint(this.registry, this.credential)
          : "the token server failed; retry";
      throw new RegistryError(
        `token request to ${realmUrl.origin}${realmUrl.pathname} for ${this.registry} failed ` +
          `with status ${response.status}${text ? `: ${redact(text.slice(0, 200))}` : ""}; ${hint}`,
        {
          method: credential?.identityToken ? "POST" : "GET",
          path: realmUrl.pathname,
          status: response.status,
        },
      );
    }

    const body = (await response.json().catch(() => ({}))) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
      refresh_token?: string;
    };
    const token = body.token ?? body.access_token;
    if (!token) {
      throw new RegistryError(
        `token server ${realmUrl.origin}${realmUrl.pathname} returned no token for ${this.registry}; ` +
          `check the token server`,
        { method: "GET", path: realmUrl.pathname, status: response.status },
      );
    }
    registerSecret(token);
    registerSecret(body.refresh_token);
    const seconds =
      typeof body.expires_in === "number" && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_SECONDS;
    const lifetime = Math.max(seconds * 1000 - EXPIRY_MARGIN_MS, 1000);
    return { token, expiresAt: Date.now() + lifetime };
  }
}

function splitScope(scope: string): [string, string, string] {
  // Splits `type:name:actions`. The name is everything between the first and the last colon.
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  return [scope.slice(0, first), scope.slice(first + 1, last), scope.slice(last + 1)];
}
