import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { RegistryError } from "../../src/errors.ts";
import { OCI_MANIFEST, RegistryClient } from "../../src/registry/index.ts";
import { freePort } from "../services/common.ts";
import { digestOf } from "../services/registry.ts";

type Handler = (request: IncomingMessage, response: ServerResponse, body: Buffer) => void;

/** HTTP server on 127.0.0.1 with a handler each test sets; it records every request. */
interface FaultServer {
  host: string;
  origin: string;
  requests: { method: string; url: string; authorization?: string }[];
  handle(handler: Handler): void;
  close(): Promise<void>;
}

async function startFaultServer(): Promise<FaultServer> {
  let handler: Handler = (_request, response) => response.writeHead(404).end();
  const requests: FaultServer["requests"] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      requests.push({
        method: request.method ?? "",
        url: request.url ?? "",
        authorization: request.headers.authorization,
      });
      handler(request, response, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    requests,
    handle(next) {
      handler = next;
      requests.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

function registryError(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers = {},
) {
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(JSON.stringify({ errors: [{ code, message }] }));
}

const PASSWORD = "fault-password-value";
const TOKEN = "fault-bearer-token-value";

let server: FaultServer;
let other: FaultServer;

before(async () => {
  server = await startFaultServer();
  other = await startFaultServer();
});

after(async () => {
  await server.close();
  await other.close();
});

function client(options: ConstructorParameters<typeof RegistryClient>[1] = {}) {
  return new RegistryClient(server.host, { credential: null, retryDelayMs: 1, ...options });
}

describe("registry errors", () => {
  test("401 names docker login", async () => {
    server.handle((_request, response) =>
      registryError(response, 401, "UNAUTHORIZED", "authentication required", {
        "WWW-Authenticate": 'Basic realm="fault"',
      }),
    );
    const error = await client({ credential: { username: "u", password: PASSWORD } })
      .getManifest("team/app", "v1")
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "UNAUTHORIZED");
    assert.equal(error.method, "GET");
    assert.equal(error.path, "/v2/team/app/manifests/v1");
    assert.match(error.message, new RegExp(`docker login ${server.host}`));
    assert.equal(error.message.includes(PASSWORD), false);
  });

  test("401 retried once", async () => {
    server.handle((_request, response) =>
      registryError(response, 401, "UNAUTHORIZED", "no", {
        "WWW-Authenticate": 'Basic realm="fault"',
      }),
    );
    await client({ credential: { username: "u", password: PASSWORD } })
      .hasBlob("team/app", digestOf("x"))
      .catch(() => {});
    const blobRequests = server.requests.filter((request) => request.url.includes("/blobs/"));
    assert.equal(blobRequests.length, 2);
    assert.ok(blobRequests[1]?.authorization?.startsWith("Basic "));
  });

  test("404 manifest not found", async () => {
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      registryError(response, 404, "MANIFEST_UNKNOWN", "manifest unknown");
    });
    const error = await client()
      .getManifest("team/app", "v1")
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 404);
    assert.equal(error.code, "MANIFEST_UNKNOWN");
    assert.match(error.message, /image not found/);
    assert.match(error.message, /manifest unknown/);
  });

  test("500 retried then fails", async () => {
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      response.writeHead(500, { "Content-Type": "text/plain" }).end("storage exploded");
    });
    const error = await client({ retries: 2 })
      .getManifest("team/app", "v1")
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 500);
    assert.match(error.message, /the registry failed; retry/);
    assert.match(error.message, /storage exploded/);
    assert.equal(server.requests.filter((request) => request.url.includes("manifests")).length, 3);
  });

  test("500 then success", async () => {
    const manifest = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST }),
    );
    let failures = 2;
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      if (failures-- > 0) return response.writeHead(503).end();
      response.writeHead(200, {
        "Content-Type": OCI_MANIFEST,
        "Docker-Content-Digest": digestOf(manifest),
      });
      response.end(manifest);
    });
    const fetched = await client().getManifest("team/app", "v1");
    assert.equal(fetched.digest, digestOf(manifest));
  });

  test("digest mismatch rejected", async () => {
    const manifest = new TextEncoder().encode("{}");
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      response.writeHead(200, {
        "Content-Type": OCI_MANIFEST,
        "Docker-Content-Digest": digestOf("other"),
      });
      response.end(manifest);
    });
    await assert.rejects(
      client().getManifest("team/app", "v1"),
      /have digest sha256:[0-9a-f]{64}, expected/,
    );
  });

  test("connection refused", async () => {
    const port = await freePort();
    const error = await new RegistryClient(`127.0.0.1:${port}`, { credential: null })
      .hasBlob("team/app", digestOf("x"))
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 0);
    assert.match(
      error.message,
      new RegExp(`is the registry running at http://127.0.0.1:${port}\\?`),
    );
  });

  test("bearer token kept secret", async () => {
    server.handle((request, response) => {
      if (request.url?.startsWith("/token")) {
        response.writeHead(200, { "Content-Type": "application/json" });
        return response.end(JSON.stringify({ token: TOKEN, expires_in: 300 }));
      }
      if (request.headers.authorization !== `Bearer ${TOKEN}`) {
        return registryError(response, 401, "UNAUTHORIZED", "token required", {
          "WWW-Authenticate": `Bearer realm="${server.origin}/token",service="fault"`,
        });
      }
      // A registry that echoes the credential it received in its error message.
      registryError(response, 403, "DENIED", `access denied for ${request.headers.authorization}`);
    });
    const error = await client({ credential: { username: "u", password: PASSWORD } })
      .putManifest("team/app", "v1", new TextEncoder().encode("{}"), OCI_MANIFEST)
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 403);
    assert.equal(error.code, "DENIED");
    assert.equal(error.message.includes(TOKEN), false);
    assert.equal(error.message.includes(PASSWORD), false);
    const tokenRequest = server.requests.find((request) => request.url.startsWith("/token"));
    assert.match(tokenRequest?.url ?? "", /scope=repository%3Ateam%2Fapp%3Apull%2Cpush/);
    assert.match(tokenRequest?.url ?? "", /service=fault/);
  });

  test("upload error hides query", async () => {
    const blob = new TextEncoder().encode("blob");
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      if (request.method === "HEAD") return response.writeHead(404).end();
      if (request.method === "POST") {
        return response
          .writeHead(202, { Location: "/v2/team/app/blobs/uploads/abc?_state=STATE-SECRET" })
          .end();
      }
      if (request.method === "DELETE") return response.writeHead(204).end();
      registryError(
        response,
        400,
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
      );
    });
    const error = await client()
      .pushBlob("team/app", digestOf(blob), blob.length, () => streamOf(blob))
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.status, 400);
    assert.equal(error.path, "/v2/team/app/blobs/uploads/abc");
    assert.equal(error.message.includes("STATE-SECRET"), false);
    const put = server.requests.find((request) => request.method === "PUT");
    assert.match(put?.url ?? "", /_state=STATE-SECRET/);
    assert.match(put?.url ?? "", /digest=sha256%3A/);
  });

  test("redirect drops authorization", async () => {
    const blob = new TextEncoder().encode("redirected blob");
    other.handle((_request, response) => response.writeHead(200).end(blob));
    server.handle((request, response) => {
      if (request.url === "/v2/") {
        return response.writeHead(401, { "WWW-Authenticate": 'Basic realm="fault"' }).end();
      }
      response.writeHead(307, { Location: `${other.origin}/storage/blob?sig=abc` }).end();
    });
    const bytes = await client({ credential: { username: "u", password: PASSWORD } }).getBlobBytes(
      "team/app",
      digestOf(blob),
    );
    assert.deepEqual(bytes, blob);
    assert.ok(server.requests.at(-1)?.authorization?.startsWith("Basic "));
    assert.equal(other.requests[0]?.authorization, undefined);
  });

  test("corrupt blob stream errors", async () => {
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      response.writeHead(200).end("not the content");
    });
    const stream = await client().getBlob("team/app", digestOf("expected"));
    await assert.rejects(new Response(stream).arrayBuffer(), /blob content has digest/);
  });

  test("chunk resumes after 500", async () => {
    const blob = new TextEncoder().encode("0123456789abcdefghij");
    const received: string[] = [];
    let failed = false;
    server.handle((request, response, body) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      const location = "/v2/team/app/blobs/uploads/s1";
      if (request.method === "POST") return response.writeHead(202, { Location: location }).end();
      if (request.method === "PATCH") {
        if (!failed && request.headers["content-range"] === "10-19") {
          // Keep half of the chunk, then fail, as a registry that lost the connection would.
          failed = true;
          received.push(body.subarray(0, 5).toString());
          return response.writeHead(500).end();
        }
        received.push(body.toString());
        const end = received.join("").length - 1;
        return response.writeHead(202, { Location: location, Range: `0-${end}` }).end();
      }
      if (request.method === "GET") {
        return response
          .writeHead(204, { Location: location, Range: `0-${received.join("").length - 1}` })
          .end();
      }
      if (request.method === "PUT") {
        return response
          .writeHead(201, { "Docker-Content-Digest": digestOf(received.join("")) })
          .end();
      }
      response.writeHead(405).end();
    });
    await client({ chunkSize: 10 }).uploadBlob("team/app", digestOf(blob), blob.length, () =>
      streamOf(blob),
    );
    assert.equal(received.join(""), "0123456789abcdefghij");
    const ranges = server.requests.filter((request) => request.method === "PATCH").length;
    assert.equal(ranges, 3);
  });

  test("streamed patch failure surfaces", async () => {
    const location = "/v2/team/app/blobs/uploads/s2";
    let received = "";
    server.handle((request, response, body) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      if (request.method === "POST") return response.writeHead(202, { Location: location }).end();
      if (request.method === "PATCH") {
        received = body.toString();
        return registryError(response, 400, "BLOB_UPLOAD_INVALID", "upload rejected");
      }
      if (request.method === "DELETE") return response.writeHead(204).end();
      response.writeHead(405).end();
    });
    const upload = await client().startStreamingUpload("team/app");
    for (const piece of ["abcd", "efgh", "ijkl"])
      await upload.write(new TextEncoder().encode(piece));
    await assert.rejects(upload.finish(digestOf("abcdefghijkl")), /BLOB_UPLOAD_INVALID/);
    await upload.cancel();
    assert.equal(received, "abcdefghijkl");
    const methods = server.requests.map((request) => request.method);
    assert.deepEqual(methods.slice(1), ["POST", "PATCH", "DELETE"]);
  });

  test("early answer stops the writer", async () => {
    // A registry that rejects the upload without reading its body: the producer must get an
    // error from its next writes instead of waiting for a reader that is gone.
    const early = createServer((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      if (request.method === "POST") {
        return response.writeHead(202, { Location: "/v2/team/app/blobs/uploads/s3" }).end();
      }
      if (request.method === "PATCH") {
        response.writeHead(403, { "Content-Type": "application/json", Connection: "close" });
        response.end(JSON.stringify({ errors: [{ code: "DENIED", message: "quota exceeded" }] }));
        return;
      }
      response.writeHead(204).end();
    });
    await new Promise<void>((resolve) => early.listen(0, "127.0.0.1", resolve));
    const port = (early.address() as { port: number }).port;
    try {
      const streaming = new RegistryClient(`127.0.0.1:${port}`, { credential: null });
      const upload = await streaming.startStreamingUpload("team/app");
      const piece = new Uint8Array(256 * 1024);
      const written = (async () => {
        for (let count = 0; count < 400; count++) await upload.write(piece);
      })();
      await assert.rejects(written);
      await upload.cancel();
    } finally {
      early.closeAllConnections();
      await new Promise<void>((resolve) => early.close(() => resolve()));
    }
  });

  test("loopback probe skips https", async () => {
    const messages: string[] = [];
    const record = (message: string) => void messages.push(message);
    const logger = { debug: record, info: record, warn: record, error: record, progress() {} };
    server.handle((request, response) => {
      if (request.url === "/v2/") return response.writeHead(200).end("{}");
      response.writeHead(404).end();
    });
    assert.equal(await client({ logger }).hasBlob("team/app", digestOf("x")), false);
    assert.deepEqual(
      server.requests.map((request) => `${request.method} ${request.url}`),
      ["GET /v2/", `HEAD /v2/team/app/blobs/${digestOf("x")}`],
    );
    assert.ok(!messages.some((message) => message.includes("https")), messages.join("\n"));
  });
});
