import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  basicAuthorization,
  parseAuthChallenges,
  repositoryScope,
} from "../../../src/registry/auth.ts";
import { redact } from "../../../src/log.ts";

describe("parseAuthChallenges", () => {
  test("parses a Bearer challenge", () => {
    const [challenge] = parseAuthChallenges(
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push"',
    );
    assert.equal(challenge?.scheme, "bearer");
    assert.equal(challenge?.params.realm, "https://auth.example.com/token");
    assert.equal(challenge?.params.service, "registry.example.com");
    assert.equal(challenge?.params.scope, "repository:team/app:pull,push");
  });

  test("parses a Basic challenge", () => {
    const challenges = parseAuthChallenges('Basic realm="fairing test"');
    assert.equal(challenges.length, 1);
    assert.equal(challenges[0]?.scheme, "basic");
    assert.equal(challenges[0]?.params.realm, "fairing test");
  });

  test("parses several challenges", () => {
    const challenges = parseAuthChallenges(
      'Basic realm="a", Bearer realm="https://t/token",service=s',
    );
    assert.deepEqual(
      challenges.map((challenge) => challenge.scheme),
      ["basic", "bearer"],
    );
    assert.equal(challenges[1]?.params.service, "s");
  });

  test("keeps escaped quotes", () => {
    const [challenge] = parseAuthChallenges('Bearer realm="a\\"b",error="insufficient_scope"');
    assert.equal(challenge?.params.realm, 'a"b');
    assert.equal(challenge?.params.error, "insufficient_scope");
  });

  test("lowercases parameter names", () => {
    const [challenge] = parseAuthChallenges('BEARER Realm="r", Service="s"');
    assert.equal(challenge?.scheme, "bearer");
    assert.equal(challenge?.params.realm, "r");
    assert.equal(challenge?.params.service, "s");
  });

  test("returns nothing for empty", () => {
    assert.deepEqual(parseAuthChallenges(""), []);
  });
});

describe("repositoryScope", () => {
  test("joins actions", () => {
    assert.equal(repositoryScope("team/app", ["pull", "push"]), "repository:team/app:pull,push");
  });
});

describe("basicAuthorization", () => {
  test("encodes user and password", () => {
    const value = basicAuthorization({ username: "user", password: "pässword" });
    const decoded = Buffer.from(value.slice("Basic ".length), "base64").toString("utf8");
    assert.equal(decoded, "user:pässword");
  });

  test("registers the value as secret", () => {
    const value = basicAuthorization({ username: "someone", password: "hunter2-secret" });
    assert.equal(redact(`header ${value}`).includes(value.slice(6)), false);
  });
});
