/**
 * A Docker Engine for tests: `dockerd` from Debian's docker.io started as root in a temporary
 * folder on its own unix socket, without a bridge network or iptables rules, and stopped by
 * PID. Also builds busybox root filesystems that stand in for base images, because nothing can
 * be pulled from the internet here.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, symlink, writeFile, copyFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  makeTempDir,
  removeDir,
  startProcess,
  waitFor,
  which,
  type ServiceProcess,
} from "./common.ts";

const execFileAsync = promisify(execFile);

/** A running test dockerd. */
export interface DockerdService {
  socketPath: string;
  /** `unix://<socketPath>`, the value for DOCKER_HOST. */
  host: string;
  dir: string;
  process: ServiceProcess;
  /** Runs the docker CLI against this daemon and returns its stdout; throws with stderr on failure. */
  docker(args: string[], options?: { input?: string }): Promise<string>;
  /** Stops the daemon by PID and removes its folder. */
  stop(): Promise<void>;
}

/** Why a service could not be started; tests pass it to `serviceUnavailable`. */
export interface Unavailable {
  unavailable: string;
}

/**
 * Starts dockerd with a temporary data root, exec root and socket, `--bridge=none
 * --iptables=false --ip6tables=false`, and waits until `/_ping` returns OK. Returns
 * `{ unavailable }` when dockerd or the docker CLI is missing, the process is not root, or the
 * daemon does not come up.
 */
export async function startDockerd(): Promise<DockerdService | Unavailable> {
  const dockerd = which("dockerd");
  const cli = which("docker");
  if (!dockerd || !cli) return { unavailable: "dockerd or the docker CLI is not installed" };
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { unavailable: "dockerd needs root" };
  }

  const dir = await makeTempDir("dockerd");
  const socketPath = join(dir, "docker.sock");
  const proc = startProcess(
    dockerd,
    [
      "--data-root",
      join(dir, "data"),
      "--exec-root",
      join(dir, "exec"),
      "--pidfile",
      join(dir, "docker.pid"),
      "-H",
      `unix://${socketPath}`,
      "--bridge=none",
      "--iptables=false",
      "--ip6tables=false",
    ],
    { logFile: join(dir, "dockerd.log") },
  );
  const host = `unix://${socketPath}`;
  const service: DockerdService = {
    socketPath,
    host,
    dir,
    process: proc,
    async docker(args, options = {}) {
      return await runDockerCli(cli, host, args, options.input);
    },
    async stop() {
      await proc.stop(15_000);
      await removeDir(dir);
    },
  };
  try {
    await waitFor("dockerd", () => ping(socketPath), { timeoutMs: 60_000, process: proc });
  } catch (error) {
    await service.stop();
    return { unavailable: (error as Error).message };
  }
  return service;
}

/** Sends `GET /_ping` over the unix socket and returns whether the daemon returned OK. */
export async function ping(socketPath: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(res.statusCode === 200 && body === "OK"));
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

async function runDockerCli(
  cli: string,
  host: string,
  args: string[],
  input?: string,
): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: "0" };
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
  try {
    const child = execFileAsync(cli, args, { env, maxBuffer: 64 * 1024 * 1024 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout } = await child;
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(" ")} failed: ${failure.stderr || failure.message}`);
  }
}

/** Options of `writeBusyboxRootfs`. */
export interface BusyboxRootfsOptions {
  /**
   * Adds `/usr/local/bin/python` and `/usr/local/bin/pip` shell scripts. `pip` appends its
   * arguments, user id, working directory and the files there to `/tmp/pip-record.log`;
   * `python` prints its arguments, working directory and FAIRING_RUNTIME, then runs its first
   * argument as a shell script.
   */
  python?: boolean;
}

/**
 * Writes a busybox root filesystem as an uncompressed tar at `<dir>/rootfs.tar` and returns
 * its path: `/bin/busybox` with a symlink for every applet, `/tmp` (mode 1777), and
 * `/etc/passwd` with `root` and `worker` (uid 1000, home `/home/worker`).
 */
export async function writeBusyboxRootfs(
  dir: string,
  options: BusyboxRootfsOptions = {},
): Promise<string> {
  const busybox = which("busybox");
  if (!busybox) throw new Error("busybox is not installed (Debian package busybox-static)");
  const root = join(dir, "rootfs");
  for (const folder of ["bin", "tmp", "etc", "home/worker", "usr/local/bin", "root"]) {
    await mkdir(join(root, folder), { recursive: true });
  }
  await chmod(join(root, "tmp"), 0o1777);
  await copyFile(busybox, join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);

  const { stdout } = await execFileAsync(busybox, ["--list"]);
  for (const applet of stdout.split("\n").filter((name) => name && name !== "busybox")) {
    await symlink("busybox", join(root, "bin", applet));
  }
  await writeFile(
    join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nworker:x:1000:1000:worker:/home/worker:/bin/sh\n",
  );
  await writeFile(join(root, "etc/group"), "root:x:0:\nworker:x:1000:\n");

  if (options.python) {
    await writeFile(
      join(root, "usr/local/bin/pip"),
      [
        "#!/bin/sh",
        '{ echo "args: $*"; echo "uid: $(id -u)"; echo "cwd: $(pwd)";',
        '  echo "files: $(ls -A | tr "\\n" " ")"; } >> /tmp/pip-record.log',
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    await writeFile(
      join(root, "usr/local/bin/python"),
      [
        "#!/bin/sh",
        'echo "python: $*"',
        'echo "cwd: $(pwd)"',
        'echo "FAIRING_RUNTIME: $FAIRING_RUNTIME"',
        'exec sh "$@"',
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
  }

  const tarPath = join(dir, "rootfs.tar");
  await execFileAsync("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-C",
    root,
    "-cf",
    tarPath,
    ".",
  ]);
  return tarPath;
}

/**
 * Imports a busybox root filesystem into `dockerd` as `reference` (e.g. `local/busybox:1`),
 * with `PATH` set so `/usr/local/bin` scripts are found.
 */
export async function importBusyboxImage(
  dockerd: DockerdService,
  reference: string,
  options: BusyboxRootfsOptions = {},
): Promise<void> {
  const dir = await makeTempDir("busybox");
  try {
    const tarPath = await writeBusyboxRootfs(dir, options);
    await dockerd.docker([
      "import",
      "--change",
      "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      tarPath,
      reference,
    ]);
  } finally {
    await removeDir(dir);
  }
}
