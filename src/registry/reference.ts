/**
 * Image references (`registry/repository:tag@digest`) parsed and normalised the way Docker and
 * the distribution reference grammar do it.
 */
import { InputError } from "../errors.ts";

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** Normalised registry host with optional port: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/busybox`, `team/mnist`. */
  repository: string;
  /** Tag; `latest` when the input gave neither a tag nor a digest. */
  tag?: string;
  /** Content digest such as `sha256:<64 hex>`. */
  digest?: string;
}

/** Registry name Docker uses for Docker Hub references without a registry part. */
export const DOCKER_HUB = "docker.io";

const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// Path component of the distribution grammar: lowercase alphanumerics joined by `.`, `_`,
// `__` or one or more `-`.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[a-fA-F0-9:.]+\]$/;
const PORT = /^[0-9]+$/;
const MAX_NAME_LENGTH = 255;

/** Returns true when `tag` matches the tag grammar `[\w][\w.-]{0,127}`. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Returns true when `digest` is `sha256:` followed by 64 lowercase hex digits (or sha512 with 128). */
export function isValidDigest(digest: string): boolean {
  return DIGEST.test(digest);
}

function invalid(input: string, rule: string): InputError {
  return new InputError(
    `invalid image reference "${input}": ${rule}; ` +
      `expected [registry[:port]/]repository[:tag][@sha256:<64 hex digits>]`,
  );
}

function isValidRegistry(registry: string): boolean {
  let host = registry;
  let port: string | undefined;
  if (registry.startsWith("[")) {
    const end = registry.indexOf("]");
    if (end < 0) return false;
    host = registry.slice(0, end + 1);
    const rest = registry.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return false;
      port = rest.slice(1);
    }
    if (!IPV6_HOST.test(host)) return false;
  } else {
    const colon = registry.lastIndexOf(":");
    if (colon >= 0) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (!host.split(".").every((component) => DOMAIN_COMPONENT.test(component))) return false;
  }
  return port === undefined || PORT.test(port);
}

// Docker treats the first path component as a registry when it contains `.` or `:`, is
// `localhost`, or contains uppercase letters (which a repository component cannot).
function looksLikeRegistry(component: string): boolean {
  return (
    component.includes(".") ||
    component.includes(":") ||
    component === "localhost" ||
    component !== component.toLowerCase()
  );
}

/**
 * Parses an image reference and applies Docker's normalisation: no registry part means
 * `docker.io`, a single-component Docker Hub repository gets `library/`, `index.docker.io`
 * becomes `docker.io`, and `latest` is filled in when neither tag nor digest is given.
 * Throws InputError naming the input and the rule it breaks.
 */
export function parseReference(input: string): ImageReference {
  const text = input.trim();
  if (text === "") throw invalid(input, "the reference is empty");

  let remainder = text;
  let digest: string | undefined;
  const at = remainder.indexOf("@");
  if (at >= 0) {
    digest = remainder.slice(at + 1);
    remainder = remainder.slice(0, at);
    if (!isValidDigest(digest)) {
      throw invalid(input, `digest "${digest}" is not sha256: followed by 64 lowercase hex digits`);
    }
  }

  let tag: string | undefined;
  const lastSlash = remainder.lastIndexOf("/");
  const lastColon = remainder.lastIndexOf(":");
  if (lastColon > lastSlash) {
    tag = remainder.slice(lastColon + 1);
    remainder = remainder.slice(0, lastColon);
    if (!isValidTag(tag)) {
      throw invalid(
        input,
        `tag "${tag}" must start with a letter, digit or underscore and contain at most 128 ` +
          `letters, digits, underscores, periods or dashes`,
      );
    }
  }
  if (remainder === "") throw invalid(input, "the repository name is empty");

  let registry = DOCKER_HUB;
  let repository = remainder;
  const firstSlash = remainder.indexOf("/");
  if (firstSlash >= 0 && looksLikeRegistry(remainder.slice(0, firstSlash))) {
    registry = remainder.slice(0, firstSlash);
    repository = remainder.slice(firstSlash + 1);
    if (!isValidRegistry(registry)) {
      throw invalid(input, `registry "${registry}" is not a valid host name with optional port`);
    }
  }
  if (registry === "index.docker.io") registry = DOCKER_HUB;
  if (repository === "") throw invalid(input, "the repository name is empty");

  for (const component of repository.split("/")) {
    if (PATH_COMPONENT.test(component)) continue;
    if (component !== component.toLowerCase()) {
      throw invalid(input, `repository name "${repository}" must be lowercase`);
    }
    throw invalid(
      input,
      `repository component "${component}" must be lowercase letters and digits separated ` +
        `by ".", "_", "__" or "-"`,
    );
  }
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  const reference: ImageReference = { registry, repository };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  if (tag === undefined && digest === undefined) reference.tag = "latest";
  return reference;
}

/** Formats a reference as `registry/repository[:tag][@digest]`, keeping `docker.io/library/` explicit. */
export function formatReference(ref: ImageReference): string {
  let text = `${ref.registry}/${ref.repository}`;
  if (ref.tag) text += `:${ref.tag}`;
  if (ref.digest) text += `@${ref.digest}`;
  return text;
}

/** Returns a copy of `ref` with `tag` set and the digest dropped. Throws InputError on an invalid tag. */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!isValidTag(tag)) {
    throw new InputError(
      `invalid tag "${tag}" for ${ref.registry}/${ref.repository}: a tag must match ` +
        `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`,
    );
  }
  return { registry: ref.registry, repository: ref.repository, tag };
}

/** Returns a copy of `ref` pinned to `digest`, keeping its tag. */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  if (!isValidDigest(digest)) {
    throw new InputError(
      `invalid digest "${digest}" for ${ref.registry}/${ref.repository}: expected sha256: ` +
        `followed by 64 lowercase hex digits`,
    );
  }
  return { ...ref, digest };
}

/** Splits `host[:port]` into the host (brackets kept for IPv6) and the port, if any. */
export function splitHostPort(registry: string): { host: string; port?: string } {
  if (registry.startsWith("[")) {
    const end = registry.indexOf("]");
    const host = end >= 0 ? registry.slice(0, end + 1) : registry;
    const rest = end >= 0 ? registry.slice(end + 1) : "";
    return rest.startsWith(":") ? { host, port: rest.slice(1) } : { host };
  }
  const colons = registry.split(":").length - 1;
  if (colons === 1) {
    const [host = "", port] = registry.split(":");
    return port === undefined ? { host } : { host, port };
  }
  // Zero colons, or a bare IPv6 address without brackets.
  return { host: registry };
}

/** Returns true for loopback registries: `localhost`, `127.0.0.0/8`, `[::1]`, with or without a port. */
export function isLoopbackRegistry(registry: string): boolean {
  const bare = registry.trim().toLowerCase();
  if (bare === "::1") return true;
  const { host } = splitHostPort(bare);
  if (host === "localhost" || host === "[::1]") return true;
  const octets = host.split(".");
  return (
    octets.length === 4 &&
    octets[0] === "127" &&
    octets.every((octet) => /^[0-9]{1,3}$/.test(octet) && Number(octet) <= 255)
  );
}

/**
 * Returns the base URL of the registry API: `https://registry-1.docker.io` for Docker Hub,
 * `http://` for loopback registries or when `insecure` is set, else `https://`.
 */
export function registryApiBase(registry: string, insecure: boolean): string {
  if (registry === DOCKER_HUB || registry === "index.docker.io")
    return "https://registry-1.docker.io";
  const scheme = insecure || isLoopbackRegistry(registry) ? "http" : "https";
  return `${scheme}://${registry}`;
}
