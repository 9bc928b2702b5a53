/**
 * Podman for tests: no daemon, only storage of its own in a temporary folder, selected by
 * global flags (`--root`, `--runroot`, vfs, cgroupfs, file events), so tests never touch the
 * machine's images. `run` adds the flags containers need on this kind of machine.
 */
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeTempDir, removeDir, which } from "./common.ts";
import { writeBusyboxRootfs, type BusyboxRootfsOptions, type Unavailable } from "./dockerd.ts";

const execFileAsync = promisify(execFile);

/** Podman with per-test storage. */
export interface PodmanService {
  dir: string;
  /** Global flags selecting this storage; pass them as `globalArgs` to the podman builder. */
  globalArgs: string[];
  /** Runs `podman <globalArgs> <args>` and returns stdout; throws with stderr on failure. */
  podman(args: string[]): Promise<string>;
  /** Runs `podman run --rm --network=none` with ulimits set, and returns stdout. */
  run(image: string, command?: string[]): Promise<string>;
  /** Imports a busybox root filesystem as `reference`, e.g. `localhost/busybox:1`. */
  importBusybox(reference: string, options?: BusyboxRootfsOptions): Promise<void>;
  /** Removes the storage folder. */
  stop(): Promise<void>;
}

/**
 * Prepares podman storage in a temp folder. Returns `{ unavailable }` when podman is missing,
 * the process is not root, or `podman info` fails with this storage.
 */
export async function startPodman(): Promise<PodmanService | Unavailable> {
  const podman = which("podman");
  if (!podman) return { unavailable: "podman (Debian package podman) is not installed" };
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { unavailable: "the podman tests use root storage flags and need root" };
  }

  const dir = await makeTempDir("podman");
  await mkdir(join(dir, "tmp"), { recursive: true });
  const globalArgs = [
    "--root",
    join(dir, "root"),
    "--runroot",
    join(dir, "run"),
    "--storage-driver",
    "vfs",
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "file",
    "--tmpdir",
    join(dir, "tmp"),
  ];
  const call = async (args: string[]): Promise<string> => {
    try {
      const { stdout } = await execFileAsync(podman, [...globalArgs, ...args], {
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`podman ${args.join(" ")} failed: ${failure.stderr || failure.message}`);
    }
  };

  const service: PodmanService = {
    dir,
    globalArgs,
    podman: call,
    async run(image, command = []) {
      return await call([
        "run",
        "--rm",
        "--network=none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        image,
        ...command,
      ]);
    },
    async importBusybox(reference, options = {}) {
      const rootfsDir = join(dir, `rootfs-${Date.now()}`);
      await mkdir(rootfsDir);
      try {
        const tarPath = await writeBusyboxRootfs(rootfsDir, options);
        await call([
          "import",
          "--change",
          "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          tarPath,
          reference,
        ]);
      } finally {
        await removeDir(rootfsDir);
      }
    },
    async stop() {
      await removeDir(dir);
    },
  };

  try {
    await call(["info", "--format", "{{.Store.GraphDriverName}}"]);
  } catch (error) {
    await service.stop();
    return { unavailable: (error as Error).message };
  }
  return service;
}
