import { createHash } from "node:crypto";

/** Returns the lowercase hex sha256 of `data`. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Returns the `sha256:<hex>` digest of `data`. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${sha256Hex(data)}`;
}

/** Serialises `value` as canonical JSON bytes (no whitespace, keys in insertion order). */
export function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}
