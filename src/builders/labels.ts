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

/**
 * Raised by the "does the target exist" checks when the tag exists but contains another build,
 * so the plan can report that instead of "does not exist".
 */
export class StaleImageError extends Error {
  override readonly name = "StaleImageError";
}

/** Throws `StaleImageError` when `found` lacks one of the `expected` labels or has another value. */
export function checkLabels(
  found: Record<string, string> | null | undefined,
  expected: Record<string, string>,
): void {
  for (const [name, value] of Object.entries(expected)) {
    const actual = found?.[name];
    if (actual !== value) {
      throw new StaleImageError(
        actual === undefined
          ? `it has no ${name} label, so fairing did not build it from these inputs`
          : `it was built from other inputs (${name} ${actual})`,
      );
    }
  }
}
