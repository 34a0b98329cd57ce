// heare-auth at the edge: a Cloudflare Worker that verifies API keys against keys.json with the
// WebAssembly verifier, either answering `POST /verify` like the origin server (MODE=verify) or
// guarding an origin (MODE=gate). With a CREDITS Durable Object binding, verify mode spends keys'
// credits too. README.md beside this file describes bindings and variables.

import { DurableObject } from "cloudflare:workers";
import {
  initSync,
  Verifier,
  checkRequestHeaders,
  maxBody,
  presentedKey,
  route,
} from "../../pkg/heare_auth_wasm.js";
import wasmModule from "../../pkg/heare_auth_wasm_bg.wasm";

initSync({ module: wasmModule });

const MAX_BODY = maxBody();
const DEFAULT_TTL_SECONDS = 30;

// Per isolate: the Verifier being served, the version of the file it was built from, the version
// of the last file that failed to load (so a bad file is reported once, not on every read), and
// when the binding was last read. Requests never share promises: workerd forbids awaiting I/O
// started by another request, so each request that finds the TTL expired reads the binding itself.
const state = { verifier: null, version: null, failedVersion: null, checkedAt: -Infinity };

export default {
  async fetch(request, env) {
    const mode = env.MODE || "verify";
    if (mode === "verify") return handleVerifyMode(request, env);
    if (mode === "gate") return handleGate(request, env);
    log("config_error", { error: `MODE must be "verify" or "gate", not ${JSON.stringify(mode)}` });
    return jsonError(500, "worker misconfigured");
  },
};

// ---------------------------------------------------------------------------------------------
// MODE=verify: the origin server's API.

/**
 * The origin's route table, from the WebAssembly package: `/verify` and `/health` are answered
 * as the origin answers them, and a known path with another method gets the origin's 405 and
 * `Allow`. The routes that need the origin's own machine (`/refresh`, `/ready`, `/metrics`, the
 * management API under `/keys`, `/openapi.yaml`) or stand in front of it (`/auth`, which is gate
 * mode) are not served here: 404, like any other path.
 */
async function handleVerifyMode(request, env) {
  const { pathname } = new URL(request.url);
  const { route: name, allow } = route(request.method, pathname);
  switch (name) {
    case "verify":
      return handleVerify(request, env);
    case "health":
      return json(200, '{"status":"ok"}');
    case "method_not_allowed":
      return methodNotAllowed(allow);
    default:
      return jsonError(404, "Not found");
  }
}

/**
 * The origin's `/verify` rule, from the WebAssembly package: the headers first, then the body.
 * Like the origin, it reads the key from the body only (`/auth`-style key headers are gate mode's).
 */
async function handleVerify(request, env) {
  const { headers } = request;
  const contentType = headers.get("Content-Type");
  const refused = checkRequestHeaders(contentType, declaredLength(headers));
  if (refused) return json(refused.status, refused.body);
  const body = await readBody(request, MAX_BODY);
  await refreshKeys(env);
  if (!state.verifier) return unavailable();
  const now = Date.now();
  const reply = state.verifier.verifyRequest(contentType, body, now);
  if (reply.status !== 200 || !env.CREDITS) return json(reply.status, reply.body);
  return spendCredits(env.CREDITS, contentType, body, now, reply);
}

/**
 * A valid key's answer once its credits, counted by the CREDITS Durable Objects (one per key and
 * period, `creditsOf`'s `pool`), paid for the request; `reply`, the answer without them, for a key
 * without credits. The rule of what a request costs and when a key is refused is the Verifier's:
 * it is given the balance and answers with what `remaining`; the count only records what that
 * answer took, and only while no other request has taken any since the balance was read
 * (otherwise the Verifier answers again, from the new balance).
 */
async function spendCredits(namespace, contentType, body, now, reply) {
  let count;
  try {
    // The Verifier has accepted the body: JSON with a string api_key.
    const secret = JSON.parse(new TextDecoder().decode(body)).api_key;
    count = state.verifier.creditsOf(secret, now);
    if (count === null) return json(reply.status, reply.body);
    const counter = namespace.get(namespace.idFromName(count.pool));
    let balance = await counter.balance(count.allowance);
    for (let attempt = 0; attempt < 10; attempt++) {
      // After an await the Verifier may have been replaced: always the current one.
      const paid = state.verifier.verifyRequest(contentType, body, now, balance);
      const { remaining } = JSON.parse(paid.body);
      const amount = remaining === undefined ? 0 : balance - remaining;
      if (amount === 0) return json(paid.status, paid.body);
      const taken = await counter.take(count.allowance, balance, amount, count.resetsAt);
      if (taken.taken) return json(paid.status, paid.body);
      balance = taken.balance;
    }
    throw new Error("the balance kept changing: too many requests at once");
  } catch (e) {
    log("credits_failed", { key_id: count?.keyId, error: String(e && e.message ? e.message : e) });
    return json(503, jsonErrorBody("credits unavailable"), { "Retry-After": "1" });
  }
}

/**
 * One count of a key's credits for one period: what has been spent of its allowance. It keeps no
 * rule of its own (the Verifier decides what a request takes); a count whose period ends is
 * deleted then, as the next period has a count of its own.
 */
export class Credits extends DurableObject {
  /** What is left of `allowance`. */
  async balance(allowance) {
    const spent = (await this.ctx.storage.get("spent")) ?? 0;
    return Math.max(allowance - spent, 0);
  }

  /**
   * Spends `amount` when the balance is still `expected`: `{taken, balance}`, the balance after,
   * or as it now is when it was not taken. `resetsAt` (Unix ms, or null) is when the period ends.
   */
  async take(allowance, expected, amount, resetsAt) {
    const spent = (await this.ctx.storage.get("spent")) ?? 0;
    const balance = Math.max(allowance - spent, 0);
    if (balance !== expected) return { taken: false, balance };
    await this.ctx.storage.put("spent", spent + amount);
    if (resetsAt !== null && (await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(resetsAt);
    }
    return { taken: true, balance: balance - amount };
  }

  async alarm() {
    await this.ctx.storage.deleteAll();
  }
}

/** The declared Content-Length, or null when there is none or it is not a plain number. */
function declaredLength(headers) {
  const length = headers.get("Content-Length");
  // Up to 15 digits a length is exact as a number; a longer one is over the limit anyway, and
  // readBody enforces that.
  return length !== null && /^\d{1,15}$/.test(length) ? Number(length) : null;
}

/**
 * The body's bytes, read until they pass `limit`: a longer body is refused whatever follows, so
 * the rest is never buffered (a chunked body declares no length).
 */
async function readBody(request, limit) {
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  while (size <= limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  if (size > limit) await reader.cancel();
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// MODE=gate: in front of an origin.

/**
 * The origin's forward-auth rule (`/auth`), from the WebAssembly package: the key from the
 * headers, the scopes from REQUIRED_SCOPES. A valid key's request goes to the origin with the
 * key's identity in X-Key-* headers; anything else gets the rule's status, headers and body.
 */
async function handleGate(request, env) {
  if (!env.ORIGIN && !env.ORIGIN_URL) {
    log("config_error", { error: "MODE=gate needs an ORIGIN service binding or ORIGIN_URL" });
    return jsonError(500, "worker misconfigured");
  }
  await refreshKeys(env);
  if (!state.verifier) return unavailable();
  const { headers } = request;
  const answer = state.verifier.authorize(
    headers.get("Authorization"),
    headers.get("X-API-Key"),
    requiredScopes(env.REQUIRED_SCOPES),
    Date.now(),
  );
  if (answer.status !== 200) {
    return json(answer.status, answer.body, Object.fromEntries(answer.headers));
  }

  const forwarded = new Headers(headers);
  // The key never reaches the origin, and the identity headers are the Worker's alone.
  if (presentedKey(forwarded.get("Authorization"), null) != null) forwarded.delete("Authorization");
  forwarded.delete("X-API-Key");
  for (const name of [...forwarded.keys()]) {
    if (name.startsWith("x-key-")) forwarded.delete(name);
  }
  for (const [name, value] of answer.headers) forwarded.set(name, value);
  const { method, body } = request;
  const init = { method, headers: forwarded, body, redirect: "manual" };
  try {
    if (env.ORIGIN) return await env.ORIGIN.fetch(new Request(request.url, init));
    forwarded.delete("Host");
    return await fetch(new Request(originUrl(env.ORIGIN_URL, request.url), init));
  } catch (e) {
    log("origin_failed", { error: String(e && e.message ? e.message : e) });
    return jsonError(502, "origin unreachable");
  }
}

/** The scopes REQUIRED_SCOPES names, comma-separated: none when it is unset or empty. */
function requiredScopes(setting) {
  return (setting ?? "")
    .split(",")
    .map((scope) => scope.trim())
    .filter((scope) => scope !== "");
}

/** ORIGIN_URL's scheme, host and path prefix, then the request's path and query. */
function originUrl(base, requestUrl) {
  const incoming = new URL(requestUrl);
  const target = new URL(base);
  target.pathname = target.pathname.replace(/\/+$/, "") + incoming.pathname;
  target.search = incoming.search;
  return target;
}

// ---------------------------------------------------------------------------------------------
// Loading and reloading keys.json.

/**
 * Brings `state.verifier` up to date: reads the binding when the last read is older than
 * KEYS_TTL_SECONDS (on every request while no file has loaded), and builds a new Verifier only
 * when the file's version changed. A failed read or an invalid file keeps the last good Verifier.
 *
 * Callers read `state.verifier` after this resolves and use it synchronously, before any other
 * await: a concurrent request may swap in a new Verifier and free the old one between awaits.
 */
async function refreshKeys(env) {
  const now = Date.now();
  if (state.verifier && now - state.checkedAt < ttlMs(env)) return;
  state.checkedAt = now;
  const serving = () => (state.verifier ? "last good keys" : "nothing");
  let file;
  try {
    file = await readKeysFile(env, state.verifier ? state.version : null);
  } catch (e) {
    log("refresh_failed", { error: e.message, serving: serving() });
    return;
  }
  if (file.content === null || file.version === state.version) return;
  if (file.version === state.failedVersion) return;
  let verifier;
  try {
    verifier = new Verifier(file.content, env.STORAGE_SECRET || undefined);
  } catch (e) {
    state.failedVersion = file.version;
    log("refresh_failed", { source: file.source, error: e.message, serving: serving() });
    return;
  }
  const previous = state.verifier;
  Object.assign(state, { verifier, version: file.version, failedVersion: null });
  previous?.free();
  log("keys_loaded", { source: file.source, keys: verifier.keyCount, warnings: verifier.warnings });
}

/**
 * Reads keys.json from the configured binding: `{ source, version, content }`. `content` is null
 * when an R2 object still has the `knownVersion` ETag (a conditional GET, so no body is sent).
 * KV values and text bindings carry no version, so the content is its own version: comparing
 * it to the last one is a length check and, rarely, one string comparison.
 */
async function readKeysFile(env, knownVersion) {
  if (env.KEYS_KV) {
    const key = env.KEYS_KV_KEY || "keys.json";
    const source = `KV KEYS_KV/${key}`;
    const text = await env.KEYS_KV.get(key, "text");
    if (text === null) throw new Error(`${source} not found`);
    return { source, version: text, content: text };
  }
  if (env.KEYS_R2) {
    const key = env.KEYS_R2_KEY || "keys.json";
    const source = `R2 KEYS_R2/${key}`;
    const options = knownVersion === null ? {} : { onlyIf: { etagDoesNotMatch: knownVersion } };
    const object = await env.KEYS_R2.get(key, options);
    if (object === null) throw new Error(`${source} not found`);
    if (!object.body || object.etag === knownVersion) {
      await object.body?.cancel();
      return { source, version: object.etag, content: null };
    }
    return { source, version: object.etag, content: new Uint8Array(await object.arrayBuffer()) };
  }
  if (typeof env.KEYS_TEXT === "string") {
    return { source: "text KEYS_TEXT", version: env.KEYS_TEXT, content: env.KEYS_TEXT };
  }
  throw new Error("no keys binding: bind KEYS_KV (KV), KEYS_R2 (R2) or KEYS_TEXT (text)");
}

function ttlMs(env) {
  const raw = env.KEYS_TTL_SECONDS;
  if (raw === undefined || raw === "") return DEFAULT_TTL_SECONDS * 1000;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const error = `KEYS_TTL_SECONDS must be a number of seconds, not ${JSON.stringify(raw)}`;
  log("config_error", { error, using: DEFAULT_TTL_SECONDS });
  return DEFAULT_TTL_SECONDS * 1000;
}

// ---------------------------------------------------------------------------------------------
// Replies and logs.

function json(status, body, headers = {}) {
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function jsonErrorBody(message) {
  return JSON.stringify({ error: message });
}

function jsonError(status, message) {
  return json(status, jsonErrorBody(message));
}

function methodNotAllowed(allow) {
  return json(405, jsonErrorBody("Method not allowed"), { Allow: allow });
}

/** No keys file has loaded yet; the cause is in the logs, not in the reply. */
function unavailable() {
  return json(503, jsonErrorBody("API keys unavailable"), { "Retry-After": "5" });
}

/** One JSON line per event, like the origin server's logs; never a secret. */
function log(event, fields) {
  console.log(JSON.stringify({ event, ...fields }));
}
