// Verifications per second of the WebAssembly package in Node, and its load time.
// usage: node bench/wasm.mjs KEYS_FILE SECRETS_FILE ROUNDS   (prints JSON)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const pkg = (path) => fileURLToPath(new URL(`../wasm/pkg/${path}`, import.meta.url));
const { initSync, Verifier } = await import(pkg("heare_auth_wasm.js"));
initSync({ module: readFileSync(pkg("heare_auth_wasm_bg.wasm")) });

const [keysPath, secretsPath, rounds = "3"] = process.argv.slice(2);
const file = readFileSync(keysPath);
const valid = readFileSync(secretsPath, "utf8").split("\n").filter(Boolean);
const invalid = valid.map((s) => s.slice(0, -4) + "XXXX");

let start = performance.now();
const verifier = new Verifier(file);
const loadMs = performance.now() - start;

function rate(secrets, expectValid) {
  const n = 200_000;
  let best = 0;
  for (let round = 0; round < Number(rounds); round++) {
    start = performance.now();
    for (let i = 0; i < n; i++) {
      const body = verifier.verifyJson(secrets[i % secrets.length]);
      if (expectValid !== (body.charCodeAt(9) === 116)) throw new Error(`unexpected ${body}`);
    }
    best = Math.max(best, n / ((performance.now() - start) / 1000));
  }
  return best;
}

console.log(JSON.stringify({
  keys: verifier.keyCount,
  load_ms: loadMs,
  valid_per_s: rate(valid, true),
  invalid_per_s: rate(invalid, false),
  node: process.version,
}));
