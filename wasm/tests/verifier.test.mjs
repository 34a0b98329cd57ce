// The WebAssembly package in Node: the shared vectors (tests/vectors/verify.json), which the
// native core tests also run, and the JS API around them. Build the package first: `make wasm`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const wasmPath = here("../pkg/heare_auth_wasm_bg.wasm");
if (!existsSync(wasmPath)) {
  throw new Error(`${wasmPath} is missing: run \`make wasm\` first`);
}
const { initSync, Verifier } = await import(here("../pkg/heare_auth_wasm.js"));
initSync({ module: readFileSync(wasmPath) });

const vectors = JSON.parse(readFileSync(here("../../tests/vectors/verify.json"), "utf8"));

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
