/**
 * Labels fairing writes into every image it builds, so a later plan can tell whether the image
 * in the target is the one the config and the files describe.
 */

/** Label storing the context digest an image was built from. */
export const CONTEXT_DIGEST_LABEL = "dev.fairing.context-digest";

/** Label storing the build key (context digest and every image setting) an image was built from. */
export const BUILD_KEY_LABEL = "dev.fairing.build-key";

/** Label storing the manifest digest of the base image an appended image was built on. */
export const BASE_DIGEST_LABEL = "dev.fairing.base-digest";
