// The package's size budget, BENCHMARKS.md's target: the .wasm at most 100 KB gzipped (`gzip -9`),
// as `make wasm` builds it. Over it, `make wasm-size` shows what each part costs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const wasmPath = fileURLToPath(new URL("../pkg/heare_auth_wasm_bg.wasm", import.meta.url));

test("the .wasm is at most 100,000 bytes gzipped", () => {
  assert.ok(existsSync(wasmPath), `${wasmPath} is missing: run \`make wasm\` first`);
  const gzipped = execFileSync("gzip", ["-9c", wasmPath]).length;
  assert.ok(
    gzipped <= 100_000,
    `${gzipped} bytes gzipped, over the budget of 100,000: \`make wasm-size\` shows what each part costs`,
  );
});
