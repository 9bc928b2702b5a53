/**
 * Starts s3rver, an S3-protocol server, on 127.0.0.1 in a temporary folder for the S3 and
 * MinIO context source tests. Its fixed credentials are S3RVER/S3RVER and it needs path-style
 * addressing.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { freePort, makeTempDir, removeDir, startProcess, waitFor, which } from "./common.ts";

/** A running s3rver. */
export interface S3rver {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts s3rver, or returns the reason it cannot run here. */
export async function startS3rver(): Promise<S3rver | { unavailable: string }> {
  const node = which("node");
  if (!node) return { unavailable: "node is not on PATH, and s3rver runs on Node" };
  let script: string;
  try {
    script = createRequire(import.meta.url).resolve("s3rver/bin/s3rver.js");
  } catch {
    return { unavailable: "npm package s3rver is not installed" };
  }

  const dir = await makeTempDir("s3rver");
  const port = await freePort();
  const service = startProcess(
    node,
    [script, "-a", "127.0.0.1", "-p", String(port), "-d", join(dir, "data"), "--silent"],
    { logFile: join(dir, "s3rver.log") },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitFor("s3rver", async () => (await fetch(endpoint)).status < 500, {
      process: service,
      timeoutMs: 15_000,
    });
  } catch (error) {
    await service.stop();
    await removeDir(dir);
    return { unavailable: (error as Error).message };
  }
  return {
    endpoint,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    dir,
    async stop() {
      await service.stop();
      await removeDir(dir);
    },
  };
}
