/**
 * The JSON message streams the Docker Engine API sends for `POST /build` and
 * `POST /images/{name}/push`: one JSON object per line (`stream`, `status`, `progressDetail`,
 * `aux`, `error` and `errorDetail` fields), read here without buffering the whole response.
 */

/** One message of a build or push stream. */
export interface DockerMessage {
  /** Build output text, usually one line ending in `\n`. */
  stream?: string;
  /** Pull or push status, e.g. `Pushing` or `latest: digest: sha256:... size: 528`. */
  status?: string;
  /** Layer id a status belongs to. */
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  /** Short error text; `errorDetail.message` carries the same text in current engines. */
  error?: string;
  errorDetail?: { message?: string; code?: number };
  /** Build results (`ID` of the built image) and push results (`Tag`, `Digest`, `Size`). */
  aux?: { ID?: string; Tag?: string; Digest?: string; Size?: number };
}

/**
 * Parses a stream of newline-separated JSON messages. A line that is not JSON is returned as
 * `{ stream: line }` so that no engine output is lost.
 */
export async function* readMessages(
  chunks: AsyncIterable<Uint8Array | string>,
): AsyncGenerator<DockerMessage> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of chunks) {
    pending += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) yield parseLine(line);
      newline = pending.indexOf("\n");
    }
  }
  pending += decoder.decode();
  if (pending.trim()) yield parseLine(pending.trim());
}

function parseLine(line: string): DockerMessage {
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as DockerMessage;
  } catch {
    // Not JSON: fall through and keep the text as output.
  }
  return { stream: `${line}\n` };
}

/** Returns the error text of a message, or undefined when it reports no error. */
export function messageError(message: DockerMessage): string | undefined {
  const text = message.errorDetail?.message || message.error;
  return text ? text.trim() : undefined;
}

/** The last lines of a builder's output, kept for `BuildError.outputTail`. */
export class OutputTail {
  readonly #limit: number;
  readonly #lines: string[] = [];
  #partial = "";

  /** Creates a tail that keeps the last `limit` lines (default 20). */
  constructor(limit = 20) {
    this.#limit = limit;
  }

  /** Appends text, which may hold several lines or end mid-line, and returns the complete lines. */
  write(text: string): string[] {
    const parts = (this.#partial + text).split(/\r?\n/);
    this.#partial = parts.pop() ?? "";
    const complete = parts.map((line) => line.replace(/\s+$/, "")).filter((line) => line !== "");
    for (const line of complete) this.#push(line);
    return complete;
  }

  /** Returns the kept lines, including a final line without a newline. */
  lines(): string[] {
    const partial = this.#partial.trim();
    const all = partial ? [...this.#lines, partial] : [...this.#lines];
    return all.slice(-this.#limit);
  }

  #push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#limit) this.#lines.shift();
  }
}
