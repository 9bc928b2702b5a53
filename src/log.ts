/** Log levels in increasing order of severity. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** A structured progress event from a running step. */
export interface ProgressEvent {
  step: string;
  status: "start" | "progress" | "done" | "skipped";
  message?: string;
  /** Bytes handled so far, for transfers and archives. */
  bytes?: number;
  /** Total bytes when known. */
  total?: number;
}

/** The logger every module takes; library code never writes to the console directly. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  progress(event: ProgressEvent): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

const secrets = new Set<string>();

/**
 * Registers a value (password, token) that must never be printed: every logger and
 * `redact()` replace it with `***`. Values shorter than 4 characters are ignored because
 * replacing them would mangle ordinary text.
 */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

/** Replaces every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join("***");
  return result;
}

/** A logger that drops everything; the default for SDK calls without a logger. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  progress() {},
};

/** Creates a logger writing `level` and above as plain lines to `write` (stderr in the CLI). */
export function createLogger(options: {
  level?: LogLevel;
  write?: (line: string) => void;
  progress?: (event: ProgressEvent) => void;
}): Logger {
  const threshold = ORDER[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: Exclude<LogLevel, "silent">, message: string) => {
    if (ORDER[level] >= threshold)
      write(redact(level === "info" ? message : `${level}: ${message}`));
  };
  return {
    debug: (message) => emit("debug", message),
    info: (message) => emit("info", message),
    warn: (message) => emit("warn", message),
    error: (message) => emit("error", message),
    progress: options.progress ?? (() => {}),
  };
}
