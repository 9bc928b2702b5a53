/**
 * Starts the Cloud Storage emulator of firebase-tools (Google's own code) on 127.0.0.1 for the
 * GCS context source tests. firebase-tools is not a project dependency: install-gcs-emulator.sh
 * puts it in a cache folder. The emulator runs in a Node child process started from a small
 * script that replaces its Security Rules runtime (which needs Java and a download) with no-ops,
 * so requests from the Cloud Storage JSON API client are served without rules.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { freePort, makeTempDir, removeDir, startProcess, waitFor, which } from "./common.ts";

/** A running Cloud Storage emulator. */
export interface GcsEmulator {
  /** JSON API endpoint for `new Storage({ apiEndpoint })`. */
  endpoint: string;
  projectId: string;
  stop(): Promise<void>;
}

/** Folder install-gcs-emulator.sh installs firebase-tools into. */
export function gcsEmulatorPrefix(): string {
  const cache = process.env.FAIRING_TEST_CACHE || join(homedir(), ".cache", "fairing-test");
  return join(cache, "firebase-tools");
}

const LAUNCHER = `
const [root, port, projectId] = process.argv.slice(2);
const lib = root + "/node_modules/firebase-tools/lib/emulator";
const { StorageRulesRuntime } = require(lib + "/storage/rules/runtime");
StorageRulesRuntime.prototype.start = async function () {};
StorageRulesRuntime.prototype.stop = async function () {};
const { StorageEmulator } = require(lib + "/storage/index");
StorageEmulator.prototype.createRulesManager = function () {
  return { start: async () => [], stop: async () => {}, getRuleset: () => undefined };
};
const { EmulatorRegistry } = require(lib + "/registry");
const emulator = new StorageEmulator({
  host: "127.0.0.1",
  port: Number(port),
  projectId,
  auto_download: false,
});
EmulatorRegistry.start(emulator).then(
  () => console.log("ready"),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
`;

/** Starts the emulator, or returns the reason it cannot run here. */
export async function startGcsEmulator(): Promise<GcsEmulator | { unavailable: string }> {
  const prefix = gcsEmulatorPrefix();
  if (!existsSync(join(prefix, "node_modules", "firebase-tools", "package.json"))) {
    return {
      unavailable: `firebase-tools is not installed in ${prefix}: run test/services/install-gcs-emulator.sh`,
    };
  }
  const node = which("node");
  if (!node)
    return { unavailable: "node is not on PATH, and the Cloud Storage emulator runs on Node" };

  const dir = await makeTempDir("gcs");
  const launcher = join(dir, "start.cjs");
  await writeFile(launcher, LAUNCHER);
  const port = await freePort();
  const projectId = "fairing-test";
  const service = startProcess(node, [launcher, prefix, String(port), projectId], {
    logFile: join(dir, "gcs.log"),
    cwd: dir,
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      "Cloud Storage emulator",
      async () => (await fetch(`${endpoint}/storage/v1/b/probe/o`)).status < 500,
      { process: service, timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (error) {
    await service.stop();
    await removeDir(dir);
    return { unavailable: (error as Error).message };
  }
  return {
    endpoint,
    projectId,
    async stop() {
      await service.stop();
      await removeDir(dir);
    },
  };
}
