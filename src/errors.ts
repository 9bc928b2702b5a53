/** A problem found in a config file, with the position of the value it concerns. */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the value, e.g. `builder.push` or `preprocessor.inputFiles[2]`. */
  path: string;
  message: string;
}

/** Base class of every error fairing raises on purpose; `exitCode` is what the CLI exits with. */
export class FairingError extends Error {
  readonly exitCode: 1 | 2;

  constructor(message: string, options: { exitCode?: 1 | 2; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
  }
}

/**
 * Invalid user input: a bad argument, reference, option or project file. `configPath` names the
 * config value the input came from (e.g. `["preprocessor", "inputFiles", 1]`), so the planner
 * can report it at that value's file:line:column.
 */
export class InputError extends FairingError {
  readonly configPath: (string | number)[] | undefined;

  constructor(
    message: string,
    options: { cause?: unknown; configPath?: (string | number)[] } = {},
  ) {
    super(message, { exitCode: 2, cause: options.cause });
    this.configPath = options.configPath;
  }
}

/** Formats one config problem as `file:line:column: path: message`. */
export function formatProblem(problem: ConfigProblem): string {
  const where = `${problem.file}:${problem.line}:${problem.column}`;
  return problem.path
    ? `${where}: ${problem.path}: ${problem.message}`
    : `${where}: ${problem.message}`;
}

/** Invalid config: carries every problem found, each with its file:line:column. */
export class ConfigError extends FairingError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const lines = problems.map(formatProblem);
    const summary =
      problems.length === 1 ? "invalid config" : `invalid config (${problems.length} problems)`;
    super(`${summary}:\n${lines.map((line) => `  ${line}`).join("\n")}`, { exitCode: 2 });
    this.problems = problems;
  }
}

/** A registry request that failed: the method, the URL path, the HTTP status and the registry's error code. */
export class RegistryError extends FairingError {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** First error code from the registry's JSON error body (e.g. `MANIFEST_UNKNOWN`), when it sent one. */
  readonly code: string | undefined;

  constructor(
    message: string,
    details: { method: string; path: string; status: number; code?: string; cause?: unknown },
  ) {
    super(message, { exitCode: 1, cause: details.cause });
    this.method = details.method;
    this.path = details.path;
    this.status = details.status;
    this.code = details.code;
  }
}

/** A build that ran and failed, with the last lines the builder printed in `outputTail`. */
export class BuildError extends FairingError {
  readonly outputTail: string[];

  constructor(message: string, options: { outputTail?: string[]; cause?: unknown } = {}) {
    super(message, { exitCode: 1, cause: options.cause });
    this.outputTail = options.outputTail ?? [];
  }
}
