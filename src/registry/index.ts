/**
 * The registry client's public API: image references, manifest types and platform selection,
 * credentials, authentication and the distribution client.
 */
export {
  DOCKER_HUB,
  formatReference,
  isLoopbackRegistry,
  isValidDigest,
  isValidTag,
  parseReference,
  registryApiBase,
  splitHostPort,
  withDigest,
  withTag,
  type ImageReference,
} from "./reference.ts";
export * from "./manifest.ts";
export {
  DOCKER_HUB_AUTH_KEY,
  dockerConfigPath,
  helperServerUrl,
  normalizeAuthKey,
  resolveCredential,
  runCredentialHelper,
  type Credential,
  type ResolveCredentialOptions,
} from "./credentials.ts";
export { parseAuthChallenges, repositoryScope, type AuthChallenge } from "./auth.ts";
export { type TransportOptions } from "./transport.ts";
export {
  DEFAULT_CHUNK_SIZE,
  MAX_MANIFEST_BYTES,
  RegistryClient,
  sha256Digest,
  type BlobSource,
  type FetchedManifest,
  type ManifestHead,
  type PushBlobResult,
  type RegistryClientOptions,
  type UploadOptions,
} from "./client.ts";
