/**
 * The connection to the Docker Engine: `builder.dockerHost`, else DOCKER_HOST, else the
 * default unix socket, with TLS from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the docker CLI
 * reads them. dockerode is imported here, lazily, so planning other builder kinds never loads it.
 */
import { readFile } from "node:fs/promises";
import { Agent } from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import type Dockerode from "dockerode";
import { InputError } from "../../errors.ts";

/** Socket the Docker Engine listens on when DOCKER_HOST is unset. */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

/** How to reach the engine, in dockerode's option names (certificates not yet read). */
export interface DockerConnection {
  /** Origin of the setting, for messages: `builder.dockerHost`, `DOCKER_HOST` or `default`. */
  origin: string;
  socketPath?: string;
  protocol?: "http" | "https";
  host?: string;
  port?: number;
  /** Folder with `ca.pem`, `cert.pem` and `key.pem` for TLS. */
  certPath?: string;
  /** Verify the engine's certificate (DOCKER_TLS_VERIFY set). */
  tlsVerify?: boolean;
}

/**
 * Resolves the engine address from `dockerHost` or `env.DOCKER_HOST`: `unix:///path`,
 * `tcp://host:port` (TLS when DOCKER_TLS_VERIFY is set to anything but `0` or empty, or when
 * DOCKER_TLS is set; port 2376 also means TLS, as the docker CLI assumes), `http://` or
 * `https://`. Throws `InputError` for other schemes, naming the value and where it came from.
 */
export function resolveDockerConnection(
  dockerHost: string | undefined,
  env: Record<string, string | undefined> = process.env,
): DockerConnection {
  let origin = "default";
  if (dockerHost) origin = "builder.dockerHost";
  else if (env.DOCKER_HOST) origin = "DOCKER_HOST";
  const value = dockerHost || env.DOCKER_HOST || `unix://${DEFAULT_DOCKER_SOCKET}`;

  if (value.startsWith("unix://")) {
    const socketPath = value.slice("unix://".length) || DEFAULT_DOCKER_SOCKET;
    return { origin, socketPath };
  }

  const match = /^(tcp|http|https):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(value);
  if (!match) {
    throw new InputError(
      `invalid Docker host ${JSON.stringify(value)} from ${origin}: expected unix:///path/to/docker.sock ` +
        `or tcp://host:port (ssh:// and npipe:// are not supported)`,
    );
  }
  const [, scheme, rawHost = "", rawPort] = match;
  const tlsVerify =
    env.DOCKER_TLS_VERIFY !== undefined && !["", "0"].includes(env.DOCKER_TLS_VERIFY);
  const tls =
    scheme === "https" ||
    (scheme === "tcp" && (tlsVerify || Boolean(env.DOCKER_TLS) || rawPort === "2376"));
  // Without a port, 2376 for TLS and 2375 for plain TCP, as the docker CLI assumes.
  const defaultPort = tls ? 2376 : 2375;
  const port = rawPort ? Number(rawPort) : defaultPort;
  const host = rawHost.replace(/^\[(.*)\]$/, "$1");
  const connection: DockerConnection = {
    origin,
    protocol: tls ? "https" : "http",
    host,
    port,
    tlsVerify: tls && tlsVerify,
  };
  if (tls) connection.certPath = env.DOCKER_CERT_PATH || join(homedir(), ".docker");
  return connection;
}

/** Describes a connection for log lines and errors, e.g. `unix:///var/run/docker.sock`. */
export function describeConnection(connection: DockerConnection): string {
  if (connection.socketPath) return `unix://${connection.socketPath}`;
  const host = connection.host?.includes(":") ? `[${connection.host}]` : connection.host;
  return `${connection.protocol}://${host}:${connection.port}`;
}

/**
 * Creates a dockerode client for `connection`, importing dockerode on first use. For TLS, the
 * client certificate and CA are read from `certPath`; a missing file is an `InputError`.
 */
export async function connectDocker(connection: DockerConnection): Promise<Dockerode> {
  const { default: Docker } = await import("dockerode");
  if (connection.socketPath) return new Docker({ socketPath: connection.socketPath });

  // dockerode passes `agent` through to its HTTP requests; its type definitions omit it.
  const options: Dockerode.DockerOptions & { agent?: Agent } = {
    protocol: connection.protocol ?? "http",
    host: connection.host ?? "127.0.0.1",
    port: connection.port ?? 2375,
  };
  if (connection.protocol === "https" && connection.certPath) {
    const read = async (name: string) => {
      const file = join(connection.certPath!, name);
      try {
        return await readFile(file);
      } catch (error) {
        throw new InputError(
          `cannot read ${file} for TLS to the Docker Engine at ${describeConnection(connection)}: ` +
            `${(error as Error).message}; set DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem`,
          { cause: error },
        );
      }
    };
    options.ca = await read("ca.pem");
    options.cert = await read("cert.pem");
    options.key = await read("key.pem");
    if (!connection.tlsVerify) {
      // Like the docker CLI without DOCKER_TLS_VERIFY: TLS with the client certificate, but the
      // server certificate is not checked.
      // NOTE: This path is exercised by no test here, because the test engine listens on a unix socket.
      options.agent = new Agent({ rejectUnauthorized: false });
    }
  }
  return new Docker(options);
}
