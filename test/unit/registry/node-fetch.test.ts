import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer, Server as HttpsServer } from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { nodeFetch } from "../../../src/registry/node-fetch.ts";
import { freePort, makeTempDir, removeDir, which } from "../../services/common.ts";

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const moduleFile = fileURLToPath(new URL("../../../src/registry/node-fetch.ts", import.meta.url));

const offNode = "Bun" in globalThis || "Deno" in globalThis;
const skipOffNode = offNode
  ? "nodeFetch returns undefined on Deno and Bun, which keep their native fetch"
  : false;

/** A request as the test server received it. */
interface Received {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
  connection: number;
}

type Handler = (request: Received, response: ServerResponse) => void;

/** An HTTP server on 127.0.0.1 that records requests and counts connections. */
class TestServer {
  readonly received: Received[] = [];
  connections = 0;
  port = 0;
  private readonly server: Server;

  private readonly protocol: "http" | "https";

  constructor(handler: Handler, server: Server = createHttpServer()) {
    this.server = server;
    this.protocol = server instanceof HttpsServer ? "https" : "http";
    server.on("connection", (socket) => {
      this.connections++;
      (socket as { testId?: number }).testId = this.connections;
    });
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const received: Received = {
          method: request.method ?? "",
          url: request.url ?? "",
          headers: request.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          connection: (request.socket as { testId?: number }).testId ?? 0,
        };
        this.received.push(received);
        handler(received, response);
      });
    });
  }

  get origin(): string {
    return `${this.protocol}://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function withServer(handler: Handler, body: (server: TestServer) => Promise<void>) {
  const server = await new TestServer(handler).start();
  try {
    await body(server);
  } finally {
    await server.stop();
  }
}

function reply(response: ServerResponse, status: number, body = "", headers = {}): void {
  response.writeHead(status, { "content-length": Buffer.byteLength(body), ...headers });
  response.end(body);
}

function redirectTo(response: ServerResponse, status: number, location: string): void {
  reply(response, status, "", { location });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("nodeFetch off Node", { skip: offNode ? false : "runs only on Deno and Bun" }, () => {
  assert.equal(nodeFetch(), undefined);
});

describe("nodeFetch on Node", { skip: skipOffNode }, () => {
  const fetcher = nodeFetch() as typeof fetch;

  test("returns a function", () => {
    assert.equal(typeof fetcher, "function");
  });

  test("rejects invalid timeout option", () => {
    assert.throws(() => nodeFetch({ headersTimeoutMs: 0 }), /invalid headersTimeoutMs 0/);
  });

  test("status, headers and body round trip", async () => {
    await withServer(
      (_request, response) => {
        response.statusMessage = "Made";
        response.setHeader("Content-Type", "application/json");
        response.setHeader("X-Multi", ["a", "b"]);
        reply(response, 201, '{"name":"fairing"}');
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/v2/?q=1`, {
          headers: { "X-Custom": "yes" },
        });
        assert.equal(response.status, 201);
        assert.equal(response.statusText, "Made");
        assert.equal(response.ok, true);
        assert.equal(response.url, `${server.origin}/v2/?q=1`);
        assert.equal(response.redirected, false);
        assert.equal(response.headers.get("content-type"), "application/json");
        assert.equal(response.headers.get("CONTENT-TYPE"), "application/json");
        assert.equal(response.headers.has("X-Multi"), true);
        assert.equal(response.headers.get("x-multi"), "a, b");
        assert.equal(response.headers.get("x-missing"), null);
        assert.deepEqual(await response.json(), { name: "fairing" });
        assert.equal(server.received[0]?.headers["x-custom"], "yes");
        assert.equal(server.received[0]?.headers.accept, "*/*");
      },
    );
  });

  test("body stream and arrayBuffer", async () => {
    await withServer(
      (_request, response) => reply(response, 200, "x".repeat(200_000)),
      async (server) => {
        const first = await fetcher(`${server.origin}/blob`);
        assert.ok(first.body instanceof ReadableStream);
        let total = 0;
        for await (const chunk of first.body as unknown as AsyncIterable<Uint8Array>) {
          assert.ok(chunk instanceof Uint8Array);
          total += chunk.byteLength;
        }
        assert.equal(total, 200_000);

        const second = await fetcher(`${server.origin}/blob`);
        const bytes = await second.arrayBuffer();
        assert.equal(bytes.byteLength, 200_000);
        assert.equal(second.bodyUsed, true);
        await assert.rejects(second.text(), /already read/);
        assert.equal(server.connections, 1);
      },
    );
  });

  test("HEAD has null body", async () => {
    await withServer(
      (_request, response) => {
        response.writeHead(200, { "content-length": "1234", "docker-content-digest": "sha256:ab" });
        response.end();
      },
      async (server) => {
        const first = await fetcher(`${server.origin}/v2/app/blobs/x`, { method: "HEAD" });
        assert.equal(first.status, 200);
        assert.equal(first.body, null);
        assert.equal(first.headers.get("content-length"), "1234");
        assert.equal(await first.text(), "");
        const second = await fetcher(`${server.origin}/v2/app/blobs/x`, { method: "head" });
        assert.equal(second.status, 200);
        assert.equal(server.received[1]?.method, "HEAD");
        assert.equal(server.connections, 1);
      },
    );
  });

  test("204 has null body", async () => {
    await withServer(
      (_request, response) => {
        response.writeHead(204);
        response.end();
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/v2/`, { method: "DELETE" });
        assert.equal(response.status, 204);
        assert.equal(response.body, null);
      },
    );
  });

  test("POST sends Content-Length", async () => {
    await withServer(
      (request, response) => reply(response, 202, request.body),
      async (server) => {
        const bytes = new TextEncoder().encode("layer bytes");
        const response = await fetcher(`${server.origin}/upload`, { method: "POST", body: bytes });
        assert.equal(await response.text(), "layer bytes");
        const received = server.received[0];
        assert.equal(received?.headers["content-length"], String(bytes.byteLength));
        assert.equal(received?.headers["transfer-encoding"], undefined);

        await fetcher(`${server.origin}/form`, { method: "POST", body: "a=1" }).then((r) =>
          r.text(),
        );
        assert.equal(server.received[1]?.body, "a=1");
        assert.equal(server.received[1]?.headers["content-type"], "text/plain;charset=UTF-8");

        await fetcher(`${server.origin}/empty`, { method: "PUT" }).then((r) => r.text());
        assert.equal(server.received[2]?.headers["content-length"], "0");
        assert.equal(server.received[2]?.headers["transfer-encoding"], undefined);
      },
    );
  });

  test("large PUT body arrives whole", async () => {
    await withServer(
      (request, response) => reply(response, 201, String(request.body.length)),
      async (server) => {
        const body = new Uint8Array(3 * 1024 * 1024 + 7).fill(0x61);
        const response = await fetcher(`${server.origin}/chunk`, { method: "PUT", body });
        assert.equal(await response.text(), String(body.byteLength));
        assert.equal(server.received[0]?.headers["content-length"], String(body.byteLength));
        assert.equal(server.received[0]?.headers["transfer-encoding"], undefined);
      },
    );
  });

  test("stream body sent chunked", async () => {
    await withServer(
      (request, response) => reply(response, 202, String(request.body.length)),
      async (server) => {
        const pieces = ["stream", "ed ", "layer"].map((text) => new TextEncoder().encode(text));
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            for (const piece of pieces) controller.enqueue(piece);
            controller.close();
          },
        });
        const response = await fetcher(`${server.origin}/patch`, {
          method: "PATCH",
          body,
          duplex: "half",
        } as RequestInit);
        assert.equal(await response.text(), "14");
        assert.equal(server.received[0]?.body, "streamed layer");
        assert.equal(server.received[0]?.headers["transfer-encoding"], "chunked");
        assert.equal(server.received[0]?.headers["content-length"], undefined);
      },
    );
  });

  test("failing stream body rejects", async () => {
    await withServer(
      (_request, response) => reply(response, 202, ""),
      async (server) => {
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.error(new Error("the archive failed"));
          },
        });
        await assert.rejects(
          fetcher(`${server.origin}/patch`, {
            method: "PATCH",
            body,
            duplex: "half",
          } as RequestInit),
          TypeError,
        );
      },
    );
  });

  test("307 with stream body rejects", async () => {
    await withServer(
      (_request, response) => redirectTo(response, 307, "/next"),
      async (server) => {
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new Uint8Array([1, 2, 3]));
            controller.close();
          },
        });
        await assert.rejects(
          fetcher(`${server.origin}/start`, {
            method: "PATCH",
            body,
            duplex: "half",
          } as RequestInit),
          /streamed body again/,
        );
        assert.equal(server.received.length, 1);
      },
    );
  });

  test("GET with body rejects", async () => {
    await assert.rejects(fetcher("http://127.0.0.1:9/", { body: "x" }), TypeError);
  });

  test("307 resends method and body", async () => {
    await withServer(
      (request, response) => {
        if (request.url === "/start") redirectTo(response, 307, "/next");
        else reply(response, 201, `${request.method} ${request.body}`);
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/start`, {
          method: "PUT",
          headers: { "Content-Type": "application/octet-stream" },
          body: new TextEncoder().encode("chunk"),
        });
        assert.equal(await response.text(), "PUT chunk");
        assert.equal(response.redirected, true);
        assert.equal(response.url, `${server.origin}/next`);
        assert.equal(server.received[1]?.headers["content-type"], "application/octet-stream");
        assert.equal(server.connections, 1);
      },
    );
  });

  test("303 turns into GET", async () => {
    await withServer(
      (request, response) => {
        if (request.url === "/start") redirectTo(response, 303, "/next");
        else reply(response, 200, `${request.method} ${request.body}`);
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/start`, {
          method: "PUT",
          headers: { "Content-Type": "application/json" },
          body: "{}",
        });
        assert.equal(await response.text(), "GET ");
        assert.equal(server.received[1]?.headers["content-type"], undefined);
        assert.equal(server.received[1]?.headers["content-length"], undefined);
      },
    );
  });

  test("302 turns POST into GET", async () => {
    await withServer(
      (request, response) => {
        if (request.url === "/start") redirectTo(response, 302, "/next");
        else reply(response, 200, request.method);
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/start`, { method: "POST", body: "x" });
        assert.equal(await response.text(), "GET");
      },
    );
  });

  test("cross-origin redirect drops Authorization", async () => {
    await withServer(
      (_request, response) => reply(response, 200, "blob"),
      async (storage) => {
        await withServer(
          (_request, response) => redirectTo(response, 307, `${storage.origin}/bucket/blob?sig=1`),
          async (registry) => {
            const response = await fetcher(`${registry.origin}/v2/app/blobs/sha256:ab`, {
              headers: {
                Authorization: "Bearer secret-token",
                Cookie: "a=b",
                "Proxy-Authorization": "Basic cHJveHk6cGFzcw==",
                "X-Keep": "1",
              },
            });
            assert.equal(await response.text(), "blob");
            assert.equal(response.url, `${storage.origin}/bucket/blob?sig=1`);
            assert.equal(registry.received[0]?.headers.authorization, "Bearer secret-token");
            const forwarded = storage.received[0]?.headers;
            assert.equal(forwarded?.authorization, undefined);
            assert.equal(forwarded?.cookie, undefined);
            assert.equal(forwarded?.["proxy-authorization"], undefined);
            assert.equal(forwarded?.["x-keep"], "1");
          },
        );
      },
    );
  });

  test("same-origin redirect keeps Authorization", async () => {
    await withServer(
      (request, response) => {
        if (request.url === "/start") redirectTo(response, 302, "/next");
        else reply(response, 200, "ok");
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/start`, {
          headers: { Authorization: "Basic dXNlcjpwYXNz" },
        });
        assert.equal(await response.text(), "ok");
        assert.equal(server.received[1]?.headers.authorization, "Basic dXNlcjpwYXNz");
      },
    );
  });

  test("manual redirect returns 3xx", async () => {
    await withServer(
      (_request, response) => redirectTo(response, 307, "/elsewhere"),
      async (server) => {
        const response = await fetcher(`${server.origin}/start`, { redirect: "manual" });
        assert.equal(response.status, 307);
        assert.equal(response.headers.get("location"), "/elsewhere");
        assert.equal(response.redirected, false);
        await response.body?.cancel();
        assert.equal(server.received.length, 1);
      },
    );
  });

  test("error redirect mode rejects", async () => {
    await withServer(
      (_request, response) => redirectTo(response, 301, "/elsewhere"),
      async (server) => {
        await assert.rejects(fetcher(`${server.origin}/start`, { redirect: "error" }), TypeError);
        assert.equal(server.received.length, 1);
      },
    );
  });

  test("redirect limit rejects", async () => {
    await withServer(
      (request, response) => redirectTo(response, 302, `${request.url}x`),
      async (server) => {
        await assert.rejects(fetcher(`${server.origin}/loop`), /more than 20 redirects/);
        assert.equal(server.received.length, 21);
      },
    );
  });

  test("connection refused has cause code", async () => {
    const port = await freePort();
    const error = await fetcher(`http://127.0.0.1:${port}/v2/`, {
      headers: { Authorization: "Bearer secret-token" },
    }).then(
      () => undefined,
      (reason: unknown) => reason as TypeError & { cause?: { code?: string } },
    );
    assert.ok(error instanceof TypeError);
    assert.equal(error.cause?.code, "ECONNREFUSED");
    assert.match(error.message, new RegExp(`GET http://127.0.0.1:${port}/v2/ failed`));
    assert.doesNotMatch(error.message, /secret-token/);
  });

  test("abort while waiting for headers", { timeout: 10_000 }, async () => {
    await withServer(
      () => {},
      async (server) => {
        const controller = new AbortController();
        const reason = new Error("stopped by test");
        setTimeout(() => controller.abort(reason), 50);
        await assert.rejects(
          fetcher(`${server.origin}/slow`, { signal: controller.signal }),
          (error) => error === reason,
        );
      },
    );
  });

  test("aborted signal rejects at once", async () => {
    await withServer(
      (_request, response) => reply(response, 200),
      async (server) => {
        const signal = AbortSignal.abort();
        await assert.rejects(fetcher(`${server.origin}/`, { signal }), { name: "AbortError" });
        assert.equal(server.connections, 0);
      },
    );
  });

  test("abort while reading body", { timeout: 10_000 }, async () => {
    await withServer(
      (_request, response) => {
        response.writeHead(200, { "content-length": "100000" });
        response.write("x".repeat(1000));
      },
      async (server) => {
        const controller = new AbortController();
        const response = await fetcher(`${server.origin}/`, { signal: controller.signal });
        const reason = new Error("stopped by test");
        setTimeout(() => controller.abort(reason), 50);
        await assert.rejects(response.text(), (error) => error === reason);
      },
    );
  });

  test("headers timeout rejects", { timeout: 10_000 }, async () => {
    await withServer(
      () => {},
      async (server) => {
        const quick = nodeFetch({ headersTimeoutMs: 100 }) as typeof fetch;
        const started = Date.now();
        const error = await quick(`${server.origin}/v2/`).then(
          () => undefined,
          (reason: unknown) =>
            reason as TypeError & { cause?: { code?: string; message?: string } },
        );
        assert.ok(error instanceof TypeError);
        assert.equal(error.cause?.code, "UND_ERR_HEADERS_TIMEOUT");
        assert.match(error.cause?.message ?? "", /no response headers within 100 ms/);
        assert.ok(Date.now() - started < 5000);
      },
    );
  });

  test("body timeout rejects", { timeout: 10_000 }, async () => {
    await withServer(
      (_request, response) => {
        response.writeHead(200, { "content-length": "100000" });
        response.write("x".repeat(1000));
      },
      async (server) => {
        const quick = nodeFetch({ bodyTimeoutMs: 100 }) as typeof fetch;
        const response = await quick(`${server.origin}/blob`);
        const error = await response.text().then(
          () => undefined,
          (reason: unknown) => reason as TypeError & { cause?: { code?: string } },
        );
        assert.ok(error instanceof TypeError);
        assert.equal(error.cause?.code, "UND_ERR_BODY_TIMEOUT");
      },
    );
  });

  test("cancel reuses the socket", async () => {
    await withServer(
      (_request, response) => reply(response, 404, '{"errors":[{"code":"BLOB_UNKNOWN"}]}'),
      async (server) => {
        const first = await fetcher(`${server.origin}/v2/app/blobs/x`);
        assert.equal(first.status, 404);
        await first.body?.cancel();
        const second = await fetcher(`${server.origin}/v2/app/blobs/x`);
        await second.body?.cancel();
        assert.equal(server.received.length, 2);
        assert.equal(server.connections, 1);
      },
    );
  });

  test("cancel destroys a large body", { timeout: 10_000 }, async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    await withServer(
      (request, response) => {
        if (request.url === "/large") {
          response.writeHead(200, { "content-length": String(8 * 1024 * 1024) });
          response.write(Buffer.alloc(64 * 1024));
          response.on("close", () => closed());
        } else {
          reply(response, 200, "small");
        }
      },
      async (server) => {
        const large = await fetcher(`${server.origin}/large`);
        await large.body?.cancel();
        await serverSawClose;
        const small = await fetcher(`${server.origin}/small`);
        assert.equal(await small.text(), "small");
        assert.equal(server.connections, 2);
      },
    );
  });

  test("cancel stops draining an unsized body", { timeout: 10_000 }, async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    await withServer(
      (_request, response) => {
        // No Content-Length: Node sends the body chunked.
        response.writeHead(200);
        response.write(Buffer.alloc(2 * 1024 * 1024));
        response.on("close", () => closed());
      },
      async (server) => {
        const response = await fetcher(`${server.origin}/stream`);
        await response.body?.cancel();
        await serverSawClose;
        assert.equal(server.connections, 1);
      },
    );
  });

  test("retries GET on a closed kept-alive socket", async () => {
    const perConnection = new Map<number, number>();
    await withServer(
      (request, response) => {
        const count = (perConnection.get(request.connection) ?? 0) + 1;
        perConnection.set(request.connection, count);
        // The second request on a connection finds it closed, as after a server idle timeout.
        if (count === 2) response.socket?.destroy();
        else reply(response, 200, "ok");
      },
      async (server) => {
        assert.equal(await (await fetcher(`${server.origin}/a`)).text(), "ok");
        assert.equal(await (await fetcher(`${server.origin}/b`)).text(), "ok");
        assert.equal(server.connections, 2);
      },
    );
  });

  test("does not retry POST on a closed socket", async () => {
    const perConnection = new Map<number, number>();
    await withServer(
      (request, response) => {
        const count = (perConnection.get(request.connection) ?? 0) + 1;
        perConnection.set(request.connection, count);
        if (count === 2) response.socket?.destroy();
        else reply(response, 202, "ok");
      },
      async (server) => {
        assert.equal(await (await fetcher(`${server.origin}/a`)).text(), "ok");
        const error = await fetcher(`${server.origin}/b`, { method: "POST" }).then(
          () => undefined,
          (reason: unknown) => reason as TypeError & { cause?: { code?: string } },
        );
        assert.ok(error instanceof TypeError);
        assert.equal(error.cause?.code, "ECONNRESET");
        assert.equal(server.received.length, 2);
      },
    );
  });

  test("rejects credentials in the URL", async () => {
    await assert.rejects(fetcher("http://user:pass@127.0.0.1:9/"), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.doesNotMatch(error.message, /pass/);
      return true;
    });
  });

  test("does not load undici", async (t) => {
    await withServer(
      (_request, response) => reply(response, 200, "ok"),
      async (server) => {
        const dir = await makeTempDir("node-fetch");
        try {
          const script = join(dir, "probe.mts");
          await writeFile(
            script,
            `const undici = () => process.moduleLoadList.some((name) => name.includes("undici"));\n` +
              `await import("node:http");\n` +
              `const byHttp = undici();\n` +
              `const { nodeFetch } = await import(${JSON.stringify(moduleFile)});\n` +
              `const response = await nodeFetch()!(${JSON.stringify(`${server.origin}/v2/`)});\n` +
              `const text = await response.text();\n` +
              `process.stdout.write(JSON.stringify({ text, byHttp, loaded: undici() }));\n`,
          );
          const { stdout } = await run(process.execPath, ["--import", "tsx", script], {
            cwd: repoRoot,
            timeout: 30_000,
          });
          const result = JSON.parse(stdout) as { text: string; byHttp: boolean; loaded: boolean };
          assert.equal(result.text, "ok");
          // Node 24's node:http loads undici itself (its fetch is then about as cheap).
          if (result.byHttp) return t.skip("node:http itself loads undici on this Node version");
          assert.equal(result.loaded, false);
        } finally {
          await removeDir(dir);
        }
      },
    );
  });
});

describe("nodeFetch over https", { skip: skipOffNode }, () => {
  const fetcher = nodeFetch() as typeof fetch;
  let dir = "";
  let server: TestServer | undefined;
  let skipReason: string | false = false;

  before(async () => {
    if (!which("openssl")) {
      skipReason = "openssl is not installed, so no self-signed certificate can be made";
      return;
    }
    dir = await makeTempDir("node-fetch-tls");
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ]);
    const tls = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) });
    server = await new TestServer(
      (_request, response) => reply(response, 200, "tls ok"),
      tls,
    ).start();
  });

  after(async () => {
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  test("untrusted certificate has cause code", async (t) => {
    if (skipReason || !server) return t.skip(skipReason || "no https server");
    const error = await fetcher(`https://127.0.0.1:${server.port}/v2/`).then(
      () => undefined,
      (reason: unknown) => reason as TypeError & { cause?: { code?: string } },
    );
    assert.ok(error instanceof TypeError);
    assert.equal(error.cause?.code, "DEPTH_ZERO_SELF_SIGNED_CERT");
  });

  test("https to a plain http port has cause code", async () => {
    await withServer(
      (_request, response) => reply(response, 400, "plain"),
      async (plain) => {
        const error = await fetcher(`https://127.0.0.1:${plain.port}/v2/`).then(
          () => undefined,
          (reason: unknown) => reason as TypeError & { cause?: { code?: string } },
        );
        assert.ok(error instanceof TypeError);
        assert.match(error.cause?.code ?? "", /^(ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)$/);
      },
    );
  });

  test("NODE_EXTRA_CA_CERTS is trusted", async (t) => {
    if (skipReason || !server) return t.skip(skipReason || "no https server");
    const script = join(dir, "probe.mts");
    await writeFile(
      script,
      `import { nodeFetch } from ${JSON.stringify(moduleFile)};\n` +
        `const response = await nodeFetch()!("https://127.0.0.1:${server.port}/v2/");\n` +
        `process.stdout.write(await response.text());\n`,
    );
    const { stdout } = await run(process.execPath, ["--import", "tsx", script], {
      cwd: repoRoot,
      timeout: 30_000,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") },
    });
    assert.equal(stdout, "tls ok");
  });
});
