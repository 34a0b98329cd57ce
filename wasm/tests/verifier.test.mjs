// The WebAssembly package in Node: the shared vectors (tests/vectors/verify.json and
// requests.json), which the native core tests also run, and the JS API around them. Build the
// package first: `make wasm`.
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
const { initSync, Verifier, checkRequestHeaders, maxBody } = await import(
  here("../pkg/heare_auth_wasm.js")
);
initSync({ module: readFileSync(wasmPath) });

const vectors = JSON.parse(readFileSync(here("../../tests/vectors/verify.json"), "utf8"));
const requests = requestVectors();

function fileOf(suite) {
  return suite.file_text ?? JSON.stringify(suite.file);
}

test("the shared vectors give the expected answers", () => {
  let cases = 0;
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
      const body = verifier.verify(c.secret, c.now);
      assert.deepEqual(body, c.expected, `${suite.name}: ${JSON.stringify(c.secret)}`);
      assert.deepEqual(JSON.parse(verifier.verifyJson(c.secret, c.now)), c.expected);
      cases += 1;
    }
    verifier.free();
  }
  assert.ok(cases >= 30 && rejected >= 10, `${cases} cases, ${rejected} rejected files`);
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
    { id: "key_live", secret, name: "Live", metadata: { team: "edge" } },
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
    '{"valid":true,"key_id":"key_live","name":"Live","metadata":{"team":"edge"}}',
  );
  assert.equal(verifier.verifyJson("sec_nope", 0), '{"valid":false,"error":"Invalid API key"}');
  assert.equal(verifier.verifyJson("", 0), '{"valid":false,"error":"Invalid API key"}');
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
