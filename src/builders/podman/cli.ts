/**
 * Runs the podman CLI through execa with an argument array (never a shell string), streams
 * each output line to the logger and progress events, and keeps the last lines for errors.
 */
import type { Readable } from "node:stream";
import { BuildError } from "../../errors.ts";
import { redact, silentLogger, type Logger, type ProgressEvent } from "../../log.ts";
import { OutputTail } from "../docker/messages.ts";

/** One podman invocation. */
export interface PodmanCommand {
  /** Global flags placed before the subcommand, e.g. `--root /tmp/storage`. */
  globalArgs: readonly string[];
  /** Subcommand and its arguments, e.g. `["push", "--tls-verify=true", ref]`. */
  args: readonly string[];
  /** Stream written to podman's stdin, e.g. the build context tar for `podman build -`. */
  input?: Readable;
  /** Step name for progress events and messages, e.g. `podman-build`. */
  step: string;
  /** What the command does, for error messages, e.g. `podman build of 127.0.0.1:5000/x:1`. */
  description: string;
  logger?: Logger;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Podman executable; default `podman` from PATH. */
  executable?: string;
}

/**
 * Runs one podman command to completion. Rejects with a `BuildError` that carries podman's
 * own error line and the last 20 lines of output when it cannot start or exits non-zero.
 */
export async function runPodman(command: PodmanCommand): Promise<void> {
  const { execa } = await import("execa");
  const logger = command.logger ?? silentLogger;
  const tail = new OutputTail();
  const executable = command.executable ?? "podman";
  const args = [...command.globalArgs, ...command.args];
  logger.debug(`running ${executable} ${args.join(" ")}`);

  const subprocess = execa(executable, args, {
    all: true,
    reject: false,
    stdin: command.input ? "pipe" : "ignore",
    ...(command.signal ? { cancelSignal: command.signal } : {}),
    env: { LC_ALL: "C" },
  });
  if (command.input) {
    // A build that fails early closes stdin; the resulting EPIPE is expected and the exit code
    // reports the failure.
    subprocess.stdin?.on("error", () => {});
    command.input.on("error", (error) => subprocess.kill(error));
    command.input.pipe(subprocess.stdin!);
  }

  for await (const line of subprocess.iterable({ from: "all" })) {
    for (const complete of tail.write(`${line}\n`)) {
      logger.info(complete);
      command.onProgress?.({ step: command.step, status: "progress", message: redact(complete) });
    }
  }
  const result = await subprocess;
  if (result.exitCode === 0 && !result.failed) return;

  const lines = tail.lines().map(redact);
  if ((result as { code?: string }).code === "ENOENT" || /ENOENT/.test(result.message ?? "")) {
    throw new BuildError(
      `${command.description} failed: the podman executable ${executable} was not found; install podman ` +
        `(Debian package podman) or put it on PATH`,
      { outputTail: lines, cause: result },
    );
  }
  if (result.isCanceled) {
    throw new BuildError(`${command.description} was aborted`, { outputTail: lines });
  }
  const errorLine = [...lines].reverse().find((text) => /^Error: /.test(text)) ?? lines.at(-1);
  const exit = result.exitCode === undefined ? (result.signal ?? "unknown") : result.exitCode;
  throw new BuildError(
    redact(
      `${command.description} failed (podman exit ${exit}): ${errorLine ?? result.shortMessage}`,
    ),
    { outputTail: lines },
  );
}
