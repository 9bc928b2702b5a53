import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ChunkHandOff } from "../../../src/registry/hand-off.ts";

/** Returns whether `promise` settled within a few turns of the event loop. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("ChunkHandOff", () => {
  test("write resolves on the next read", async () => {
    const body = new ChunkHandOff();
    const reader = body.readable.getReader();
    const first = body.write(Uint8Array.of(1, 2));
    assert.equal(await settled(first), false, "nobody has read yet");

    assert.deepEqual((await reader.read()).value, Uint8Array.of(1, 2));
    assert.equal(await settled(first), false, "the reader still has the chunk");

    const next = reader.read();
    assert.equal(await settled(first), true);
    const second = body.write(Uint8Array.of(3));
    assert.deepEqual((await next).value, Uint8Array.of(3));
    const end = reader.read();
    await second;
    body.close();
    assert.equal((await end).done, true);
  });

  test("abort fails reader and writes", async () => {
    const body = new ChunkHandOff();
    const reader = body.readable.getReader();
    const write = body.write(Uint8Array.of(1));
    body.abort(new Error("registry went away"));
    await assert.rejects(write, /registry went away/);
    await assert.rejects(reader.read(), /registry went away/);
    await assert.rejects(body.write(Uint8Array.of(2)), /registry went away/);
  });

  test("reader cancel fails writes", async () => {
    const body = new ChunkHandOff();
    const reader = body.readable.getReader();
    const write = body.write(Uint8Array.of(1));
    await reader.read();
    await reader.cancel(new Error("request closed"));
    await assert.rejects(write, /request closed/);
    await assert.rejects(body.write(Uint8Array.of(2)), /request closed/);
  });
});
