/**
 * How the docker builder finds the engine (builder.dockerHost, DOCKER_HOST, TLS settings), how
 * it reads the engine's JSON message stream, and how podman's TLS verification is chosen.
 * The address tests end with a real request to a test dockerd.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  connectDocker,
  describeConnection,
  resolveDockerConnection,
} from "../../src/builders/docker/connection.ts";
import { messageError, OutputTail, readMessages } from "../../src/builders/docker/messages.ts";
import { pushTlsVerify } from "../../src/builders/podman/builder.ts";
import { InputError } from "../../src/errors.ts";
import { serviceUnavailable } from "../services/common.ts";
import { startDockerd, type DockerdService } from "../services/dockerd.ts";

describe("resolveDockerConnection", () => {
  test("dockerHost wins over DOCKER_HOST", () => {
    const connection = resolveDockerConnection("unix:///run/a.sock", {
      DOCKER_HOST: "unix:///run/b.sock",
    });
    assert.equal(connection.socketPath, "/run/a.sock");
    assert.equal(connection.origin, "builder.dockerHost");
  });

  test("default socket", () => {
    const connection = resolveDockerConnection(undefined, {});
    assert.equal(connection.socketPath, "/var/run/docker.sock");
    assert.equal(connection.origin, "default");
  });

  test("tcp without TLS", () => {
    const connection = resolveDockerConnection(undefined, { DOCKER_HOST: "tcp://127.0.0.1:2375" });
    assert.equal(connection.protocol, "http");
    assert.equal(connection.host, "127.0.0.1");
    assert.equal(connection.port, 2375);
    assert.equal(connection.certPath, undefined);
  });

  test("tcp with DOCKER_TLS_VERIFY", () => {
    const connection = resolveDockerConnection(undefined, {
      DOCKER_HOST: "tcp://[::1]:2376",
      DOCKER_TLS_VERIFY: "1",
      DOCKER_CERT_PATH: "/certs",
    });
    assert.equal(connection.protocol, "https");
    assert.equal(connection.host, "::1");
    assert.equal(connection.tlsVerify, true);
    assert.equal(connection.certPath, "/certs");
    assert.equal(describeConnection(connection), "https://[::1]:2376");
  });

  test("port 2376 means TLS without verification", () => {
    const connection = resolveDockerConnection("tcp://localhost:2376", {});
    assert.equal(connection.protocol, "https");
    assert.equal(connection.tlsVerify, false);
    assert.equal(connection.certPath, join(homedir(), ".docker"));
  });

  test("DOCKER_TLS_VERIFY=0 is off", () => {
    const connection = resolveDockerConnection("tcp://h:2375", { DOCKER_TLS_VERIFY: "0" });
    assert.equal(connection.protocol, "http");
  });

  test("rejects ssh hosts", () => {
    assert.throws(() => resolveDockerConnection("ssh://user@host", {}), InputError);
    assert.throws(() => resolveDockerConnection("ssh://user@host", {}), /builder\.dockerHost/);
  });
});

describe("readMessages", () => {
  async function* chunks(parts: string[]) {
    for (const part of parts) yield new TextEncoder().encode(part);
  }

  test("joins lines split across chunks", async () => {
    const messages = [];
    for await (const message of readMessages(
      chunks(['{"stream":"Ste', 'p 1/2\\n"}\n{"aux":{"ID":"sha256:ab"}}\n']),
    )) {
      messages.push(message);
    }
    assert.equal(messages.length, 2);
    assert.equal(messages[0]?.stream, "Step 1/2\n");
    assert.equal(messages[1]?.aux?.ID, "sha256:ab");
  });

  test("keeps non-JSON lines as output", async () => {
    const messages = [];
    for await (const message of readMessages(chunks(["plain text\n", '{"error":"boom"}']))) {
      messages.push(message);
    }
    assert.equal(messages[0]?.stream, "plain text\n");
    assert.equal(messageError(messages[1]!), "boom");
  });

  test("errorDetail wins over error", () => {
    assert.equal(
      messageError({ error: "short", errorDetail: { message: "long text" } }),
      "long text",
    );
    assert.equal(messageError({ stream: "ok\n" }), undefined);
  });
});

describe("OutputTail", () => {
  test("keeps the last lines", () => {
    const tail = new OutputTail(2);
    assert.deepEqual(tail.write("a\nb\nc"), ["a", "b"]);
    assert.deepEqual(tail.lines(), ["b", "c"]);
  });
});

describe("pushTlsVerify", () => {
  test("loopback registries skip verification", () => {
    assert.equal(pushTlsVerify("127.0.0.1:5000", undefined), false);
    assert.equal(pushTlsVerify("localhost:5000", undefined), false);
  });

  test("insecure registries skip verification", () => {
    assert.equal(
      pushTlsVerify("r.example:5000", undefined, { "r.example:5000": { insecure: true } }),
      false,
    );
  });

  test("other registries verify", () => {
    assert.equal(pushTlsVerify("r.example", undefined), true);
  });

  test("explicit setting wins", () => {
    assert.equal(pushTlsVerify("127.0.0.1:5000", true), true);
    assert.equal(pushTlsVerify("r.example", false), false);
  });
});

describe("connectDocker", () => {
  let dockerd: DockerdService | undefined;
  let unavailable = "";

  before(async () => {
    const started = await startDockerd();
    if ("unavailable" in started) unavailable = started.unavailable;
    else dockerd = started;
  });

  after(async () => {
    await dockerd?.stop();
  });

  test("reaches the engine through DOCKER_HOST", async (t) => {
    if (!dockerd) return serviceUnavailable(t, unavailable);
    const docker = await connectDocker(
      resolveDockerConnection(undefined, { DOCKER_HOST: dockerd.host }),
    );
    const version = await docker.version();
    assert.match(version.ApiVersion, /^1\.\d+$/);
  });
});
