// The WebAssembly package in Node: the shared vectors (tests/vectors/verify.json, requests.json,
// auth.json and routes.json), which the native core tests also run, and the JS API around them.
// Build the package first: `make wasm`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { requestVectors } from "./request-vectors.mjs";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const wasmPath = here("../pkg/heare_auth_wasm_bg.wasm");
if (!existsSync(wasmPath)) {
  throw new Error(`${wasmPath} is missing: run \`make wasm\` first`);
}
const { initSync, Verifier, checkRequestHeaders, maxBody, route } = await import(
  here("../pkg/heare_auth_wasm.js")
);
initSync({ module: readFileSync(wasmPath) });

const vectors = JSON.parse(readFileSync(here("../../tests/vectors/verify.json"), "utf8"));
const requests = requestVectors();
const auth = JSON.parse(readFileSync(here("../../tests/vectors/auth.json"), "utf8"));
const routes = JSON.parse(readFileSync(here("../../tests/vectors/routes.json"), "utf8"));

function fileOf(suite) {
  return suite.file_text ?? JSON.stringify(suite.file);
}

test("the shared vectors give the expected answers", () => {
  let cases = 0;
  let scoped = 0;
  let counted = 0;
  let rejected = 0;
  for (const suite of vectors.suites) {
    if (suite.error !== undefined) {
      assert.throws(
        () => new Verifier(fileOf(suite), suite.storage_secret),
        (err) => err instanceof Error && err.message.includes(suite.error),
        `${suite.name}: expected an Error containing ${JSON.stringify(suite.error)}`,
      );
      rejected += 1;
      continue;
    }
    const verifier = new Verifier(fileOf(suite), suite.storage_secret);
    assert.deepEqual(verifier.warnings, suite.warnings ?? [], `${suite.name}: warnings`);
    for (const c of suite.cases) {
      const args = [c.secret, c.now, c.required_scopes, c.balance, c.cost];
      const shown = `${suite.name}: ${JSON.stringify(args)}`;
      const body = verifier.verify(...args);
      assert.deepEqual(body, c.expected, shown);
      const text = verifier.verifyJson(...args);
      assert.deepEqual(JSON.parse(text), c.expected, shown);
      cases += 1;
      if (c.required_scopes !== undefined) scoped += 1;
      if (c.balance !== undefined) counted += 1;
    }
    verifier.free();
  }
  assert.ok(cases >= 30 && rejected >= 10, `${cases} cases, ${rejected} rejected files`);
  assert.ok(scoped >= 5, `${scoped} cases with required_scopes`);
  assert.ok(counted >= 8, `${counted} cases with a balance`);
});

test("every shared request gets the expected status and body", () => {
  const verifier = new Verifier(JSON.stringify(requests.file));
  let declaredTooLarge = 0;
  for (const c of requests.cases) {
    const reply = verifier.verifyRequest(c.content_type, c.bytes, requests.now);
    assert.deepEqual(Object.keys(reply), ["status", "body"], c.name);
    assert.equal(reply.status, c.status, `${c.name}: ${reply.body}`);
    assert.deepEqual(JSON.parse(reply.body), c.response, c.name);
    // With the length declared, the headers alone refuse a body over the limit, and refuse
    // nothing the whole rule would answer differently.
    const early = checkRequestHeaders(c.content_type, c.bytes.length);
    if (early !== null || c.status === 413) {
      assert.deepEqual(early, reply, `${c.name}: checkRequestHeaders`);
    }
    if (c.status === 413) declaredTooLarge += 1;
  }
  assert.ok(requests.cases.length >= 20, `${requests.cases.length} cases`);
  assert.ok(declaredTooLarge >= 1, "no case over the body limit");
  verifier.free();
});

test("every shared forward-auth request gets the expected status, headers and body", () => {
  const verifier = new Verifier(JSON.stringify(auth.file));
  for (const c of auth.cases) {
    const reply = verifier.authorize(c.authorization, c.x_api_key, c.query, auth.now);
    assert.deepEqual(Object.keys(reply), ["status", "headers", "body", "code"], c.name);
    assert.equal(reply.status, c.status, `${c.name}: ${reply.body}`);
    const names = reply.headers.map(([name]) => name);
    assert.equal(new Set(names).size, names.length, `${c.name}: a header twice`);
    // A Headers object takes them as they are: valid names and values.
    const headers = new Headers(reply.headers);
    for (const [name, value] of Object.entries(c.headers)) {
      assert.equal(headers.get(name), value, `${c.name}: ${name}`);
    }
    for (const name of c.absent_headers) {
      assert.equal(headers.has(name), false, `${c.name}: ${name} present`);
    }
    const body = JSON.parse(reply.body);
    assert.deepEqual(body, c.body, c.name);
    assert.equal(reply.code, body.code, c.name);
  }
  assert.ok(auth.cases.length >= 12, `${auth.cases.length} cases`);
  verifier.free();
});

test("checkRequestHeaders refuses a wrong type or a declared length over maxBody()", () => {
  assert.equal(maxBody(), 16384);
  for (const [contentType, length] of [
    [null, null],
    [undefined, undefined],
    ["application/json", maxBody()],
    ["application/json; charset=utf-8", 0],
    [null, 12],
  ]) {
    assert.equal(checkRequestHeaders(contentType, length), null, `${contentType} ${length}`);
  }
  assert.deepEqual(checkRequestHeaders("application/json", maxBody() + 1), {
    status: 413,
    body: '{"error":"request body too large (limit 16384 bytes)"}',
  });
  assert.deepEqual(checkRequestHeaders("text/plain", null), {
    status: 400,
    body: '{"error":"expected Content-Type: application/json"}',
  });
  for (const bad of [-1, 1.5, NaN, Infinity]) {
    assert.throws(
      () => checkRequestHeaders(null, bad),
      /expected contentLength as a whole number of bytes/,
    );
  }
});

const secret = "sec_0VPq2bPUnvQHkq0wC8XP0Mt1LrX2H4ZyHfRtfLZ9xQhAF7dkcJfBXy3Wq1cDmz";
const keysFile = JSON.stringify({
  keys: [
    { id: "key_live", secret, name: "Live", scopes: ["read", "write"], metadata: { team: "edge" } },
    { id: "key_past", secret: "sec_past", name: "Past", expires_at: "2020-01-01T00:00:00Z" },
    { id: "key_soon", secret: "sec_soon", name: "Soon", expires_at: "2999-01-01" },
  ],
});

test("a keys file as a string, Uint8Array or ArrayBuffer", () => {
  const bytes = new TextEncoder().encode(keysFile);
  for (const input of [keysFile, bytes, bytes.buffer]) {
    const verifier = new Verifier(input);
    assert.equal(verifier.keyCount, 3);
    assert.equal(verifier.verify(secret).key_id, "key_live");
  }
  assert.throws(() => new Verifier(new Uint8Array(0)), /invalid JSON at line 1, column 1/);
  for (const bad of [undefined, null, 42, { keys: [] }]) {
    assert.throws(() => new Verifier(bad), /expected the keys file as a string, Uint8Array or ArrayBuffer/);
  }
});

test("nowMs defaults to the current time and must be finite", () => {
  const verifier = new Verifier(keysFile);
  assert.equal(verifier.verify("sec_past").valid, false);
  assert.equal(verifier.verify("sec_soon").valid, true);
  assert.equal(verifier.verify("sec_past", Date.parse("2019-12-31T23:59:59Z")).valid, true);
  assert.equal(verifier.verify("sec_soon", null).valid, true);
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => verifier.verify("sec_past", bad), /expected nowMs as a finite number/);
    assert.throws(() => verifier.verifyJson("sec_past", bad), /expected nowMs as a finite number/);
  }
});

test("verifyRequest takes a string, Uint8Array or ArrayBuffer body, and nowMs", () => {
  const verifier = new Verifier(keysFile);
  const text = JSON.stringify({ api_key: secret });
  const bytes = new TextEncoder().encode(text);
  for (const body of [text, bytes, bytes.buffer]) {
    for (const contentType of ["application/json", null, undefined]) {
      const reply = verifier.verifyRequest(contentType, body);
      assert.deepEqual(reply, { status: 200, body: verifier.verifyJson(secret) });
    }
  }
  for (const bad of [undefined, null, 42, { api_key: secret }]) {
    assert.throws(
      () => verifier.verifyRequest("application/json", bad),
      /expected the body as a string, Uint8Array or ArrayBuffer/,
    );
  }
  const past = '{"api_key": "sec_past"}';
  assert.equal(verifier.verifyRequest(null, past).status, 403);
  assert.equal(verifier.verifyRequest(null, past, Date.parse("2019-12-31T23:59:59Z")).status, 200);
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => verifier.verifyRequest(null, past, bad), /expected nowMs as a finite number/);
  }
});

test("the JSON text is the server's body, byte for byte", () => {
  const verifier = new Verifier(keysFile);
  assert.equal(
    verifier.verifyJson(secret, 0),
    '{"valid":true,"key_id":"key_live","name":"Live","metadata":{"team":"edge"},' +
      '"code":"VALID","scopes":["read","write"],"expires_at":null}',
  );
  const notFound = '{"valid":false,"error":"Invalid API key","code":"NOT_FOUND"}';
  assert.equal(verifier.verifyJson("sec_nope", 0), notFound);
  assert.equal(verifier.verifyJson("", 0), notFound);
  assert.equal(
    verifier.verifyJson("sec_past", Date.parse("2020-01-01T00:00:01Z")),
    '{"valid":false,"error":"Invalid API key","code":"EXPIRED"}',
  );
  assert.equal(
    verifier.verifyJson(secret, 0, ["admin"]),
    '{"valid":false,"error":"Insufficient scope","code":"INSUFFICIENT_SCOPE"}',
  );
});

test("requiredScopes is an array of strings, every one of which the key must hold", () => {
  const verifier = new Verifier(keysFile);
  for (const required of [undefined, null, [], ["read"], ["write", "read"]]) {
    assert.equal(verifier.verify(secret, undefined, required).valid, true, `${required}`);
    assert.equal(JSON.parse(verifier.verifyJson(secret, null, required)).valid, true);
  }
  for (const required of [["read", "admin"], ["READ"], ["rea"], [""]]) {
    const body = verifier.verify(secret, undefined, required);
    assert.equal(body.code, "INSUFFICIENT_SCOPE", `${required}`);
  }
  assert.equal(verifier.verify("sec_soon", undefined, ["read"]).code, "INSUFFICIENT_SCOPE");
  // Anything else throws rather than demanding nothing.
  const notArrays = ["read", "", 42, {}, { length: 1, 0: "read" }, new Set(["read"])];
  for (const bad of [...notArrays, ["read", 1], [null]]) {
    assert.throws(
      () => verifier.verify(secret, undefined, bad),
      /expected requiredScopes as an array of strings/,
      `${JSON.stringify(bad)}`,
    );
    assert.throws(
      () => verifier.verifyJson(secret, undefined, bad),
      /expected requiredScopes as an array of strings/,
    );
  }
});

test("authorize takes each header as a string, null or undefined, and scopes or a query", () => {
  const verifier = new Verifier(keysFile);
  for (const args of [
    [`Bearer ${secret}`],
    [`Bearer ${secret}`, undefined, "scope=read"],
    [`Bearer ${secret}`, undefined, ["read"]],
    [null, secret, null],
    [null, secret, []],
    [undefined, secret, "scope=write,read"],
    [undefined, secret, ["write", "read"]],
  ]) {
    const reply = verifier.authorize(...args);
    assert.equal(reply.status, 200, `${args}: ${reply.body}`);
    assert.deepEqual(reply.headers, [
      ["x-key-id", "key_live"],
      ["x-key-name", "Live"],
      ["x-key-scopes", "read,write"],
      ["x-key-metadata", Buffer.from('{"team":"edge"}').toString("base64url")],
    ]);
    assert.deepEqual(JSON.parse(reply.body), { code: "VALID", key_id: "key_live" });
  }
  const none = verifier.authorize();
  assert.deepEqual([none.status, none.code], [401, "MISSING_KEY"]);
  assert.deepEqual(none.headers, [["www-authenticate", 'Bearer realm="heare-auth"']]);
  const lacking = verifier.authorize(null, secret, "scope=admin");
  assert.deepEqual([lacking.status, lacking.code], [403, "INSUFFICIENT_SCOPE"]);
  // An array is the scopes themselves, not decoded: `a%2Cb` is one scope no key holds.
  assert.deepEqual(verifier.authorize(null, secret, ["admin"]), lacking);
  assert.equal(verifier.authorize(null, secret, "scope=read%2Cwrite").status, 200);
  assert.equal(verifier.authorize(null, secret, ["read%2Cwrite"]).status, 403);
  for (const bad of [42, { scope: "read" }, ["read", 1]]) {
    assert.throws(
      () => verifier.authorize(null, secret, bad),
      /expected scopes as an array of strings or a query string/,
      `${JSON.stringify(bad)}`,
    );
  }
  // nowMs as for verify: the current time by default, a given time, never NaN.
  assert.equal(verifier.authorize(null, "sec_past").code, "EXPIRED");
  const before = Date.parse("2019-12-31T23:59:59Z");
  assert.equal(verifier.authorize(null, "sec_past", null, before).status, 200);
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(
      () => verifier.authorize(null, secret, null, bad),
      /expected nowMs as a finite number/,
    );
  }
});

test("every shared route vector gets the server's route and Allow", () => {
  for (const c of routes.cases) {
    const expected = { route: c.route, allow: c.allow };
    assert.deepEqual(route(c.method, c.path), expected, `${c.method} ${c.path}`);
  }
  assert.ok(routes.cases.length >= 40, `${routes.cases.length} cases`);
});

test("errors name the key and field", () => {
  assert.throws(
    () => new Verifier('{"keys": [{"id": "key_a", "secret": ""}]}'),
    { message: "key key_a: field `secret` is empty" },
  );
  assert.throws(
    () => new Verifier('{"keys": [{"id": "key_a", "secret": "x"}, {"id": "key_a", "secret": "y"}]}'),
    { message: "duplicate key id key_a" },
  );
});

// A key with 10 credits set at 09:30 on 2026-12-06, refilled to 100 each day; one without.
const metered = JSON.stringify({
  keys: [
    {
      id: "key_m",
      secret: "sec_m",
      name: "Metered",
      credits: { amount: 10, refill: { amount: 100, every: "day" }, since: "2026-12-06T09:30:00Z" },
    },
    { id: "key_free", secret: "sec_free", name: "Free" },
  ],
});
const NOON = Date.parse("2026-12-06T12:00:00Z");
const DAY = 86_400_000;

test("creditsOf says where a key's credits are counted, and from what", () => {
  const verifier = new Verifier(metered);
  const since = Date.parse("2026-12-06T09:30:00Z");
  const today = Math.floor(NOON / DAY);
  assert.deepEqual(verifier.creditsOf("sec_m", NOON), {
    keyId: "key_m",
    pool: `key_m:${since}:${today}`,
    allowance: 10,
    resetsAt: Date.parse("2026-12-07T00:00:00Z"),
  });
  assert.deepEqual(verifier.creditsOf("sec_m", NOON + DAY), {
    keyId: "key_m",
    pool: `key_m:${since}:${today + 1}`,
    allowance: 100,
    resetsAt: Date.parse("2026-12-08T00:00:00Z"),
  });
  assert.equal(verifier.creditsOf("sec_free", NOON), null);
  assert.equal(verifier.creditsOf("sec_nope", NOON), null);
  // nowMs defaults to the current time.
  const before = Math.floor(Date.now() / DAY);
  const { pool } = verifier.creditsOf("sec_m");
  const after = Math.floor(Date.now() / DAY);
  assert.ok([before, after].some((day) => pool === `key_m:${since}:${day}`), pool);
  assert.throws(() => verifier.creditsOf("sec_m", NaN), /expected nowMs as a finite number/);
  verifier.free();
});

test("a balance is spent by the cost, in verify, verifyJson and verifyRequest alike", () => {
  const verifier = new Verifier(metered);
  assert.equal(verifier.verify("sec_m", NOON).remaining, undefined);
  assert.equal(verifier.verify("sec_m", NOON, null, 10).remaining, 9);
  assert.equal(verifier.verify("sec_m", NOON, undefined, 10, 10).remaining, 0);
  const exceeded = {
    valid: false,
    error: "Usage exceeded",
    code: "USAGE_EXCEEDED",
    remaining: 4,
  };
  assert.deepEqual(verifier.verify("sec_m", NOON, null, 4, 5), exceeded);
  assert.equal(verifier.verifyJson("sec_m", NOON, null, 4, 5), JSON.stringify(exceeded));
  assert.equal(verifier.verify("sec_m", NOON, null, 0, 0).code, "USAGE_EXCEEDED");
  assert.equal(verifier.verify("sec_free", NOON, null, 0, 5).remaining, undefined);
  const body = JSON.stringify({ api_key: "sec_m", cost: 5 });
  assert.deepEqual(verifier.verifyRequest(null, body, NOON, 4), {
    status: 403,
    body: JSON.stringify(exceeded),
  });
  const paid = verifier.verifyRequest("application/json", body, NOON, 5);
  assert.equal(paid.status, 200);
  assert.equal(JSON.parse(paid.body).remaining, 0);
  assert.equal(JSON.parse(verifier.verifyRequest(null, body, NOON).body).remaining, undefined);
  for (const bad of [-1, 0.5, NaN, Infinity]) {
    assert.throws(
      () => verifier.verify("sec_m", NOON, null, bad),
      /expected balance as a whole number of credits/,
    );
    assert.throws(
      () => verifier.verifyRequest(null, body, NOON, bad),
      /expected balance as a whole number of credits/,
    );
  }
  for (const bad of [-1, 0.5, 1_000_001, NaN]) {
    assert.throws(
      () => verifier.verifyJson("sec_m", NOON, null, 10, bad),
      /expected cost as a whole number from 0 to 1000000/,
    );
  }
  verifier.free();
});
