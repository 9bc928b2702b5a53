/**
 * Detection of credentials written into the config file. A config file is committed and
 * shared, so passwords, tokens and keys belong in the Docker config, a credential helper or
 * the environment instead.
 */
import type { ConfigProblem } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { nearestPosition, problemAt, type ConfigSource, type DocumentPath } from "./source.ts";

// Key names (lowercase, without `_`, `-` and `.`) whose string value is a credential.
const SECRET_KEY =
  /(password|passwd|passphrase|secret|token|apikey|accesskey|privatekey|credentials?|auth)$/;

// Fields of the file format whose names end like a credential but hold a name or a flag.
const SAFE_PATHS = new Set(["builder.registrySecret", "builder.createRegistrySecret"]);

// Empty values and on/off flags such as `DISABLE_AUTH: "1"` carry no credential.
const FLAG_VALUE = /^(|0|1|true|false|yes|no|on|off)$/i;

// `scheme://user:password@host`
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s:]+:[^/@\s]+@/i;

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.toLowerCase().replace(/[-_.]/g, ""));
}

function dotted(path: DocumentPath): string {
  return path.filter((segment) => typeof segment === "string").join(".");
}

const ADVICE =
  "remove it from the config file and provide it through the Docker config " +
  "(`docker login`, a credential helper) or an environment variable";

/**
 * Returns a problem for every value that looks like a credential: a non-empty scalar under a
 * key named like a password, secret, token or key, or a URL with a password. Each such value
 * is registered as a secret, so no log line or error prints it.
 */
export function findSecrets(source: ConfigSource): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const visit = (value: unknown, path: (string | number)[]): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, [...path, index]));
      return;
    }
    if (value !== null && typeof value === "object") {
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        visit(item, [...path, key]);
      }
      return;
    }
    if (typeof value !== "string" && typeof value !== "number") return;
    const text = String(value);
    if (FLAG_VALUE.test(text)) return;

    const key = path[path.length - 1];
    const position = nearestPosition(source, path);
    if (typeof key === "string" && isSecretKey(key) && !SAFE_PATHS.has(dotted(path))) {
      registerSecret(text);
      problems.push(
        problemAt(position, path, `looks like a credential (key \`${key}\`); ${ADVICE}`),
      );
    } else if (typeof value === "string" && URL_WITH_PASSWORD.test(text)) {
      const password = text.replace(/^[^:]+:\/\/[^:]+:/, "").replace(/@.*$/, "");
      registerSecret(password);
      problems.push(problemAt(position, path, `contains a password in the URL; ${ADVICE}`));
    }
  };
  visit(source.value, []);
  return problems;
}
