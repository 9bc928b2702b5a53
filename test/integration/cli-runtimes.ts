/** Runs the fairing CLI from source as a child process under Node (tsx), Deno or Bun. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { main } from "../../src/cli/main.ts";

export const REPO = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..");
const CLI = resolve(REPO, "src/cli/main.ts");

export type Runtime = "node" | "deno" | "bun";

/** Returns the command line that runs the CLI under `runtime`, or undefined when it is not installed. */
export function cliCommand(runtime: Runtime): string[] | undefined {
  if (runtime === "node") return [process.execPath, "--import", "tsx", CLI];
  const binary = resolve(REPO, "node_modules/.bin", runtime);
  if (!existsSync(binary)) return undefined;
  return runtime === "deno" ? [binary, "run", "-A", "--no-check", CLI] : [binary, CLI];
}

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI under `runtime` with `args` and extra environment variables. */
export async function runCliProcess(
  runtime: Runtime,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const command = cliCommand(runtime);
  if (!command) throw new Error(`${runtime} is not installed in node_modules/.bin; run npm ci`);
  const [file, ...prefix] = command;
  return await new Promise((resolvePromise) => {
    execFile(
      file!,
      [...prefix, ...args],
      { cwd: REPO, env: { ...process.env, NO_COLOR: "1", ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

/** Runs the CLI in this process with `args` and returns its exit code and what it printed. */
export async function runCliInProcess(args: string[]): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
  });
  return { code, stdout, stderr };
}
