import type { PodSpec } from "../plan/types.ts";

/** The parts of a preprocessor a pod spec needs. */
export interface PodSpecSource {
  getCommand(): string[];
  readonly pathPrefix: string;
}

/**
 * Builds the V1PodSpec-shaped object that runs `image`: one container named `model` running the
 * preprocessor's command in the path prefix, with FAIRING_RUNTIME=1 and any extra `env`. Every
 * builder's `generatePodSpec()` returns this.
 */
export function generatePodSpec(
  image: string,
  preprocessor: PodSpecSource,
  env: Record<string, string> = {},
): PodSpec {
  const variables = { ...env, FAIRING_RUNTIME: "1" };
  const command = preprocessor.getCommand();
  return {
    containers: [
      {
        name: "model",
        image,
        ...(command.length > 0 ? { command } : {}),
        workingDir: preprocessor.pathPrefix,
        env: Object.entries(variables)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, value]) => ({ name, value })),
      },
    ],
    restartPolicy: "Never",
  };
}
