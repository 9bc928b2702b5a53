/**
 * Starts Azurite's Blob service on 127.0.0.1 in a temporary folder for the Azure context source
 * tests. It uses Azurite's development account `devstoreaccount1` and its published key.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { freePort, makeTempDir, removeDir, startProcess, waitFor, which } from "./common.ts";

/** Azurite's development account name. */
export const AZURITE_ACCOUNT = "devstoreaccount1";

/** Azurite's published development account key; it is public and grants nothing elsewhere. */
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** A running Azurite Blob service. */
export interface Azurite {
  /** Blob endpoint including the account, e.g. `http://127.0.0.1:10000/devstoreaccount1`. */
  endpoint: string;
  account: string;
  key: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts Azurite's Blob service, or returns the reason it cannot run here. */
export async function startAzurite(): Promise<Azurite | { unavailable: string }> {
  const node = which("node");
  if (!node) return { unavailable: "node is not on PATH, and Azurite runs on Node" };
  let script: string;
  try {
    script = createRequire(import.meta.url).resolve("azurite/dist/src/blob/main.js");
  } catch {
    return { unavailable: "npm package azurite is not installed" };
  }

  const dir = await makeTempDir("azurite");
  const port = await freePort();
  const args = [
    script,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    String(port),
    "--location",
    join(dir, "data"),
    "--disableTelemetry",
    "--skipApiVersionCheck",
    "--loose",
    "--silent",
  ];
  const service = startProcess(node, args, { logFile: join(dir, "azurite.log") });
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  try {
    await waitFor("azurite", async () => (await fetch(`${endpoint}?comp=list`)).status > 0, {
      process: service,
      timeoutMs: 20_000,
    });
  } catch (error) {
    await service.stop();
    await removeDir(dir);
    return { unavailable: (error as Error).message };
  }
  return {
    endpoint,
    account: AZURITE_ACCOUNT,
    key: AZURITE_KEY,
    dir,
    async stop() {
      await service.stop();
      await removeDir(dir);
    },
  };
}
