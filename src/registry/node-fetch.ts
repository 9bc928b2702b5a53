/**
 * A `fetch` on node:http and node:https for the registry client on Node. Node 20's global `fetch`
 * loads undici and compiles its llhttp WebAssembly on first use. On Node 20.20 under tsx, one
 * loopback GET through it peaked about 30 MiB higher in RSS and took about 15 ms longer than
 * through this module (measured with /usr/bin/time, so an estimate for other machines).
 * This module implements the part of `fetch` the registry client uses, with fetch's redirect,
 * abort and error behavior. It never touches the global `fetch`, `Request`, `Response` or
 * `Headers`, because that would load undici. Deno and Bun keep their native fetch.
 */
import http from "node:http";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import { FairingError } from "../errors.ts";

/** Timeouts of a `nodeFetch` function, both in milliseconds. */
export interface NodeFetchOptions {
  /**
   * Maximum wait for the response headers. It counts from the request start or from the last
   * slice of request body the socket accepted. Default 300 000, as undici's headersTimeout.
   */
  headersTimeoutMs?: number;
  /** Maximum time without body data while the body is read; default 300 000, as undici's bodyTimeout. */
  bodyTimeoutMs?: number;
}

interface Timeouts {
  headersMs: number;
  bodyMs: number;
}

const DEFAULT_TIMEOUT_MS = 300_000;
/** Redirects followed per request, as in the fetch standard. */
const MAX_REDIRECTS = 20;
/** A cancelled body with more left than this is dropped with its socket instead of drained. */
const MAX_DRAIN_BYTES = 1024 * 1024;
const MAX_SOCKETS_PER_HOST = 16;
const WRITE_SLICE_BYTES = 64 * 1024;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Statuses whose response has no body, from the fetch standard. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
/** Methods a request may be resent with after a kept-alive socket turned out closed. */
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);
/** Methods fetch normalizes to upper case; others are sent as given. */
const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
/** Headers that describe a request body, removed when a redirect turns the request into a GET. */
const BODY_HEADERS = ["content-encoding", "content-language", "content-location", "content-type"];
/** Headers removed on a redirect to another origin, as undici does. */
const CROSS_ORIGIN_HEADERS = ["authorization", "cookie", "proxy-authorization"];
/** Headers this module sets itself, because a caller's value would break the message framing. */
const FRAMING_HEADERS = ["content-length", "transfer-encoding", "connection", "keep-alive"];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

let httpAgent: http.Agent | undefined;
let httpsAgent: https.Agent | undefined;

// One keep-alive agent per protocol for the whole process, so consecutive requests to a
// registry reuse its connection. The https agent gets no `ca` option, so Node's default trust
// store applies, including NODE_EXTRA_CA_CERTS.
function agentFor(url: URL): http.Agent {
  if (url.protocol === "https:") {
    httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST });
    return httpsAgent;
  }
  httpAgent ??= new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST });
  return httpAgent;
}

/**
 * Creates a fetch-compatible function on node:http and node:https, or returns undefined on Deno
 * and Bun, whose native fetch is cheap. It supports string and URL inputs, the `method`,
 * `headers`, `body` (bytes, string, URLSearchParams or a ReadableStream sent with chunked
 * encoding), `redirect` and `signal` options, and returns responses with `status`, `headers`, a
 * lazily created `body` stream, `text()`, `json()` and `arrayBuffer()`.
 */
export function nodeFetch(options: NodeFetchOptions = {}): typeof fetch | undefined {
  if ("Bun" in globalThis || "Deno" in globalThis) return undefined;
  const timeouts: Timeouts = {
    headersMs: checkTimeout("headersTimeoutMs", options.headersTimeoutMs),
    bodyMs: checkTimeout("bodyTimeoutMs", options.bodyTimeoutMs),
  };
  const fetcher = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
    fetchFollowing(input, init ?? {}, timeouts);
  return fetcher as typeof fetch;
}

function checkTimeout(name: string, value: number | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(value) || value <= 0) {
    throw new FairingError(`invalid ${name} ${value}: expected a positive integer of milliseconds`);
  }
  return value;
}

/** A request as sent on one hop of a redirect chain. */
interface Hop {
  url: URL;
  method: string;
  headers: Map<string, string>;
  /** Bytes, or a stream sent with chunked encoding, which cannot be sent twice. */
  body: Uint8Array | ReadableStream<Uint8Array> | undefined;
}

async function fetchFollowing(
  input: RequestInfo | URL,
  init: RequestInit,
  timeouts: Timeouts,
): Promise<Response> {
  const signal = init.signal ?? undefined;
  signal?.throwIfAborted();

  const hop: Hop = {
    url: parseUrl(input),
    method: normalizeMethod(init.method ?? "GET"),
    headers: requestHeaders(init.headers),
    body: undefined,
  };
  hop.body = requestBody(init.body, hop.headers);
  if (hop.body && (hop.method === "GET" || hop.method === "HEAD")) {
    throw new TypeError(`invalid ${hop.method} request to ${describeUrl(hop.url)}: it has a body`);
  }
  const redirect = init.redirect ?? "follow";
  if (redirect !== "follow" && redirect !== "manual" && redirect !== "error") {
    throw new TypeError(`invalid redirect mode "${redirect}": expected follow, manual or error`);
  }

  for (let hops = 0; ; hops++) {
    const response = await sendWithRetry(hop, signal, timeouts);
    const body = new ResponseBody(response, describeRequest(hop), timeouts.bodyMs, signal);
    const location = REDIRECT_STATUSES.has(response.statusCode ?? 0)
      ? headerValue(response, "location")
      : undefined;

    if (location === undefined || redirect === "manual") {
      const nullBody = hop.method === "HEAD" || NULL_BODY_STATUSES.has(response.statusCode ?? 0);
      // Draining an empty body returns the socket to the agent before the caller's next request.
      if (nullBody) await body.discard();
      return new NodeResponse(
        response,
        hop.url,
        hops > 0,
        nullBody ? null : body,
      ) as unknown as Response;
    }

    await body.discard();
    if (redirect === "error") {
      throw new TypeError(
        `${describeRequest(hop)} was redirected with status ${response.statusCode}, ` +
          `but the redirect mode is "error"`,
      );
    }
    if (hops >= MAX_REDIRECTS) {
      throw new TypeError(
        `${describeRequest(hop)} failed: more than ${MAX_REDIRECTS} redirects; ` +
          `check the server for a redirect loop`,
      );
    }
    followRedirect(hop, response.statusCode ?? 0, location);
  }
}

// Updates `hop` for the next request after a redirect, following the fetch standard's
// HTTP-redirect fetch steps.
function followRedirect(hop: Hop, status: number, location: string): void {
  let next: URL;
  try {
    next = new URL(location, hop.url);
  } catch (error) {
    throw new TypeError(`${describeRequest(hop)} returned an invalid Location header`, {
      cause: error,
    });
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new TypeError(
      `${describeRequest(hop)} redirected to an unsupported ${next.protocol} URL; ` +
        `only http and https are followed`,
    );
  }
  if (next.username || next.password) {
    throw new TypeError(`${describeRequest(hop)} redirected to a URL with credentials`);
  }

  const toGet =
    (status === 303 && hop.method !== "GET" && hop.method !== "HEAD") ||
    ((status === 301 || status === 302) && hop.method === "POST");
  if (!toGet && isStream(hop.body)) {
    // As in fetch: the stream was read by the first request and cannot be sent again.
    throw new TypeError(
      `${describeRequest(hop)} was redirected with status ${status}, which would send its ` +
        `streamed body again`,
    );
  }
  if (toGet) {
    hop.method = "GET";
    hop.body = undefined;
    for (const name of BODY_HEADERS) hop.headers.delete(name);
  }
  if (next.origin !== hop.url.origin) {
    // Credentials for the registry must never reach another host, such as a blob storage.
    for (const name of CROSS_ORIGIN_HEADERS) hop.headers.delete(name);
  }
  hop.url = next;
}

function parseUrl(input: RequestInfo | URL): URL {
  if (typeof input !== "string" && !(input instanceof URL)) {
    throw new TypeError("invalid fetch input: expected a URL or a string, not a Request object");
  }
  let url: URL;
  try {
    url = new URL(input);
  } catch (error) {
    throw new TypeError(`invalid URL "${String(input).split("?")[0]}": expected an absolute URL`, {
      cause: error,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`unsupported URL scheme ${url.protocol} in ${describeUrl(url)}`);
  }
  if (url.username || url.password) {
    throw new TypeError(
      `invalid URL ${describeUrl(url)}: it contains credentials; send them in a header`,
    );
  }
  return url;
}

function normalizeMethod(method: string): string {
  if (!TOKEN.test(method)) throw new TypeError(`invalid HTTP method "${method}"`);
  const upper = method.toUpperCase();
  if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK") {
    throw new TypeError(`HTTP method ${upper} is not allowed in fetch`);
  }
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

function requestHeaders(init: HeadersInit | undefined): Map<string, string> {
  const headers = new Map<string, string>();
  const add = (name: string, value: string) => {
    if (!TOKEN.test(name)) throw new TypeError(`invalid request header name "${name}"`);
    // The value may be a secret, so the message names only the header.
    const trimmed = String(value).trim();
    if (/[\r\n\0]/.test(trimmed)) {
      throw new TypeError(`invalid value of request header ${name}: it contains CR, LF or NUL`);
    }
    const key = name.toLowerCase();
    const existing = headers.get(key);
    headers.set(key, existing === undefined ? trimmed : `${existing}, ${trimmed}`);
  };

  if (init === undefined || init === null) {
    // No headers.
  } else if (Array.isArray(init)) {
    for (const pair of init) {
      if (pair.length !== 2)
        throw new TypeError("invalid request header: expected a name/value pair");
      add(pair[0] as string, pair[1] as string);
    }
  } else if (
    typeof (init as Headers).forEach === "function" &&
    typeof (init as Headers).get === "function"
  ) {
    (init as Headers).forEach((value, name) => add(name, value));
  } else {
    for (const [name, value] of Object.entries(init as Record<string, string>)) add(name, value);
  }

  for (const name of FRAMING_HEADERS) headers.delete(name);
  // NOTE: unlike fetch, no Accept-Encoding is sent and a response's Content-Encoding is not
  // decoded. A server that compresses without being asked returns the encoded bytes.
  if (!headers.has("accept")) headers.set("accept", "*/*");
  return headers;
}

// Returns the body as bytes and sets the Content-Type fetch implies for strings and forms.
function requestBody(
  body: BodyInit | null | undefined,
  headers: Map<string, string>,
): Uint8Array | ReadableStream<Uint8Array> | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") {
    if (!headers.has("content-type")) headers.set("content-type", "text/plain;charset=UTF-8");
    return Buffer.from(body, "utf8");
  }
  if (body instanceof URLSearchParams) {
    if (!headers.has("content-type")) {
      headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
    }
    return Buffer.from(body.toString(), "utf8");
  }
  if (isStream(body)) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body))
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  const kind = (body as object).constructor?.name ?? typeof body;
  throw new TypeError(
    `unsupported request body of type ${kind}: pass a Uint8Array, an ArrayBuffer, a string ` +
      `or a ReadableStream`,
  );
}

// Sends a request. When the server had closed the kept-alive socket before it responded, an
// idempotent request is sent once more on a new connection.
async function sendWithRetry(
  hop: Hop,
  signal: AbortSignal | undefined,
  timeouts: Timeouts,
): Promise<IncomingMessage> {
  try {
    return await send(hop, signal, timeouts);
  } catch (error) {
    const stale = error instanceof StaleSocketError;
    const again = IDEMPOTENT_METHODS.has(hop.method) && !isStream(hop.body);
    if (stale && again) return await send(hop, signal, timeouts);
    throw stale ? error.failure : error;
  }
}

/** A failure on a reused keep-alive socket before any response byte arrived. */
class StaleSocketError extends Error {
  readonly failure: TypeError;

  constructor(failure: TypeError) {
    super(failure.message, { cause: failure });
    this.failure = failure;
  }
}

const STALE_SOCKET_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

function send(
  hop: Hop,
  signal: AbortSignal | undefined,
  timeouts: Timeouts,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const headers: Record<string, string> = Object.fromEntries(hop.headers);
    if (isStream(hop.body)) {
      headers["transfer-encoding"] = "chunked";
    } else if (hop.body) {
      headers["content-length"] = String(hop.body.byteLength);
    } else if (hop.method === "POST" || hop.method === "PUT" || hop.method === "PATCH") {
      headers["content-length"] = "0";
    }

    const transport = hop.url.protocol === "https:" ? https : http;
    const request = transport.request(hop.url, {
      method: hop.method,
      headers,
      agent: agentFor(hop.url),
    });
    let settled = false;

    const finish = () => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      if (settled) return;
      finish();
      request.destroy();
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      const cause = Object.assign(
        new Error(`no response headers within ${timeouts.headersMs} ms`),
        { code: "UND_ERR_HEADERS_TIMEOUT" },
      );
      request.destroy(cause);
    }, timeouts.headersMs);
    signal?.addEventListener("abort", onAbort, { once: true });

    request.on("error", (error: NodeJS.ErrnoException) => {
      if (settled) return;
      finish();
      const failure = new TypeError(`${describeRequest(hop)} failed`, { cause: error });
      const stale = request.reusedSocket && STALE_SOCKET_CODES.has(error.code ?? "");
      reject(stale ? new StaleSocketError(failure) : failure);
    });
    request.on("response", (response) => {
      // Paused until the caller reads or cancels the body.
      response.pause();
      if (settled) {
        response.destroy();
        return;
      }
      finish();
      resolve(response);
    });
    if (isStream(hop.body)) writeStream(request, hop.body, () => timer.refresh());
    else writeBody(request, hop.body, () => timer.refresh());
  });
}

function isStream(body: unknown): body is ReadableStream<Uint8Array> {
  return typeof (body as ReadableStream | undefined)?.getReader === "function";
}

// Writes a streamed body one chunk at a time: the next chunk is read once the socket has taken
// the one before, so the producer may reuse a chunk's memory when it is asked for the next (see
// ChunkHandOff). A failing stream destroys the request, so the request fails with the stream's
// error, and a request that ends first cancels the stream, so its producer stops.
function writeStream(
  request: http.ClientRequest,
  body: ReadableStream<Uint8Array>,
  onProgress: () => void,
): void {
  const reader = body.getReader();
  let closed = false;
  request.once("close", () => {
    closed = true;
    reader.cancel(new Error("the request closed before its body was sent")).catch(() => {});
  });
  const pump = async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || closed) break;
      onProgress();
      await new Promise<void>((resolve) => {
        const onWritten = () => {
          request.off("close", onWritten);
          resolve();
        };
        request.on("close", onWritten);
        request.write(value, onWritten);
      });
    }
    if (!closed) request.end();
  };
  pump().catch((error: unknown) => {
    if (!closed) request.destroy(error instanceof Error ? error : new Error(String(error)));
  });
}

// Writes the body in slices and calls `onProgress` as each is accepted, so the headers timeout
// measures a stall of the upload or of the server, not the time a large body takes to send.
function writeBody(
  request: http.ClientRequest,
  body: Uint8Array | undefined,
  onProgress: () => void,
): void {
  if (!body) {
    request.end();
    return;
  }
  let offset = 0;
  const writeNext = () => {
    while (offset < body.byteLength) {
      const slice = body.subarray(offset, offset + WRITE_SLICE_BYTES);
      offset += slice.byteLength;
      onProgress();
      if (!request.write(slice)) {
        request.once("drain", writeNext);
        return;
      }
    }
    request.end();
  };
  writeNext();
}

/** The body of one response: streamed on demand, drained or dropped when cancelled. */
class ResponseBody {
  private readonly response: IncomingMessage;
  private readonly label: string;
  private readonly bodyTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private failure: unknown;
  private done = false;
  private ended = false;
  private draining = false;
  private received = 0;
  private drained = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly settled: Promise<void>;
  private resolveSettled!: () => void;
  private readonly onAbort = () => this.fail(this.signal?.reason, false);

  constructor(
    response: IncomingMessage,
    label: string,
    bodyTimeoutMs: number,
    signal: AbortSignal | undefined,
  ) {
    this.response = response;
    this.label = label;
    this.bodyTimeoutMs = bodyTimeoutMs;
    this.signal = signal;
    this.settled = new Promise((resolve) => (this.resolveSettled = resolve));
    response.on("data", (chunk: Buffer) => this.onData(chunk));
    response.on("end", () => this.onEnd());
    response.on("error", (error) => this.fail(error, true));
    response.on("close", () => {
      if (!this.done) this.fail(new Error("the connection closed before the body ended"), true);
    });
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** Creates the web stream of the body. NodeResponse calls it once and keeps the stream. */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
          if (this.failure !== undefined) controller.error(this.failure);
          else if (this.ended) controller.close();
        },
        pull: () => {
          if (this.done) return;
          this.response.resume();
          this.armTimer();
        },
        cancel: () => this.discard(),
      },
      { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
    );
  }

  /**
   * Reads and drops the rest of the body so the socket can carry the next request, or destroys
   * the response when more than 1 MiB is left. Resolves once the socket is released.
   */
  discard(): Promise<void> {
    if (this.done) return this.settled;
    this.controller = undefined;
    const length = Number(headerValue(this.response, "content-length") ?? Number.NaN);
    if (Number.isFinite(length) && length - this.received > MAX_DRAIN_BYTES) {
      this.destroy();
      return this.settled;
    }
    this.draining = true;
    this.response.resume();
    this.armTimer();
    return this.settled;
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.draining) {
      this.drained += chunk.length;
      // A body without Content-Length can be any size: stop draining it past the limit.
      if (this.drained > MAX_DRAIN_BYTES) this.destroy();
      else this.timer?.refresh();
      return;
    }
    const controller = this.controller;
    if (!controller) return;
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) <= 0) {
      // Backpressure: the body timeout counts only while the reader is waiting for data.
      this.response.pause();
      this.clearTimer();
    } else {
      this.timer?.refresh();
    }
  }

  private onEnd(): void {
    if (this.done) return;
    this.ended = true;
    this.settle();
    this.controller?.close();
  }

  private fail(error: unknown, wrap: boolean): void {
    if (this.done) return;
    this.settle();
    this.response.destroy();
    if (this.draining) return;
    this.failure = wrap
      ? new TypeError(`reading the response body of ${this.label} failed`, { cause: error })
      : error;
    this.controller?.error(this.failure);
  }

  private destroy(): void {
    if (this.done) return;
    this.settle();
    this.response.destroy();
  }

  private settle(): void {
    this.done = true;
    this.clearTimer();
    this.signal?.removeEventListener("abort", this.onAbort);
    this.resolveSettled();
  }

  private armTimer(): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      const cause = Object.assign(new Error(`no body data for ${this.bodyTimeoutMs} ms`), {
        code: "UND_ERR_BODY_TIMEOUT",
      });
      this.fail(cause, true);
    }, this.bodyTimeoutMs);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Response headers, case-insensitive, with repeated headers joined by ", " as in fetch. */
class ResponseHeaders {
  private readonly byName = new Map<string, string>();
  private readonly cookies: string[] = [];

  constructor(rawHeaders: string[]) {
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = (rawHeaders[i] as string).toLowerCase();
      const value = rawHeaders[i + 1] as string;
      if (name === "set-cookie") this.cookies.push(value);
      const existing = this.byName.get(name);
      this.byName.set(name, existing === undefined ? value : `${existing}, ${value}`);
    }
  }

  get(name: string): string | null {
    return this.byName.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.byName.has(name.toLowerCase());
  }

  getSetCookie(): string[] {
    return [...this.cookies];
  }

  forEach(callback: (value: string, name: string, headers: this) => void, thisArg?: unknown): void {
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    const names = [...this.byName.keys()].sort();
    for (const name of names) yield [name, this.byName.get(name) as string];
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** The part of the fetch `Response` the registry client reads. */
class NodeResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly url: string;
  readonly redirected: boolean;
  readonly type = "basic";
  readonly headers: ResponseHeaders;
  private readonly source: ResponseBody | null;
  private created: ReadableStream<Uint8Array> | undefined;
  private consumed = false;

  constructor(
    response: IncomingMessage,
    url: URL,
    redirected: boolean,
    source: ResponseBody | null,
  ) {
    this.status = response.statusCode ?? 0;
    this.statusText = response.statusMessage ?? "";
    this.ok = this.status >= 200 && this.status <= 299;
    const final = new URL(url);
    final.hash = "";
    this.url = final.toString();
    this.redirected = redirected;
    this.headers = new ResponseHeaders(response.rawHeaders);
    this.source = source;
  }

  /** The body stream, created on first access; null for HEAD requests and null-body statuses. */
  get body(): ReadableStream<Uint8Array> | null {
    if (!this.source) return null;
    this.created ??= this.source.stream();
    return this.created;
  }

  get bodyUsed(): boolean {
    return this.consumed || (this.created?.locked ?? false);
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.readAll();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(await this.readAll());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  private async readAll(): Promise<Uint8Array> {
    if (this.bodyUsed) {
      throw new TypeError(
        `the body of the response from ${this.url.split("?")[0]} was already read`,
      );
    }
    this.consumed = true;
    const stream = this.body;
    if (!stream) return new Uint8Array(0);

    const parts: Uint8Array[] = [];
    let total = 0;
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      total += value.byteLength;
    }
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.byteLength;
    }
    return bytes;
  }
}

function headerValue(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

// The query string is left out of every message because it may carry signed-URL tokens.
function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function describeRequest(hop: Hop): string {
  return `${hop.method} ${describeUrl(hop.url)}`;
}
