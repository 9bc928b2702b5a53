/**
 * The build context sent to the Docker Engine: fairing's context entries plus the Dockerfile
 * and a `.dockerignore` that keeps both out of `COPY . /`, streamed as one uncompressed tar.
 * The engine still reads a Dockerfile and `.dockerignore` that `.dockerignore` excludes, but
 * COPY and ADD skip them, so the image holds exactly the context entries.
 */
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { InputError } from "../../errors.ts";
import { sortEntries, type ContextEntry } from "../../context/entries.ts";
import { tarStream } from "../../context/tar.ts";

/** Path of the Dockerfile inside the build context tar. */
export const CONTEXT_DOCKERFILE = ".fairing.Dockerfile";

const DOCKERIGNORE = ".dockerignore";

/** A build context ready to stream, and the temp folder to remove afterwards. */
export interface DockerBuildContext {
  /** Context entries plus the Dockerfile and `.dockerignore`, sorted. */
  entries: ContextEntry[];
  /** Returns a new stream of the uncompressed tar; each call reads the files again. */
  stream(): Readable;
  /** Removes the temp folder with the Dockerfile and `.dockerignore`. */
  dispose(): Promise<void>;
}

/**
 * Writes `dockerfile` and a `.dockerignore` to a temp folder and returns the entries of the
 * combined build context. Throws `InputError` when a context entry already uses one of those
 * two names at the context root.
 */
export async function createDockerBuildContext(
  entries: readonly ContextEntry[],
  dockerfile: string,
): Promise<DockerBuildContext> {
  for (const entry of entries) {
    if (entry.path === CONTEXT_DOCKERFILE || entry.path === DOCKERIGNORE) {
      throw new InputError(
        `context entry /${entry.path} clashes with the file the docker builder adds to the build ` +
          `context; map it to another path in the image`,
      );
    }
  }

  const dir = await mkdtemp(join(tmpdir(), "fairing-docker-context-"));
  try {
    const dockerfilePath = join(dir, "Dockerfile");
    const ignorePath = join(dir, "dockerignore");
    const ignoreText = `${CONTEXT_DOCKERFILE}\n${DOCKERIGNORE}\n`;
    await writeFile(dockerfilePath, dockerfile);
    await writeFile(ignorePath, ignoreText);

    const all = sortEntries([
      ...entries,
      fileEntry(CONTEXT_DOCKERFILE, dockerfilePath, dockerfile),
      fileEntry(DOCKERIGNORE, ignorePath, ignoreText),
    ]);
    return {
      entries: all,
      stream: () => Readable.from(tarStream(all)),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function fileEntry(path: string, source: string, text: string): ContextEntry {
  return { path, type: "file", source, mode: 0o644, size: new TextEncoder().encode(text).length };
}
