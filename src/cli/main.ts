/**
 * The `fairing` command: `validate`, `plan` and `apply` over a config file. Progress goes to
 * stderr and results to stdout; `--json` prints one JSON object. Exit codes: 0 success, 1 a
 * failed build, 2 invalid input or config. Heavy modules load only when a command needs them.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ConfigError, FairingError } from "../errors.ts";
import { createLogger, redact, type LogLevel, type ProgressEvent } from "../log.ts";

const USAGE = `Usage: fairing <command> [options]

Commands:
  validate   Check the config file against the schema and the project files
  plan       Print the build steps and whether the image is already up to date
  apply      Build and write the image; print its reference with the digest

Options:
  -f, --file FILE   Config file (default: ./fairing.yaml)
      --json        Print the result as one JSON object on stdout
  -q, --quiet       Print only warnings and errors on stderr
  -v, --verbose     Print debug messages on stderr
  -h, --help        Show this help
      --version     Print the fairing version
`;

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

async function version(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Prints step starts and ends on stderr; transfer progress stays out of plain logs. */
function progressPrinter(io: Io, level: LogLevel): (event: ProgressEvent) => void {
  if (level === "warn" || level === "error" || level === "silent") return () => {};
  return (event) => {
    if (event.status === "progress") return;
    if (event.status === "start" && event.message === undefined) {
      io.stderr(`- ${event.step}\n`);
    } else if (event.status === "done" && event.message !== undefined) {
      io.stderr(`  ${event.step}: ${redact(event.message)}\n`);
    }
  };
}

/** Runs the CLI with `argv` (without the node and script paths) and returns the exit code. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  // A usage error is also one JSON object on stdout when --json was among the arguments.
  const usageError = (message: string, withUsage: boolean): number => {
    if (argv.includes("--json")) {
      io.stdout(JSON.stringify({ error: { type: "UsageError", message, exitCode: 2 } }) + "\n");
    }
    io.stderr(`fairing: ${message}\n${withUsage ? `\n${USAGE}` : ""}`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        file: { type: "string", short: "f", default: "fairing.yaml" },
        json: { type: "boolean", default: false },
        quiet: { type: "boolean", short: "q", default: false },
        verbose: { type: "boolean", short: "v", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    return usageError(describeArgumentError(error as Error), true);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.stdout(`${await version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    io.stdout(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (!["validate", "plan", "apply"].includes(command)) {
    return usageError(`unknown command "${command}"; use validate, plan or apply`, true);
  }
  if (positionals.length > 1) {
    return usageError(
      `unexpected argument "${positionals[1]}" after ${command}; name the config file with -f FILE`,
      false,
    );
  }
  if (values.quiet && values.verbose) {
    return usageError("--quiet and --verbose contradict each other; pass one of them", false);
  }

  let level: LogLevel = "info";
  if (values.verbose) level = "debug";
  else if (values.quiet) level = "warn";
  const logger = createLogger({
    level,
    write: (line) => io.stderr(line + "\n"),
    progress: progressPrinter(io, level),
  });
  const controller = new AbortController();
  // The first Ctrl-C stops the build at the next safe point (no tag is written after it); a
  // second one exits at once.
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    io.stderr("fairing: interrupted; stopping (press Ctrl-C again to exit at once)\n");
    controller.abort(new FairingError("interrupted"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    const { loadConfig } = await import("../config/load.ts");
    const config = await loadConfig(values.file!);
    if (command === "validate") {
      // The project files are walked too (not hashed), so validate rejects what plan would.
      const { collectContext } = await import("../plan/inputs.ts");
      await collectContext(config, { logger, signal: controller.signal });
      controller.signal.throwIfAborted();
      if (values.json) {
        io.stdout(
          JSON.stringify({ valid: true, file: config.file, builder: config.builder.kind }) + "\n",
        );
      } else {
        io.stdout(`${config.file}: valid (${config.builder.kind} builder)\n`);
      }
      return 0;
    }

    const { plan, apply, planToJSON } = await import("../plan/plan.ts");
    const options = { logger, onProgress: logger.progress, signal: controller.signal };
    const buildPlan = await plan(config, options);
    controller.signal.throwIfAborted();
    if (command === "plan") {
      if (values.json) {
        io.stdout(JSON.stringify(planToJSON(buildPlan)) + "\n");
      } else {
        io.stdout(`image: ${buildPlan.image}\n`);
        io.stdout(`builder: ${buildPlan.builder}\n`);
        io.stdout(`context digest: ${buildPlan.contextDigest}\n`);
        io.stdout(`up to date: ${buildPlan.upToDate ? "yes" : "no"} (${buildPlan.reason})\n`);
        io.stdout(`steps:\n`);
        for (const step of buildPlan.steps) {
          io.stdout(`  ${step.name}: ${step.description}\n`);
          if (step.detail) io.stdout(step.detail.replace(/^/gm, "    ") + "\n");
        }
      }
      return 0;
    }

    const result = await apply(buildPlan, options);
    if (values.json) {
      io.stdout(JSON.stringify(result) + "\n");
    } else {
      if (result.upToDate) logger.info(`up to date: ${result.destination}`);
      else if (result.blobs) {
        const { uploaded, mounted, skipped, uploadedBytes } = result.blobs;
        logger.info(
          `pushed: ${uploaded} blobs uploaded (${formatBytes(uploadedBytes)}), ${mounted} mounted, ${skipped} already present`,
        );
      }
      io.stdout(`${result.image}\n`);
    }
    return 0;
  } catch (error) {
    if (controller.signal.aborted) {
      io.stderr(
        command === "apply"
          ? "fairing: interrupted; the build stopped before writing the tag\n"
          : `fairing: interrupted; ${command} stopped\n`,
      );
      return 130;
    }
    return reportError(error, io, values.verbose ?? false, values.json ?? false);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Rewords a `parseArgs` error as one plain sentence. */
function describeArgumentError(error: Error): string {
  const option = /'([^']+)'/.exec(error.message)?.[1];
  const code = (error as { code?: string }).code;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) return `unknown option "${option}"`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    return `option "${option}" needs a value`;
  }
  return error.message;
}

function reportError(error: unknown, io: Io, verbose: boolean, json: boolean): number {
  const exitCode = error instanceof FairingError ? error.exitCode : 1;
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const problems = error instanceof ConfigError ? error.problems : undefined;
    io.stdout(
      redact(
        JSON.stringify({
          error: {
            type: error instanceof Error ? error.name : "Error",
            message,
            exitCode,
            ...(problems ? { problems } : {}),
          },
        }),
      ) + "\n",
    );
  }
  io.stderr(redact(`fairing: ${message}`) + "\n");
  if (error instanceof FairingError && "outputTail" in error) {
    const tail = (error as { outputTail: string[] }).outputTail;
    if (tail.length > 0) io.stderr(redact(tail.map((line) => `  | ${line}`).join("\n")) + "\n");
  }
  if (verbose && error instanceof Error && error.stack) io.stderr(redact(error.stack) + "\n");
  else if (!(error instanceof FairingError)) {
    io.stderr(
      "this is a fairing bug or an unexpected failure; run again with --verbose for the stack trace\n",
    );
  }
  return exitCode;
}

/**
 * Exits quietly when stdout is closed early (`fairing plan | head`), as Unix tools do, instead
 * of crashing on EPIPE.
 */
export function exitOnClosedStdout(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

// Runs only when this file is the entry point (`deno run`, `bun`, `node --import tsx`);
// bin/fairing.js imports it and calls main() itself.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  exitOnClosedStdout();
  process.exitCode = await main(process.argv.slice(2));
}
