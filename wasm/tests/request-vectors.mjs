// The shared /verify request vectors (tests/vectors/requests.json), each case with its body as
// the exact bytes to send: `body` as UTF-8 or `body_base64` decoded, padded with spaces to `pad_to`.
import { readFileSync } from "node:fs";

const path = new URL("../../tests/vectors/requests.json", import.meta.url);

/** `{ now, file, cases }`, each case with `bytes`, its body as a `Uint8Array`. */
export function requestVectors() {
  const vectors = JSON.parse(readFileSync(path, "utf8"));
  for (const c of vectors.cases) c.bytes = bodyBytes(c);
  return vectors;
}

function bodyBytes(c) {
  if ((c.body === undefined) === (c.body_base64 === undefined)) {
    throw new Error(`${c.name}: give exactly one of \`body\` and \`body_base64\``);
  }
  const bytes =
    c.body === undefined
      ? new Uint8Array(Buffer.from(c.body_base64, "base64"))
      : new TextEncoder().encode(c.body);
  if (c.pad_to === undefined) return bytes;
  const padded = new Uint8Array(c.pad_to).fill(0x20);
  padded.set(bytes.subarray(0, c.pad_to));
  return padded;
}
