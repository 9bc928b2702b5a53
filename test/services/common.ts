/**
 * Shared plumbing for the services the test suite starts itself: free loopback ports,
 * temporary folders, child processes stopped by PID, and the skip-or-fail rule (a missing
 * service skips a test with the reason, except under CI=true where it fails the test).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { TestContext } from "node:test";

/** True when CI=true: a test that cannot get its service fails instead of skipping. */
export const inCI = process.env.CI === "true";

/** Marks `t` skipped with `reason`, or throws under CI=true. Call it and return. */
export function serviceUnavailable(t: TestContext, reason: string): void {
  if (inCI) throw new Error(`required service unavailable under CI=true: ${reason}`);
  t.skip(reason);
}

/** Returns the absolute path of `command` on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Creates a temporary folder; remove it with `removeDir`. */
export async function makeTempDir(prefix: string): Promise<string> {
  return await mkdtemp(join(tmpdir(), `fairing-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** A child process started by a test, with its output in `logFile`. */
export interface ServiceProcess {
  pid: number;
  logFile: string;
  /** Sends SIGTERM by PID, then SIGKILL after `graceMs`, and waits for the exit. */
  stop(graceMs?: number): Promise<void>;
  /** Last lines of the process output, for failure messages. */
  tail(lines?: number): Promise<string>;
  exited(): boolean;
}

/** Starts `command` with stdout and stderr appended to `logFile`. */
export function startProcess(
  command: string,
  args: string[],
  options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ServiceProcess {
  const log = createWriteStream(options.logFile, { flags: "a" });
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exitedFlag = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exitedFlag = true;
      resolve();
    });
    child.once("error", (error) => {
      log.write(`spawn failed: ${error.message}\n`);
      exitedFlag = true;
      resolve();
    });
  });
  child.unref();
  (child.stdout as { unref?: () => void } | null)?.unref?.();
  (child.stderr as { unref?: () => void } | null)?.unref?.();

  const pid = child.pid ?? -1;
  return {
    pid,
    logFile: options.logFile,
    exited: () => exitedFlag,
    async stop(graceMs = 5000) {
      if (!exitedFlag && pid > 0) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // The process is already gone.
        }
        const timer = setTimeout(() => {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // The process exited between the check and the kill.
          }
        }, graceMs);
        await exit;
        clearTimeout(timer);
      }
      log.end();
    },
    async tail(lines = 20) {
      const text = await readFile(options.logFile, "utf8").catch(() => "");
      return text.split("\n").slice(-lines).join("\n");
    },
  };
}

/** Polls `check` every `intervalMs` until it returns true, or throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; process?: ServiceProcess } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (await check().catch(() => false)) return;
    if (options.process?.exited()) {
      throw new Error(`${what} exited before it was ready:\n${await options.process.tail()}`);
    }
    if (Date.now() > deadline) {
      const tail = options.process ? `\n${await options.process.tail()}` : "";
      throw new Error(`${what} was not ready after ${options.timeoutMs ?? 30_000} ms${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
