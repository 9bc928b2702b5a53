/**
 * Follows the log of a build pod's container: every line goes to the logger as it arrives and
 * the last lines are kept for the error of a failed build.
 */
import { Writable } from "node:stream";
import { silentLogger, type Logger } from "../log.ts";
import type { KubeConnection } from "./client.ts";

/** A followed pod log. */
export interface LogFollower {
  /** The last lines received, oldest first. */
  tail(): string[];
  /** Resolves when the log stream has ended, or after `timeoutMs`, whichever is first. */
  finished(timeoutMs: number): Promise<void>;
  /** Stops following. */
  stop(): void;
}

/** Keeps the last `size` lines of a text stream. */
export class LineTail {
  private readonly kept: string[] = [];
  private partial = "";

  constructor(private readonly size: number) {}

  /** Adds a chunk of text and returns the complete lines it finished. */
  push(text: string): string[] {
    const parts = (this.partial + text).split(/\r?\n/);
    this.partial = parts.pop() ?? "";
    for (const line of parts) this.remember(line);
    return parts;
  }

  /** Returns the unfinished last line, if any, as a complete line. */
  flush(): string[] {
    if (!this.partial) return [];
    const line = this.partial;
    this.partial = "";
    this.remember(line);
    return [line];
  }

  /** Returns the last lines, oldest first. */
  lines(): string[] {
    return this.kept.slice();
  }

  private remember(line: string): void {
    this.kept.push(line);
    if (this.kept.length > this.size) this.kept.shift();
  }
}

/** Starts following `container` of `pod`; lines go to `logger.info` with a prefix. */
export async function followPodLog(
  connection: KubeConnection,
  pod: string,
  container: string,
  options: { logger?: Logger; tailLines?: number; follow?: boolean } = {},
): Promise<LogFollower> {
  const logger = options.logger ?? silentLogger;
  const tail = new LineTail(options.tailLines ?? 50);
  const decoder = new TextDecoder();
  let resolveEnded: () => void = () => {};
  const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
  const emit = (lines: string[]) => {
    for (const line of lines) logger.info(`[${pod}] ${line}`);
  };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      emit(tail.push(decoder.decode(chunk, { stream: true })));
      callback();
    },
    final(callback) {
      emit(tail.push(decoder.decode()));
      emit(tail.flush());
      resolveEnded();
      callback();
    },
  });
  sink.on("close", () => resolveEnded());
  sink.on("error", () => resolveEnded());

  const log = new connection.k8s.Log(connection.config);
  const controller = await log.log(connection.namespace, pod, container, sink, {
    follow: options.follow ?? true,
  });
  return {
    tail: () => tail.lines(),
    async finished(timeoutMs: number) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        ended,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    },
    stop() {
      controller.abort();
      emit(tail.flush());
      resolveEnded();
    },
  };
}
