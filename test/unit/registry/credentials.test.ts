import assert from "node:assert/strict";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { delimiter, join } from "node:path";
import { FairingError, InputError } from "../../../src/errors.ts";
import { redact } from "../../../src/log.ts";
import {
  normalizeAuthKey,
  resolveCredential,
  runCredentialHelper,
} from "../../../src/registry/credentials.ts";
import { makeTempDir, removeDir } from "../../services/common.ts";

const basic = (user: string, password: string) =>
  Buffer.from(`${user}:${password}`).toString("base64");

let root: string;
let binDir: string;

// A credential helper that returns a password for 127.0.0.1:5001, an identity token for
// 127.0.0.1:5002, "not found" for anything else, and fails for 127.0.0.1:5009.
const HELPER = `#!/bin/sh
read host
[ "$1" = get ] || exit 2
case "$host" in
  127.0.0.1:5001) echo '{"ServerURL":"127.0.0.1:5001","Username":"helper-user","Secret":"helper-secret-1"}' ;;
  127.0.0.1:5002) echo '{"ServerURL":"127.0.0.1:5002","Username":"<token>","Secret":"helper-identity-2"}' ;;
  https://index.docker.io/v1/) echo '{"Username":"hub-user","Secret":"hub-secret-3"}' ;;
  127.0.0.1:5009) echo "keychain locked" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

before(async () => {
  root = await makeTempDir("credentials");
  binDir = join(root, "bin");
  await mkdir(binDir);
  await writeFile(join(binDir, "docker-credential-test"), HELPER);
  await chmod(join(binDir, "docker-credential-test"), 0o755);
});

after(async () => {
  await removeDir(root);
});

async function makeHome(name: string, config: unknown): Promise<string> {
  const home = join(root, name);
  await mkdir(join(home, ".docker"), { recursive: true });
  await writeFile(join(home, ".docker", "config.json"), JSON.stringify(config));
  return home;
}

function envFor(
  home: string,
  extra: Record<string, string> = {},
): Record<string, string | undefined> {
  return { HOME: home, PATH: `${binDir}${delimiter}${process.env.PATH ?? ""}`, ...extra };
}

describe("normalizeAuthKey", () => {
  const cases: [string, string][] = [
    ["https://index.docker.io/v1/", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["https://127.0.0.1:5000/v2/", "127.0.0.1:5000"],
    ["http://localhost:5000", "localhost:5000"],
    ["registry.example.com", "registry.example.com"],
  ];
  for (const [key, expected] of cases) {
    test(`normalises ${key}`, () => {
      assert.equal(normalizeAuthKey(key), expected);
    });
  }
});

describe("resolveCredential", () => {
  test("no config is anonymous", async () => {
    const env = envFor(join(root, "missing-home"));
    assert.equal(await resolveCredential("127.0.0.1:5000", { env }), null);
  });

  test("reads auths auth", async () => {
    const home = await makeHome("auths", {
      auths: { "127.0.0.1:5000": { auth: basic("alice", "alice-pass-1") } },
    });
    const credential = await resolveCredential("127.0.0.1:5000", { env: envFor(home) });
    assert.equal(credential?.username, "alice");
    assert.equal(credential?.password, "alice-pass-1");
  });

  test("registers found secrets", async () => {
    const home = await makeHome("secret", {
      auths: { "127.0.0.1:5000": { auth: basic("bob", "bob-pass-22") } },
    });
    await resolveCredential("127.0.0.1:5000", { env: envFor(home) });
    assert.equal(redact("password bob-pass-22"), "password ***");
  });

  test("matches keys with scheme and path", async () => {
    const home = await makeHome("scheme", {
      auths: { "https://127.0.0.1:5000/v2/": { username: "carol", password: "carol-pass" } },
    });
    const credential = await resolveCredential("127.0.0.1:5000", { env: envFor(home) });
    assert.equal(credential?.username, "carol");
  });

  test("maps docker.io to the index key", async () => {
    const home = await makeHome("hub", {
      auths: { "https://index.docker.io/v1/": { auth: basic("dave", "dave-pass") } },
    });
    const credential = await resolveCredential("docker.io", { env: envFor(home) });
    assert.equal(credential?.username, "dave");
  });

  test("reads identitytoken", async () => {
    const home = await makeHome("identity", {
      auths: { "127.0.0.1:5000": { identitytoken: "identity-token-value" } },
    });
    const credential = await resolveCredential("127.0.0.1:5000", { env: envFor(home) });
    assert.equal(credential?.identityToken, "identity-token-value");
    assert.equal(credential?.password, undefined);
  });

  test("does not match another port", async () => {
    const home = await makeHome("port", {
      auths: { "127.0.0.1:5000": { auth: basic("eve", "eve-pass") } },
    });
    assert.equal(await resolveCredential("127.0.0.1:6000", { env: envFor(home) }), null);
  });

  test("honours DOCKER_CONFIG", async () => {
    const home = await makeHome("ignored-home", {
      auths: { "127.0.0.1:5000": { auth: basic("no", "no-pass") } },
    });
    const configDir = join(root, "docker-config");
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(configDir, "config.json"),
      JSON.stringify({ auths: { "127.0.0.1:5000": { auth: basic("frank", "frank-pass") } } }),
    );
    const credential = await resolveCredential("127.0.0.1:5000", {
      env: envFor(home, { DOCKER_CONFIG: configDir }),
    });
    assert.equal(credential?.username, "frank");
  });

  test("REGISTRY_AUTH_FILE wins", async () => {
    const home = await makeHome("podman", {
      auths: { "127.0.0.1:5000": { auth: basic("docker", "docker-pass") } },
    });
    const authFile = join(root, "auth.json");
    await writeFile(
      authFile,
      JSON.stringify({ auths: { "127.0.0.1:5000": { auth: basic("podman", "podman-pass") } } }),
    );
    const credential = await resolveCredential("127.0.0.1:5000", {
      env: envFor(home, { REGISTRY_AUTH_FILE: authFile }),
    });
    assert.equal(credential?.username, "podman");
  });

  test("auth.json repository scope", async () => {
    const authFile = join(root, "scoped-auth.json");
    await writeFile(
      authFile,
      JSON.stringify({
        auths: {
          "127.0.0.1:5000": { auth: basic("host-user", "host-pass") },
          "127.0.0.1:5000/team": { auth: basic("team-user", "team-pass") },
        },
      }),
    );
    const env = envFor(join(root, "none"), { REGISTRY_AUTH_FILE: authFile });
    const scoped = await resolveCredential("127.0.0.1:5000", { env, repository: "team/app" });
    const other = await resolveCredential("127.0.0.1:5000", { env, repository: "other/app" });
    assert.equal(scoped?.username, "team-user");
    assert.equal(other?.username, "host-user");
  });

  test("credHelpers before auths", async () => {
    const home = await makeHome("helpers", {
      credHelpers: { "127.0.0.1:5001": "test" },
      auths: { "127.0.0.1:5001": { auth: basic("auths-user", "auths-pass") } },
    });
    const credential = await resolveCredential("127.0.0.1:5001", { env: envFor(home) });
    assert.equal(credential?.username, "helper-user");
    assert.equal(credential?.password, "helper-secret-1");
  });

  test("helper token username", async () => {
    const home = await makeHome("helper-token", { credHelpers: { "127.0.0.1:5002": "test" } });
    const credential = await resolveCredential("127.0.0.1:5002", { env: envFor(home) });
    assert.equal(credential?.identityToken, "helper-identity-2");
  });

  test("helper not found is anonymous", async () => {
    const home = await makeHome("helper-none", { credHelpers: { "127.0.0.1:5003": "test" } });
    assert.equal(await resolveCredential("127.0.0.1:5003", { env: envFor(home) }), null);
  });

  test("credsStore after auths", async () => {
    const home = await makeHome("store", {
      credsStore: "test",
      auths: {
        "127.0.0.1:5000": { auth: basic("auths-user", "auths-pass") },
        "127.0.0.1:5001": {},
      },
    });
    const fromAuths = await resolveCredential("127.0.0.1:5000", { env: envFor(home) });
    const fromStore = await resolveCredential("127.0.0.1:5001", { env: envFor(home) });
    assert.equal(fromAuths?.username, "auths-user");
    assert.equal(fromStore?.username, "helper-user");
  });

  test("credsStore for docker.io", async () => {
    const home = await makeHome("store-hub", { credsStore: "test" });
    const credential = await resolveCredential("docker.io", { env: envFor(home) });
    assert.equal(credential?.username, "hub-user");
  });

  test("missing helper names it", async () => {
    const home = await makeHome("helper-missing", { credHelpers: { "127.0.0.1:5000": "absent" } });
    await assert.rejects(resolveCredential("127.0.0.1:5000", { env: envFor(home) }), InputError);
    await assert.rejects(
      resolveCredential("127.0.0.1:5000", { env: envFor(home) }),
      /docker-credential-absent for 127\.0\.0\.1:5000 not found on PATH/,
    );
  });

  test("failing helper names it", async () => {
    const home = await makeHome("helper-fail", { credHelpers: { "127.0.0.1:5009": "test" } });
    await assert.rejects(resolveCredential("127.0.0.1:5009", { env: envFor(home) }), FairingError);
    await assert.rejects(
      resolveCredential("127.0.0.1:5009", { env: envFor(home) }),
      /docker-credential-test failed for 127\.0\.0\.1:5009 \(exit code 3\): keychain locked/,
    );
  });

  test("rejects invalid JSON config", async () => {
    const home = join(root, "bad-json");
    await mkdir(join(home, ".docker"), { recursive: true });
    await writeFile(join(home, ".docker", "config.json"), "{ not json");
    await assert.rejects(
      resolveCredential("127.0.0.1:5000", { env: envFor(home) }),
      /invalid credentials file .*config\.json/,
    );
  });

  test("rejects invalid auth value", async () => {
    const home = await makeHome("bad-auth", {
      auths: { "127.0.0.1:5000": { auth: basic("nocolon", "").slice(0, 8) } },
    });
    await assert.rejects(
      resolveCredential("127.0.0.1:5000", { env: envFor(home) }),
      /invalid "auth" value/,
    );
  });
});

describe("runCredentialHelper", () => {
  test("rejects a path as name", async () => {
    await assert.rejects(
      runCredentialHelper("../evil", "127.0.0.1:5000"),
      /invalid credential helper name/,
    );
  });
});
