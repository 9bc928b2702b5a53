/**
 * Starts a real OCI registry (CNCF distribution 2.8, Debian's `docker-registry`) on loopback in a
 * temporary folder, optionally over TLS. Access is anonymous, htpasswd Basic auth, or Bearer
 * tokens from an in-process token server that signs RS256 JWTs with an `x5c` header.
 */
import { execFileSync } from "node:child_process";
import { createHash, createSign, randomBytes, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import {
  freePort,
  makeTempDir,
  removeDir,
  startProcess,
  waitFor,
  which,
  type ServiceProcess,
} from "./common.ts";

/** Options of `startRegistry`. */
export interface RegistryOptions {
  /** Access control: none (anonymous push and pull), htpasswd Basic auth, or Bearer tokens. */
  auth?: "htpasswd" | "token";
  /** Serve https with a certificate signed by a CA made for this registry (`caFile`). */
  tls?: boolean;
}

/** One request the token server received, for assertions on scopes and grants. */
export interface TokenRequest {
  method: string;
  scopes: string[];
  service: string | undefined;
  grantType: string | undefined;
  /** User name when the request authenticated; `undefined` for anonymous ones. */
  user: string | undefined;
}

/** A running registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://...` with `tls`. */
  url: string;
  username?: string;
  password?: string;
  /** Identity (refresh) token the token server accepts for `username`, with `auth: "token"`. */
  identityToken?: string;
  /** CA certificate (PEM file) that signed the TLS certificate, with `tls`. */
  caFile?: string;
  /** Requests the token server received, with `auth: "token"`. */
  tokenRequests: TokenRequest[];
  dir: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

/** Returns why a registry cannot be started here, or undefined when it can. */
export function registryUnavailableReason(options: RegistryOptions = {}): string | undefined {
  if (!which("docker-registry"))
    return "docker-registry (Debian package docker-registry) is not installed";
  if (options.auth === "htpasswd" && !which("htpasswd")) {
    return "htpasswd (Debian package apache2-utils) is not installed";
  }
  if ((options.tls || options.auth === "token") && !which("openssl"))
    return "openssl is not installed";
  return undefined;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function makeCertificate(dir: string, name: string): { key: string; cert: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const args = [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-keyout",
    key,
    "-out",
    cert,
    "-subj",
    `/CN=fairing-test-${name}`,
  ];
  execFileSync("openssl", args, { stdio: "ignore" });
  return { key, cert };
}

/**
 * Makes a CA (basicConstraints CA:TRUE) and a server certificate it signs for 127.0.0.1 and
 * localhost (CA:FALSE, serverAuth). Deno's TLS stack rejects a self-signed CA certificate served
 * as the server's own, so the registry gets the leaf and clients trust the CA.
 */
function makeServerCertificate(dir: string): { key: string; cert: string; ca: string } {
  const ca = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  const key = join(dir, "tls.key");
  const request = join(dir, "tls.csr");
  const cert = join(dir, "tls.crt");
  const extensions = join(dir, "tls.ext");
  const quiet = { stdio: "ignore" } as const;

  // The CA, self-signed.
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
      ...["-keyout", caKey, "-out", ca, "-subj", "/CN=fairing-test-ca"],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ],
    quiet,
  );

  // The server's key and certificate request, then the certificate the CA signs.
  execFileSync(
    "openssl",
    [
      ...["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request],
      ...["-subj", "/CN=fairing-test-registry"],
    ],
    quiet,
  );
  writeFileSync(
    extensions,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ].join("\n") + "\n",
  );
  execFileSync(
    "openssl",
    [
      ...["x509", "-req", "-in", request, "-CA", ca, "-CAkey", caKey, "-CAcreateserial"],
      ...["-days", "2", "-out", cert, "-extfile", extensions],
    ],
    quiet,
  );

  return { key, cert, ca };
}

/** Signs a JWT with RS256 and puts the signing certificate in the `x5c` header, as distribution 2.8 verifies it. */
function signToken(claims: object, keyPem: string, certPem: string): string {
  const der = new X509Certificate(certPem).raw.toString("base64");
  const header = { typ: "JWT", alg: "RS256", x5c: [der] };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign("RSA-SHA256").update(input).sign(keyPem);
  return `${input}.${base64url(signature)}`;
}

interface TokenServerSettings {
  service: string;
  issuer: string;
  username: string;
  password: string;
  identityToken: string;
  keyPem: string;
  certPem: string;
  requests: TokenRequest[];
}

// Grants everything asked for to the user, and only `pull` to anonymous requests.
function startTokenServer(settings: TokenServerSettings, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1");
      const form = new URLSearchParams(
        request.method === "POST" ? Buffer.concat(chunks).toString() : "",
      );
      const params = request.method === "POST" ? form : url.searchParams;
      const scopes = params
        .getAll("scope")
        .flatMap((scope) => scope.split(" "))
        .filter(Boolean);

      let user: string | undefined;
      let denied = false;
      const header = request.headers.authorization ?? "";
      if (header.startsWith("Basic ")) {
        const [name, ...rest] = Buffer.from(header.slice(6), "base64").toString().split(":");
        if (name === settings.username && rest.join(":") === settings.password) user = name;
        else denied = true;
      }
      if (params.get("grant_type") === "refresh_token") {
        if (params.get("refresh_token") === settings.identityToken) user = settings.username;
        else denied = true;
      }
      settings.requests.push({
        method: request.method ?? "GET",
        scopes,
        service: params.get("service") ?? undefined,
        grantType: params.get("grant_type") ?? undefined,
        user,
      });
      if (denied) {
        response.writeHead(401, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ details: "invalid user name, password or token" }));
        return;
      }

      const access = scopes.map((scope) => {
        const [type, name, actions = ""] = scope.split(":");
        const granted = actions
          .split(",")
          .filter((action) => user !== undefined || action === "pull");
        return { type, name, actions: granted };
      });
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: settings.issuer,
        sub: user ?? "",
        aud: settings.service,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString("hex"),
        access,
      };
      const token = signToken(claims, settings.keyPem, settings.certPem);
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(
        JSON.stringify({
          token,
          access_token: token,
          expires_in: 300,
          issued_at: new Date().toISOString(),
        }),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

async function portOpen(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `docker-registry serve` on 127.0.0.1 with a fresh storage folder. Returns undefined
 * with `reason` set when a required program is missing, so callers can call
 * `serviceUnavailable(t, reason)`.
 */
export async function startRegistry(
  options: RegistryOptions = {},
): Promise<TestRegistry | undefined> {
  if (registryUnavailableReason(options)) return undefined;

  const dir = await makeTempDir("registry");
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    "version: 0.1",
    "log: { level: warn }",
    "storage:",
    `  filesystem: { rootdirectory: ${JSON.stringify(join(dir, "data"))} }`,
    "  delete: { enabled: true }",
    "http:",
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
  ];

  let caFile: string | undefined;
  if (options.tls) {
    const server = makeServerCertificate(dir);
    caFile = server.ca;
    lines.push(
      "  tls:",
      `    certificate: ${JSON.stringify(server.cert)}`,
      `    key: ${JSON.stringify(server.key)}`,
    );
  }

  const username = options.auth ? "fairing" : undefined;
  const password = options.auth ? `pw-${randomBytes(12).toString("hex")}` : undefined;
  const identityToken =
    options.auth === "token" ? `idt-${randomBytes(16).toString("hex")}` : undefined;
  const tokenRequests: TokenRequest[] = [];
  let tokenServer: Server | undefined;

  if (options.auth === "htpasswd") {
    const entry = execFileSync("htpasswd", [
      "-Bbn",
      username as string,
      password as string,
    ]).toString();
    writeFileSync(join(dir, "htpasswd"), entry);
    lines.push(
      "auth:",
      `  htpasswd: { realm: fairing-test, path: ${JSON.stringify(join(dir, "htpasswd"))} }`,
    );
  } else if (options.auth === "token") {
    const signer = makeCertificate(dir, "token");
    const tokenPort = await freePort();
    const service = "fairing-test-registry";
    const issuer = "fairing-test-token-server";
    tokenServer = await startTokenServer(
      {
        service,
        issuer,
        username: username as string,
        password: password as string,
        identityToken: identityToken as string,
        keyPem: readFileSync(signer.key, "utf8"),
        certPem: readFileSync(signer.cert, "utf8"),
        requests: tokenRequests,
      },
      tokenPort,
    );
    lines.push(
      "auth:",
      "  token:",
      `    realm: http://127.0.0.1:${tokenPort}/token`,
      `    service: ${service}`,
      `    issuer: ${issuer}`,
      `    rootcertbundle: ${JSON.stringify(signer.cert)}`,
    );
  }

  const configFile = join(dir, "config.yml");
  writeFileSync(configFile, lines.join("\n") + "\n");
  const registryProcess = startProcess("docker-registry", ["serve", configFile], {
    logFile: join(dir, "registry.log"),
  });

  const url = `${options.tls ? "https" : "http"}://${host}`;
  const stop = async () => {
    await registryProcess.stop();
    if (tokenServer) await new Promise<void>((resolve) => tokenServer?.close(() => resolve()));
    await removeDir(dir);
  };
  try {
    await waitFor(`docker-registry on ${host}`, () => portOpen(port), {
      process: registryProcess,
      timeoutMs: 15_000,
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    host,
    url,
    username,
    password,
    identityToken,
    caFile,
    tokenRequests,
    dir,
    process: registryProcess,
    stop,
  };
}

/** Returns the `sha256:` digest of bytes, for building test images. */
export function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
