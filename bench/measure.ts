/**
 * Runs benchmark commands as child processes and measures their wall time and peak resident
 * set size (through GNU `time`), and summarises samples as median, minimum and maximum.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

/** One finished command. */
export interface Sample {
  milliseconds: number;
  /** Peak RSS of the measured process tree's largest process, in MiB. */
  peakRssMiB: number;
  stdout: string;
  stderr: string;
}

/** Median, minimum and maximum of a series. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

const TIME = "/usr/bin/time";

/** Returns whether GNU `time` is there to measure peak RSS. */
export function canMeasureRss(): boolean {
  return existsSync(TIME);
}

/**
 * Runs `command` and resolves with its wall time and peak RSS. Rejects when it exits non-zero,
 * with the tail of its stderr.
 */
export function run(
  command: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<Sample> {
  const measured = canMeasureRss() ? [TIME, "-f", "\n@@rss %M", ...command] : command;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(measured[0]!, measured.slice(1), {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.on("error", reject);
    child.on("close", (code) => {
      const milliseconds = performance.now() - started;
      const match = /@@rss (\d+)\s*$/.exec(stderr);
      const peakRssMiB = match ? Number(match[1]) / 1024 : Number.NaN;
      stderr = stderr.replace(/\n@@rss \d+\s*$/, "");
      if (code !== 0) {
        const tail = stderr.split("\n").slice(-15).join("\n");
        reject(new Error(`${command.join(" ")} exited with ${code}:\n${tail}`));
        return;
      }
      resolve({ milliseconds, peakRssMiB, stdout, stderr });
    });
  });
}

/** Returns the median, minimum and maximum of `values`. */
export function summarise(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: sorted.length };
}
