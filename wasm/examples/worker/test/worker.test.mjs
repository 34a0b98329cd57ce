// The example Worker in workerd, the open-source Workers runtime, over real HTTP on loopback.
//
// One workerd process runs one isolate per configuration below, each on its own ephemeral port
// (address 127.0.0.1:0; workerd reports the ports it bound on --control-fd). Keys files live in a
// temporary directory: KV bindings are backed by workerd `disk` services, which answer the KV
// binding's GET /<key> with the file, so rewriting a file changes what `env.KEYS_KV.get` returns.
// The R2 binding speaks R2's internal protocol, so it is backed by a small R2-shaped Worker
// (r2-store.js, written below) that serves the same disk directory with an MD5 ETag.
//
// Needs `make wasm` (wasm/pkg/) and the npm dependencies of wasm/ (`npm ci` in wasm/).
// Run: node --test wasm/examples/worker/test/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { requestVectors } from "../../../tests/request-vectors.mjs";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const wasmDir = here("../../../");
const pkgDir = join(wasmDir, "pkg");
const wasmFile = join(pkgDir, "heare_auth_wasm_bg.wasm");

// Missing prerequisites fail the whole file once, with what to run.
if (!existsSync(wasmFile)) {
  throw new Error(`${wasmFile} is missing: run \`make wasm\` in the repository root first`);
}
let workerdBin;
try {
  workerdBin = createRequire(import.meta.url)("workerd").default;
} catch (e) {
  throw new Error(
    `workerd is not installed: run \`npm ci\` in ${wasmDir} (or \`make js-deps\`): ${e.message}`,
  );
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

// ---------------------------------------------------------------------------------------------
// Keys files.

const BILLING = {
  id: "key_0Billing0000000000000001",
  secret: "sec_0Billing" + "b".repeat(52),
  name: "Billing service",
};
const HASHED = {
  id: "key_0Hashed00000000000000001",
  secret: "sec_0Hashed" + "h".repeat(53),
  name: "Hashed only",
};
const EXPIRED = {
  id: "key_0Expired0000000000000001",
  secret: "sec_0Expired" + "e".repeat(52),
  name: "Expired",
};
const UNICODE = {
  id: "key_0Unicode0000000000000001",
  secret: "sec_0Unicode" + "u".repeat(52),
  name: "Zahlungsdienst üß ✓ 🔑 東京",
};
// The checksummed format (`sec_1`, time, 256 random bits, CRC32): a right checksum, and the same
// secret with its last character changed, which the edge refuses before any lookup.
const CHECKED = {
  id: "key_00VbwYMJgWorker0000000001",
  secret: "sec_10VbwYMJgtyQ81dOOKHBWV1qUA9amhU718W9BL7AjFtiageEwS3w1BbU5E",
  name: "Checksummed",
};
const CHECKSUM_TYPO = CHECKED.secret.slice(0, -1) + "F";
const ROTATE_A = {
  id: "key_0RotateA0000000000000001",
  secret: "sec_0RotateA" + "a".repeat(52),
  name: "Before",
};
const ROTATE_B = {
  id: "key_0RotateB0000000000000001",
  secret: "sec_0RotateB" + "c".repeat(52),
  name: "After",
};

const BASE_FILE = JSON.stringify({
  keys: [
    {
      id: BILLING.id,
      secret: BILLING.secret,
      name: BILLING.name,
      metadata: { team: "payments", tier: 2 },
    },
    {
      id: HASHED.id,
      secret_hash: sha256(HASHED.secret),
      name: HASHED.name,
      expires_at: "2999-01-01T00:00:00Z",
    },
    {
      id: EXPIRED.id,
      secret_hash: sha256(EXPIRED.secret),
      name: EXPIRED.name,
      expires_at: "2020-01-01T00:00:00Z",
    },
    {
      id: UNICODE.id,
      secret_hash: sha256(UNICODE.secret),
      name: UNICODE.name,
      metadata: { city: "東京" },
    },
    { id: CHECKED.id, secret_hash: sha256(CHECKED.secret), name: CHECKED.name },
  ],
});
// Gate mode with REQUIRED_SCOPES: keys with all, some, none of the scopes; disabled; rotated.
const REQUIRED_SCOPES = "read, keys:write,pay+refund";
const REQUIRED = ["read", "keys:write", "pay+refund"];
const SCOPED = {
  id: "key_0Scoped00000000000000001",
  secret: "sec_0Scoped" + "s".repeat(53),
  name: "Scoped",
  scopes: [...REQUIRED, "admin"],
};
const READER = {
  id: "key_0Reader00000000000000001",
  secret: "sec_0Reader" + "r".repeat(53),
  name: "Reader",
  scopes: ["read", "keys:write"],
};
const DISABLED = {
  id: "key_0Disabled000000000000001",
  secret: "sec_0Disabled" + "d".repeat(51),
  name: "Disabled",
  scopes: REQUIRED,
};
const ROTATED = {
  id: "key_0Rotated0000000000000001",
  secret: "sec_0Rotated" + "n".repeat(52),
  previous: "sec_0Rotated" + "o".repeat(52),
  name: "Rotated",
  scopes: REQUIRED,
};
const GRACE_OVER = {
  id: "key_0GraceOver00000000000001",
  secret: "sec_0GraceOver" + "n".repeat(50),
  previous: "sec_0GraceOver" + "o".repeat(50),
  name: "Grace over",
  scopes: REQUIRED,
};
const hashed = ({ id, secret, name, scopes }) => ({
  id,
  secret_hash: sha256(secret),
  name,
  scopes,
});
const SCOPED_FILE = () =>
  JSON.stringify({
    keys: [
      { ...hashed(SCOPED), metadata: { team: "ops" } },
      hashed(READER),
      { ...hashed(DISABLED), disabled: true, disabled_at: "2026-11-01T00:00:00Z" },
      {
        ...hashed(ROTATED),
        previous_secret_hash: sha256(ROTATED.previous),
        // The grace period is measured against the Worker's clock: an hour from now.
        previous_expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      },
      {
        ...hashed(GRACE_OVER),
        previous_secret_hash: sha256(GRACE_OVER.previous),
        previous_expires_at: "2020-01-01T00:00:00Z",
      },
    ],
  });

// Verify mode with a CREDITS Durable Object: keys with credits, never refilled or refilled each
// day, and one without; the file is rewritten to set credits again.
const METERED = {
  id: "key_0Metered00000000000000001",
  secret: "sec_0Metered" + "m".repeat(52),
  name: "Metered",
};
const DAILY = {
  id: "key_0Daily0000000000000000001",
  secret: "sec_0Daily" + "y".repeat(54),
  name: "Daily",
};
const CROWDED = {
  id: "key_0Crowded0000000000000001",
  secret: "sec_0Crowded" + "w".repeat(52),
  name: "Crowded",
};
const CREDITS_FILE = (since = "2026-12-01T00:00:00Z") =>
  JSON.stringify({
    keys: [
      { ...hashed(METERED), credits: { amount: 3, since } },
      {
        ...hashed(DAILY),
        credits: { amount: 10, refill: { amount: 10, every: "day" }, since: "2026-12-01" },
      },
      { ...hashed(CROWDED), credits: { amount: 5, since: "2026-12-01" } },
      hashed(BILLING),
    ],
  });

const fileWith = (key) =>
  JSON.stringify(
    { keys: [{ id: key.id, secret_hash: sha256(key.secret), name: key.name, metadata: {} }] },
    null,
    2,
  );

// The shared request vectors: the worker serves their file and must answer every case as the
// origin does.
const REQUESTS = requestVectors();
// The shared route vectors: the worker answers every method and path as the origin does, but
// for the routes it does not serve.
const ROUTES = JSON.parse(readFileSync(here("../../../../tests/vectors/routes.json"), "utf8"));
const ORIGIN_ONLY = new Set(["refresh", "ready", "metrics", "manage", "openapi", "auth"]);

const invalidBody = (code) => `{"valid":false,"error":"Invalid API key","code":"${code}"}`;
const REALM = 'Bearer realm="heare-auth"';
const INVALID_TOKEN = `${REALM}, error="invalid_token"`;
const base64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

// ---------------------------------------------------------------------------------------------
// The workerd configuration.

// An R2-shaped store: the binding sends `cf-r2-request: {"method":"get","object":...}` and expects
// `cf-r2-metadata-size` bytes of JSON metadata, then the object; 404 with v4code 10007 is "no
// such object", 412 with v4code 10031 is a failed `onlyIf` (the binding then returns no body).
const R2_STORE = `
const error = (status, v4code, message) => ({
  "cf-r2-error": JSON.stringify({ version: 0, v4code, message }),
});
export default {
  async fetch(request, env) {
    const r2 = JSON.parse(request.headers.get("cf-r2-request"));
    if (r2.method !== "get") {
      return new Response(null, { status: 501, headers: error(501, 10001, r2.method) });
    }
    const path = r2.object.split("/").map(encodeURIComponent).join("/");
    const file = await env.FILES.fetch("http://files/" + path);
    if (file.status === 404) {
      return new Response(null, { status: 404, headers: error(404, 10007, "no such object") });
    }
    const body = new Uint8Array(await file.arrayBuffer());
    const md5 = new Uint8Array(await crypto.subtle.digest("MD5", body));
    const etag = Array.from(md5, (b) => b.toString(16).padStart(2, "0")).join("");
    const metadata = { name: r2.object, version: etag, size: body.length, etag, uploaded: 0 };
    const meta = new TextEncoder().encode(JSON.stringify(metadata));
    const size = { "cf-r2-metadata-size": String(meta.length) };
    const conditions = r2.onlyIf?.etagDoesNotMatch ?? [];
    if (conditions.some((e) => e.value === etag || e.type === "wildcard")) {
      const headers = { ...size, ...error(412, 10031, "precondition failed") };
      return new Response(meta, { status: 412, headers });
    }
    const out = new Uint8Array(meta.length + body.length);
    out.set(meta);
    out.set(body, meta.length);
    return new Response(out, { headers: size });
  },
};`;

// An origin that answers with what it received.
const ECHO = `
export default {
  async fetch(request) {
    const { method, url } = request;
    const headers = Object.fromEntries(request.headers);
    return Response.json({ method, url, headers, body: await request.text() });
  },
};`;

// wrangler.toml's compatibility date: the tests run the Worker with the semantics it deploys with.
const COMPATIBILITY_DATE = readFileSync(here("../wrangler.toml"), "utf8").match(
  /^compatibility_date = "([\d-]+)"$/m,
)[1];

const capnpString = (text) => JSON.stringify(text);

// One Worker running worker.js. Module names mirror wasm/ so that worker.js's relative imports
// (../../pkg/...) resolve as they do for wrangler. Each is a full Worker rather than an `inherit`
// of one, because inherited Workers share an isolate, and so the per-isolate key cache.
function workerService(name, { env = {}, textFiles = {}, bindings = [], globalOutbound, credits }) {
  const all = [
    ...Object.entries(env).map(([k, v]) => `(name = ${capnpString(k)}, text = ${capnpString(v)})`),
    ...Object.entries(textFiles).map(
      ([k, path]) => `(name = ${capnpString(k)}, text = embed ${capnpString(path)})`,
    ),
    ...bindings,
  ];
  return `(name = "${name}", worker = (
      modules = [
        (name = "examples/worker/worker.js", esModule = embed "bundle/examples/worker/worker.js"),
        (name = "pkg/heare_auth_wasm.js", esModule = embed "bundle/pkg/heare_auth_wasm.js"),
        (name = "pkg/heare_auth_wasm_bg.wasm", wasm = embed "bundle/pkg/heare_auth_wasm_bg.wasm"),
      ],
      compatibilityDate = "${COMPATIBILITY_DATE}",
      ${globalOutbound ? `globalOutbound = "${globalOutbound}",` : ""}
      ${
        credits
          ? `durableObjectNamespaces = [(className = "Credits", uniqueKey = "${name}-credits")],
      durableObjectStorage = (inMemory = void),`
          : ""
      }
      bindings = [${all.join(", ")}],
    ))`;
}

function config(dir, originPort) {
  const kv = (store) => `(name = "KEYS_KV", kvNamespace = "${store}")`;
  const workers = {
    verify: { env: { KEYS_TTL_SECONDS: "0" }, bindings: [kv("kv-base")] },
    "verify-requests": { bindings: [kv("kv-requests")] },
    "verify-cached": { env: { KEYS_TTL_SECONDS: "3600" }, bindings: [kv("kv-cached")] },
    "verify-reload-kv": {
      env: { KEYS_TTL_SECONDS: "0", KEYS_KV_KEY: "reload.json" },
      bindings: [kv("kv-reload")],
    },
    "verify-reload-r2": {
      env: { KEYS_TTL_SECONDS: "0", KEYS_R2_KEY: "edge/keys.json" },
      bindings: ['(name = "KEYS_R2", r2Bucket = "r2-store")'],
    },
    "verify-encrypted": {
      env: { STORAGE_SECRET: ENCRYPTED.storage_secret },
      textFiles: { KEYS_TEXT: "encrypted.txt" },
    },
    "verify-missing": { env: { KEYS_KV_KEY: "absent.json" }, bindings: [kv("kv-base")] },
    "verify-credits": {
      env: { KEYS_TTL_SECONDS: "0" },
      bindings: [kv("kv-credits"), '(name = "CREDITS", durableObjectNamespace = "Credits")'],
      credits: true,
    },
    gate: {
      env: { MODE: "gate" },
      bindings: [kv("kv-base"), '(name = "ORIGIN", service = "echo")'],
    },
    "gate-scoped": {
      env: { MODE: "gate", REQUIRED_SCOPES },
      bindings: [kv("kv-scoped"), '(name = "ORIGIN", service = "echo")'],
    },
    "gate-url": {
      env: { MODE: "gate", ORIGIN_URL: `http://127.0.0.1:${originPort}/base/` },
      bindings: [kv("kv-base")],
      globalOutbound: "loopback",
    },
  };
  const disk = (name, sub) =>
    `(name = "${name}", disk = (path = ${capnpString(join(dir, "stores", sub))}))`;
  const services = [
    ...Object.entries(workers).map(([name, w]) => workerService(name, w)),
    `(name = "echo", worker = (
      modules = [(name = "echo.js", esModule = embed "bundle/echo.js")],
      compatibilityDate = "${COMPATIBILITY_DATE}"))`,
    `(name = "r2-store", worker = (
      modules = [(name = "r2-store.js", esModule = embed "bundle/r2-store.js")],
      compatibilityDate = "${COMPATIBILITY_DATE}",
      bindings = [(name = "FILES", service = "r2-files")]))`,
    `(name = "loopback", network = (allow = ["local"]))`,
    disk("kv-base", "base"),
    disk("kv-cached", "cached"),
    disk("kv-requests", "requests"),
    disk("kv-scoped", "scoped"),
    disk("kv-credits", "credits"),
    disk("kv-reload", "reload-kv"),
    disk("r2-files", "reload-r2"),
  ];
  const sockets = Object.keys(workers).map(
    (name) => `(name = "${name}", address = "127.0.0.1:0", http = (), service = "${name}")`,
  );
  const text = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    ${services.join(",\n    ")}
  ],
  sockets = [
    ${sockets.join(",\n    ")}
  ],
);
`;
  return { text, sockets: Object.keys(workers) };
}

// ---------------------------------------------------------------------------------------------
// Set-up and teardown.

const fernet = JSON.parse(readFileSync(here("../../../../tests/vectors/fernet.json"), "utf8"));
const ENCRYPTED = fernet.cases.find((c) => c.name === "legacy file");

let dir;
let workerd;
let workerdExit;
let logs = "";
let ports = {};
let origin;
const originSeen = [];
let Verifier;
let baseVerifier;

async function writeAtomically(path, text) {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

function killWorkerd() {
  if (workerd && workerd.exitCode === null && workerd.signalCode === null) workerd.kill("SIGKILL");
}

/** Starts workerd and resolves with { socket name: port } once every socket listens. */
function startWorkerd(bin, configPath, socketNames) {
  workerd = spawn(bin, ["serve", configPath, "--control-fd=3"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe", "pipe"],
  });
  process.once("exit", killWorkerd);
  workerdExit = once(workerd, "exit");
  workerd.stdout.setEncoding("utf8").on("data", (chunk) => (logs += chunk));
  workerd.stderr.setEncoding("utf8").on("data", (chunk) => (logs += chunk));
  return new Promise((resolve, reject) => {
    const found = {};
    let pending = "";
    const timer = setTimeout(() => fail(new Error("workerd did not listen within 60 s")), 60_000);
    function fail(err) {
      clearTimeout(timer);
      reject(new Error(`${err.message}\n--- workerd output ---\n${logs}`));
    }
    const exited = (code, signal) =>
      fail(new Error(`workerd exited (${signal ?? code}) before listening`));
    workerd.once("error", fail);
    workerd.once("exit", exited);
    workerd.stdio[3].setEncoding("utf8").on("data", (chunk) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) {
        const message = JSON.parse(line);
        if (message.event === "listen") found[message.socket] = message.port;
      }
      if (socketNames.every((name) => name in found)) {
        clearTimeout(timer);
        workerd.removeListener("exit", exited);
        resolve(found);
      }
    });
  });
}

before(async () => {
  const pkg = await import(pathToFileURL(join(pkgDir, "heare_auth_wasm.js")).href);
  pkg.initSync({ module: readFileSync(wasmFile) });
  Verifier = pkg.Verifier;
  baseVerifier = new Verifier(BASE_FILE);

  origin = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const seen = { method: request.method, url: request.url, headers: request.headers, body };
      originSeen.push(seen);
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify(seen));
    });
  });
  origin.listen(0, "127.0.0.1");
  await once(origin, "listening");

  dir = await mkdtemp(join(tmpdir(), "heare-auth-worker-"));
  await cp(here("../worker.js"), join(dir, "bundle/examples/worker/worker.js"));
  await cp(pkgDir, join(dir, "bundle/pkg"), { recursive: true });
  await writeFile(join(dir, "bundle/echo.js"), ECHO);
  await writeFile(join(dir, "bundle/r2-store.js"), R2_STORE);
  await writeFile(join(dir, "encrypted.txt"), ENCRYPTED.file_fixed_iv);
  const stores = ["base", "cached", "requests", "scoped", "credits", "reload-kv", "reload-r2/edge"];
  for (const sub of stores) {
    await mkdir(join(dir, "stores", sub), { recursive: true });
  }
  await writeAtomically(join(dir, "stores/base/keys.json"), BASE_FILE);
  await writeAtomically(join(dir, "stores/cached/keys.json"), fileWith(ROTATE_A));
  await writeAtomically(join(dir, "stores/requests/keys.json"), JSON.stringify(REQUESTS.file));
  await writeAtomically(join(dir, "stores/scoped/keys.json"), SCOPED_FILE());
  await writeAtomically(join(dir, "stores/credits/keys.json"), CREDITS_FILE());
  await writeAtomically(join(dir, "stores/reload-kv/reload.json"), fileWith(ROTATE_A));
  await writeAtomically(join(dir, "stores/reload-r2/edge/keys.json"), fileWith(ROTATE_A));

  const { text, sockets } = config(dir, origin.address().port);
  await writeFile(join(dir, "config.capnp"), text);
  ports = await startWorkerd(workerdBin, join(dir, "config.capnp"), sockets);
});

after(async () => {
  if (workerd && workerd.exitCode === null && workerd.signalCode === null) {
    workerd.kill("SIGTERM");
    const timeout = setTimeout(killWorkerd, 5_000);
    await workerdExit;
    clearTimeout(timeout);
  }
  process.removeListener("exit", killWorkerd);
  origin?.closeAllConnections();
  origin?.close();
  baseVerifier?.free();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers.

/** A request to the Worker on `socket`; resolves with { status, headers, text }. */
async function call(socket, path, init = {}) {
  const response = await fetch(`http://127.0.0.1:${ports[socket]}${path}`, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const verifyBody = (apiKey) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ api_key: apiKey }),
});

const verify = (socket, apiKey) => call(socket, "/verify", verifyBody(apiKey));

/** Asserts a reply's status, showing the body and workerd's output when it differs. */
function assertStatus(reply, status) {
  assert.equal(
    reply.status,
    status,
    `got ${reply.status} ${reply.text}\n--- workerd output ---\n${logs}`,
  );
}

const logLines = (event) =>
  logs
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.event === event);

/** Waits for workerd's output to contain a log line for which `match` holds. */
async function waitForLog(event, match) {
  for (let i = 0; i < 100; i++) {
    if (logLines(event).some(match)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`no ${event} log line matched\n--- workerd output ---\n${logs}`);
}

// ---------------------------------------------------------------------------------------------
// MODE=verify.

test("verify: a valid key gets 200 and exactly the Verifier's body", async () => {
  for (const key of [BILLING, HASHED, UNICODE, CHECKED]) {
    const reply = await verify("verify", key.secret);
    assertStatus(reply, 200);
    assert.equal(reply.headers.get("content-type"), "application/json");
    assert.equal(reply.text, baseVerifier.verifyJson(key.secret, Date.now()));
  }
  const billing = JSON.parse((await verify("verify", BILLING.secret)).text);
  assert.deepEqual(billing, {
    valid: true,
    key_id: BILLING.id,
    name: BILLING.name,
    metadata: { team: "payments", tier: 2 },
    code: "VALID",
    scopes: [],
    expires_at: null,
  });
  const hashedOnly = JSON.parse((await verify("verify", HASHED.secret)).text);
  assert.equal(hashedOnly.expires_at, "2999-01-01T00:00:00.000000Z");
});

test("verify: unknown, altered and expired keys get 403 Invalid API key and a code", async () => {
  for (const [secret, code] of [
    ["sec_wrong", "NOT_FOUND"],
    [BILLING.secret.slice(0, -1), "NOT_FOUND"],
    [BILLING.secret + "x", "NOT_FOUND"],
    [CHECKSUM_TYPO, "NOT_FOUND"],
    [EXPIRED.secret, "EXPIRED"],
    ["", "NOT_FOUND"],
  ]) {
    const reply = await verify("verify", secret);
    assertStatus(reply, 403);
    assert.equal(reply.text, invalidBody(code));
  }
});

test("verify: a unicode name comes back intact", async () => {
  const reply = await verify("verify", UNICODE.secret);
  assertStatus(reply, 200);
  assert.equal(JSON.parse(reply.text).name, "Zahlungsdienst üß ✓ 🔑 東京");
  assert.deepEqual(JSON.parse(reply.text).metadata, { city: "東京" });
});

test("verify: like the origin, the key is read from the body only", async () => {
  // A key header is gate mode's; /verify without a body is the origin's 400.
  for (const headers of [
    { Authorization: `Bearer ${HASHED.secret}` },
    { "X-API-Key": HASHED.secret },
  ]) {
    const reply = await call("verify", "/verify", { method: "POST", headers });
    assertStatus(reply, 400);
    assert.equal(
      reply.text,
      '{"error":"invalid JSON body: EOF while parsing a value at line 1 column 0"}',
    );
  }
  // And a header cannot stand in for the body's required_scopes.
  const scoped = await call("verify", "/verify", {
    method: "POST",
    headers: { Authorization: `Bearer ${HASHED.secret}`, "Content-Type": "application/json" },
    body: JSON.stringify({ api_key: HASHED.secret, required_scopes: ["admin"] }),
  });
  assertStatus(scoped, 403);
  assert.equal(JSON.parse(scoped.text).code, "INSUFFICIENT_SCOPE");
});

test("verify: malformed requests get the origin's 400, 404, 405 and 413 answers", async () => {
  const post = (body, contentType = "application/json") => ({
    method: "POST",
    headers: { "Content-Type": contentType },
    body,
  });
  const cases = [
    [post("{}"), 400, 'missing field "api_key"'],
    [post('{"api_key": null}'), 400, 'missing field "api_key"'],
    [post('{"api_key": 42}'), 400, '"api_key" must be a string'],
    [post('["sec_x"]'), 400, 'expected a JSON object with an "api_key" string'],
    [post('{"api_key": '), 400, "invalid JSON body: "],
    [post('{"api_key": "x"}', "text/plain"), 400, "expected Content-Type: application/json"],
    [
      post(JSON.stringify({ api_key: "a".repeat(17000) })),
      413,
      "request body too large (limit 16384 bytes)",
    ],
  ];
  for (const [init, status, error] of cases) {
    const reply = await call("verify", "/verify", init);
    assertStatus(reply, status);
    assert.ok(JSON.parse(reply.text).error.startsWith(error), reply.text);
  }
  const charset = await call(
    "verify",
    "/verify",
    post(JSON.stringify({ api_key: BILLING.secret }), "application/json; charset=utf-8"),
  );
  assertStatus(charset, 200);

  const get = await call("verify", "/verify");
  assertStatus(get, 405);
  assert.equal(get.headers.get("allow"), "POST");
  assertStatus(await call("verify", "/nope"), 404);
  const health = await call("verify", "/health");
  assertStatus(health, 200);
  assert.equal(health.text, '{"status":"ok"}');
});

test("verify: each route vector gets the origin's answer, 404 where only it serves", async () => {
  for (const c of ROUTES.cases) {
    const reply = await call("verify", c.path, { method: c.method });
    const name = `${c.method} ${c.path}`;
    const shown = `${name}: got ${reply.status} ${reply.text}\n--- workerd output ---\n${logs}`;
    const expected = ORIGIN_ONLY.has(c.route)
      ? { status: 404, allow: null, body: c.method === "HEAD" ? null : { error: "Not found" } }
      : c;
    assert.equal(reply.status, expected.status, shown);
    assert.equal(reply.headers.get("allow"), expected.allow, shown);
    assert.equal(reply.headers.get("content-type"), "application/json", shown);
    if (expected.body === null) {
      assert.equal(reply.text, "", shown);
    } else if (expected.body !== undefined) {
      assert.deepEqual(JSON.parse(reply.text), expected.body, shown);
    }
  }
  assert.ok(ROUTES.cases.length >= 40, `${ROUTES.cases.length} cases`);
});

test("verify: every shared request vector gets the origin's status and body", async () => {
  // The worker reads its own clock, so a case must not answer differently now than at `now`.
  const local = new Verifier(JSON.stringify(REQUESTS.file));
  for (const c of REQUESTS.cases) {
    const headers = c.content_type === null ? {} : { "Content-Type": c.content_type };
    const atNow = local.verifyRequest(c.content_type, c.bytes, Date.now());
    assert.deepEqual(atNow, local.verifyRequest(c.content_type, c.bytes, REQUESTS.now), c.name);
    // Bytes, not a string, so that fetch adds no Content-Type of its own.
    const reply = await call("verify-requests", "/verify", { method: "POST", headers, body: c.bytes });
    const shown = `${c.name}: got ${reply.status} ${reply.text}\n--- workerd output ---\n${logs}`;
    assert.equal(reply.status, c.status, shown);
    assert.equal(reply.headers.get("content-type"), "application/json", c.name);
    assert.deepEqual(JSON.parse(reply.text), c.response, shown);
  }
  local.free();
  assert.ok(REQUESTS.cases.length >= 20, `${REQUESTS.cases.length} cases`);
});

test("verify: a body over the limit without Content-Length is refused too", async () => {
  const oversized = REQUESTS.cases.filter((c) => c.status === 413);
  assert.ok(oversized.length >= 1, "no case over the body limit");
  for (const c of oversized) {
    // A stream of small chunks goes out chunked, with no Content-Length to refuse early.
    const body = new ReadableStream({
      start(controller) {
        for (let at = 0; at < c.bytes.length; at += 1000) {
          controller.enqueue(c.bytes.subarray(at, at + 1000));
        }
        controller.close();
      },
    });
    const reply = await call("verify-requests", "/verify", {
      method: "POST",
      headers: { "Content-Type": c.content_type },
      body,
      duplex: "half",
    });
    assertStatus(reply, 413);
    assert.deepEqual(JSON.parse(reply.text), c.response, c.name);
  }
});

test("verify: an encrypted keys file loads with STORAGE_SECRET", async () => {
  const plain = JSON.parse(ENCRYPTED.plaintext);
  const secret = plain.keys[0].secret;
  const reply = await verify("verify-encrypted", secret);
  assertStatus(reply, 200);
  const expected = new Verifier(ENCRYPTED.file_fixed_iv, ENCRYPTED.storage_secret);
  assert.equal(reply.text, expected.verifyJson(secret, Date.now()));
  expected.free();
});

test("verify: with no keys file to load, 503 JSON and a logged cause", async () => {
  const reply = await verify("verify-missing", BILLING.secret);
  assertStatus(reply, 503);
  assert.equal(reply.headers.get("content-type"), "application/json");
  assert.deepEqual(JSON.parse(reply.text), { error: "API keys unavailable" });
  await waitForLog("refresh_failed", (e) => e.error === "KV KEYS_KV/absent.json not found");
});

// ---------------------------------------------------------------------------------------------
// Reloading.

test("reload: with KEYS_TTL_SECONDS=0 a new KV value applies to the next request", async () => {
  const file = join(dir, "stores/reload-kv/reload.json");
  const source = "KV KEYS_KV/reload.json";
  const count = (event) => logLines(event).filter((e) => e.source === source).length;
  for (let i = 0; i < 3; i++) assertStatus(await verify("verify-reload-kv", ROTATE_A.secret), 200);
  assertStatus(await verify("verify-reload-kv", ROTATE_B.secret), 403);

  await writeAtomically(file, fileWith(ROTATE_B));
  assertStatus(await verify("verify-reload-kv", ROTATE_A.secret), 403);
  const rotated = await verify("verify-reload-kv", ROTATE_B.secret);
  assertStatus(rotated, 200);
  assert.equal(JSON.parse(rotated.text).name, "After");

  // A broken file never replaces good keys, and is reported once, not on every read.
  await writeAtomically(file, '{"keys": [{"id": "key_broken"}]}');
  for (let i = 0; i < 3; i++) assertStatus(await verify("verify-reload-kv", ROTATE_B.secret), 200);

  await writeAtomically(file, fileWith(ROTATE_A));
  assertStatus(await verify("verify-reload-kv", ROTATE_A.secret), 200);
  assertStatus(await verify("verify-reload-kv", ROTATE_B.secret), 403);

  // workerd's output is ordered, so once the third load is logged every earlier line is in.
  await waitForLog("keys_loaded", () => count("keys_loaded") >= 3);
  assert.equal(count("keys_loaded"), 3, "an unchanged value must not rebuild the Verifier");
  const failures = logLines("refresh_failed").filter((e) => e.source === source);
  assert.equal(failures.length, 1, "the same broken value must be reported once");
  assert.equal(failures[0].error, "key key_broken: missing field `secret_hash`");
  assert.equal(failures[0].serving, "last good keys");
});

test("reload: an R2 object is re-read by ETag and rebuilt only when it changed", async () => {
  const file = join(dir, "stores/reload-r2/edge/keys.json");
  const loads = () =>
    logLines("keys_loaded").filter((e) => e.source === "R2 KEYS_R2/edge/keys.json").length;
  assertStatus(await verify("verify-reload-r2", ROTATE_A.secret), 200);
  await waitForLog("keys_loaded", (e) => e.source === "R2 KEYS_R2/edge/keys.json");
  const before = loads();
  for (let i = 0; i < 3; i++) assertStatus(await verify("verify-reload-r2", ROTATE_A.secret), 200);

  await writeAtomically(file, fileWith(ROTATE_B));
  assertStatus(await verify("verify-reload-r2", ROTATE_A.secret), 403);
  assertStatus(await verify("verify-reload-r2", ROTATE_B.secret), 200);
  await waitForLog("keys_loaded", () => loads() === before + 1);
  assert.equal(loads(), before + 1, "the same ETag must not rebuild the Verifier");

  await writeAtomically(file, "not json");
  assertStatus(await verify("verify-reload-r2", ROTATE_B.secret), 200);
  await waitForLog("refresh_failed", (e) => e.source === "R2 KEYS_R2/edge/keys.json");
});

test("reload: within KEYS_TTL_SECONDS the binding is not read again", async () => {
  assertStatus(await verify("verify-cached", ROTATE_A.secret), 200);
  await writeAtomically(join(dir, "stores/cached/keys.json"), fileWith(ROTATE_B));
  assertStatus(await verify("verify-cached", ROTATE_A.secret), 200);
  assertStatus(await verify("verify-cached", ROTATE_B.secret), 403);
});

// ---------------------------------------------------------------------------------------------
// MODE=verify with credits.

/** POST /verify with `fields` beside the key, to the credits Worker. */
const spend = (secret, fields = {}) =>
  call("verify-credits", "/verify", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ api_key: secret, ...fields }),
  });

/** What the Verifier answers `body` with from `balance`, as the Worker should. */
function expectedReply(secret, fields, balance) {
  const local = new Verifier(CREDITS_FILE());
  const body = JSON.stringify({ api_key: secret, ...fields });
  const reply = local.verifyRequest("application/json", body, Date.now(), balance);
  local.free();
  return reply;
}

test("credits: each request spends its cost until none are left, then USAGE_EXCEEDED", async () => {
  for (const [fields, balance] of [
    [{}, 3],
    [{ cost: 0 }, 2],
    [{ cost: 2 }, 2],
    [{ cost: 1 }, 0],
    [{ cost: 0 }, 0],
  ]) {
    const reply = await spend(METERED.secret, fields);
    const expected = expectedReply(METERED.secret, fields, balance);
    assertStatus(reply, expected.status);
    assert.equal(reply.text, expected.body, JSON.stringify(fields));
  }
  const spent = JSON.parse((await spend(METERED.secret)).text);
  assert.deepEqual(spent, {
    valid: false,
    error: "Usage exceeded",
    code: "USAGE_EXCEEDED",
    remaining: 0,
  });
  // A request the key could not pay for took nothing: a cost over the balance is refused, and
  // the balance stays for a smaller one.
  const over = await spend(DAILY.secret, { cost: 11 });
  assertStatus(over, 403);
  assert.equal(JSON.parse(over.text).remaining, 10);
  const paid = await spend(DAILY.secret, { cost: 10 });
  assertStatus(paid, 200);
  assert.equal(JSON.parse(paid.text).remaining, 0);
});

test("credits: a key without credits, or a refused request, spends nothing", async () => {
  const free = await spend(BILLING.secret, { cost: 1000 });
  assertStatus(free, 200);
  assert.equal(free.text, expectedReply(BILLING.secret, { cost: 1000 }).body);
  assert.equal(JSON.parse(free.text).remaining, undefined);
  const scoped = await spend(CROWDED.secret, { required_scopes: ["admin"] });
  assertStatus(scoped, 403);
  assert.equal(JSON.parse(scoped.text).code, "INSUFFICIENT_SCOPE");
  const bad = await spend(CROWDED.secret, { cost: -1 });
  assertStatus(bad, 400);
});

test("credits: requests at once never spend more than the key has", async () => {
  const replies = await Promise.all(Array.from({ length: 12 }, () => spend(CROWDED.secret)));
  const bodies = replies.map((r) => JSON.parse(r.text));
  const valid = bodies.filter((b) => b.valid);
  assert.equal(valid.length, 5, JSON.stringify(bodies));
  assert.deepEqual(
    valid.map((b) => b.remaining).sort(),
    [0, 1, 2, 3, 4],
    "each credit spent once",
  );
  for (const refused of bodies.filter((b) => !b.valid)) {
    assert.deepEqual(refused, {
      valid: false,
      error: "Usage exceeded",
      code: "USAGE_EXCEEDED",
      remaining: 0,
    });
  }
});

test("credits: setting them again starts a new count", async () => {
  await writeAtomically(join(dir, "stores/credits/keys.json"), CREDITS_FILE());
  assertStatus(await spend(METERED.secret), 403);
  await writeAtomically(
    join(dir, "stores/credits/keys.json"),
    CREDITS_FILE("2026-12-02T00:00:00Z"),
  );
  const fresh = await spend(METERED.secret);
  assertStatus(fresh, 200);
  assert.equal(JSON.parse(fresh.text).remaining, 2);
});

// ---------------------------------------------------------------------------------------------
// MODE=gate.

test("gate: no key gets 401 with a Bearer challenge", async () => {
  for (const headers of [
    {},
    { Authorization: "Basic dXNlcjpwYXNz" },
    { Authorization: "Bearer" },
    { "X-API-Key": "" },
  ]) {
    const reply = await call("gate", "/api/things", { headers });
    assertStatus(reply, 401);
    assert.equal(reply.headers.get("www-authenticate"), REALM);
    assert.equal(reply.headers.get("content-type"), "application/json");
    const body = JSON.parse(reply.text);
    assert.equal(body.code, "MISSING_KEY");
    assert.match(body.error, /^missing API key/);
  }
});

test("gate: an invalid or expired key gets 401 invalid_token", async () => {
  const invalid = [
    [{ Authorization: "Bearer sec_nope" }, "NOT_FOUND"],
    [{ "X-API-Key": "sec_nope" }, "NOT_FOUND"],
    [{ Authorization: `Bearer ${CHECKSUM_TYPO}` }, "NOT_FOUND"],
    [{ "X-API-Key": CHECKSUM_TYPO }, "NOT_FOUND"],
    [{ Authorization: `Bearer ${EXPIRED.secret}` }, "EXPIRED"],
  ];
  for (const [headers, code] of invalid) {
    const reply = await call("gate", "/api/things", { headers });
    assertStatus(reply, 401);
    assert.equal(reply.headers.get("www-authenticate"), INVALID_TOKEN);
    assert.equal(reply.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(reply.text), { code, error: "Invalid API key" });
  }
});

test("gate: a valid Bearer key reaches the origin with its X-Key-* identity", async () => {
  const reply = await call("gate", "/api/things?page=2", {
    method: "POST",
    headers: {
      Authorization: `Bearer ${BILLING.secret}`,
      "X-Key-Id": "key_forged",
      "X-Key-Name": "forged",
      "X-Key-Scopes": "admin",
      "X-Key-Metadata": base64url({ team: "forged" }),
      "X-Key-Extra": "forged",
      "X-Custom": "kept",
      "Content-Type": "text/plain",
    },
    body: "payload",
  });
  assertStatus(reply, 200);
  const seen = JSON.parse(reply.text);
  assert.equal(seen.method, "POST");
  assert.equal(new URL(seen.url).pathname + new URL(seen.url).search, "/api/things?page=2");
  assert.equal(seen.body, "payload");
  assert.equal(seen.headers["x-key-id"], BILLING.id);
  assert.equal(seen.headers["x-key-name"], "Billing service");
  assert.equal(seen.headers["x-key-scopes"], "");
  assert.equal(seen.headers["x-key-metadata"], base64url({ team: "payments", tier: 2 }));
  assert.equal(seen.headers["x-key-extra"], undefined, "client-sent X-Key-* must not pass");
  assert.equal(seen.headers["x-custom"], "kept");
  assert.equal(seen.headers.authorization, undefined, "the API key must not reach the origin");
});

test("gate: a valid X-API-Key reaches the origin; other Authorization schemes pass", async () => {
  const reply = await call("gate", "/", {
    headers: { "X-API-Key": HASHED.secret, Authorization: "Basic dXNlcjpwYXNz" },
  });
  assertStatus(reply, 200);
  const seen = JSON.parse(reply.text);
  assert.equal(seen.method, "GET");
  assert.equal(seen.headers["x-key-id"], HASHED.id);
  assert.equal(decodeURIComponent(seen.headers["x-key-name"]), HASHED.name);
  assert.equal(seen.headers["x-api-key"], undefined, "the API key must not reach the origin");
  assert.equal(seen.headers.authorization, "Basic dXNlcjpwYXNz");
});

test("gate: a unicode key name is percent-encoded UTF-8 in X-Key-Name", async () => {
  const reply = await call("gate", "/", { headers: { Authorization: `Bearer ${UNICODE.secret}` } });
  assertStatus(reply, 200);
  const seen = JSON.parse(reply.text);
  assert.match(seen.headers["x-key-name"], /^[\x21-\x7e]+$/);
  assert.equal(decodeURIComponent(seen.headers["x-key-name"]), UNICODE.name);
  assert.equal(seen.headers["x-key-id"], UNICODE.id);
});

test("gate: a key lacking a scope in REQUIRED_SCOPES gets 403 insufficient_scope", async () => {
  for (const headers of [
    { Authorization: `Bearer ${READER.secret}` },
    { "X-API-Key": READER.secret },
  ]) {
    const reply = await call("gate-scoped", "/api/things", { headers });
    assertStatus(reply, 403);
    assert.equal(
      reply.headers.get("www-authenticate"),
      `${REALM}, error="insufficient_scope", scope="read keys:write pay+refund"`,
    );
    assert.equal(reply.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(reply.text), {
      code: "INSUFFICIENT_SCOPE",
      error: "Insufficient scope",
    });
    assert.equal(reply.headers.get("x-key-id"), null);
  }
});

test("gate: a key with every required scope is forwarded with X-Key-Scopes", async () => {
  const reply = await call("gate-scoped", "/api/things", {
    headers: { Authorization: `Bearer ${SCOPED.secret}`, "X-Key-Scopes": "forged" },
  });
  assertStatus(reply, 200);
  const seen = JSON.parse(reply.text);
  assert.equal(seen.headers["x-key-id"], SCOPED.id);
  assert.equal(seen.headers["x-key-name"], SCOPED.name);
  assert.equal(seen.headers["x-key-scopes"], "read,keys:write,pay+refund,admin");
  assert.equal(seen.headers["x-key-metadata"], base64url({ team: "ops" }));
  assert.equal(seen.headers.authorization, undefined);
});

test("gate: a disabled key gets 401 DISABLED, whatever its scopes", async () => {
  const reply = await call("gate-scoped", "/", { headers: { "X-API-Key": DISABLED.secret } });
  assertStatus(reply, 401);
  assert.equal(reply.headers.get("www-authenticate"), INVALID_TOKEN);
  assert.deepEqual(JSON.parse(reply.text), { code: "DISABLED", error: "Invalid API key" });
});

test("gate: a rotated key's previous secret passes until its grace period ends", async () => {
  for (const secret of [ROTATED.secret, ROTATED.previous, GRACE_OVER.secret]) {
    const headers = { Authorization: `Bearer ${secret}` };
    const reply = await call("gate-scoped", "/", { headers });
    assertStatus(reply, 200);
    const seen = JSON.parse(reply.text);
    const key = secret === GRACE_OVER.secret ? GRACE_OVER : ROTATED;
    assert.equal(seen.headers["x-key-id"], key.id, "the previous secret is the same key");
    assert.equal(seen.headers["x-key-scopes"], REQUIRED.join(","));
  }
  const over = await call("gate-scoped", "/", {
    headers: { Authorization: `Bearer ${GRACE_OVER.previous}` },
  });
  assertStatus(over, 401);
  assert.deepEqual(JSON.parse(over.text), { code: "NOT_FOUND", error: "Invalid API key" });
});

test("gate: ORIGIN_URL forwards over HTTP with the path appended to ORIGIN_URL's", async () => {
  originSeen.length = 0;
  const reply = await call("gate-url", "/hello?q=1", { headers: { "X-API-Key": BILLING.secret } });
  assertStatus(reply, 200);
  assert.equal(originSeen.length, 1);
  const [seen] = originSeen;
  assert.equal(seen.url, "/base/hello?q=1");
  assert.equal(seen.headers.host, `127.0.0.1:${origin.address().port}`);
  assert.equal(seen.headers["x-key-id"], BILLING.id);
  assert.equal(decodeURIComponent(seen.headers["x-key-name"]), BILLING.name);
  assert.equal(seen.headers["x-api-key"], undefined);

  const denied = await call("gate-url", "/hello", { headers: { "X-API-Key": "sec_nope" } });
  assertStatus(denied, 401);
  assert.equal(originSeen.length, 1, "a denied request must not reach the origin");
});
