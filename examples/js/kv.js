// The routes of examples/kv, shared by the wasi:http component (app.js) and its Node twin
// (server.js), so both builds answer from the same code.
//
// - `GET /` answers `hello from javascript`;
// - `GET /healthz` answers `ok`;
// - `PUT /kv/<key>` stores the body: `201` when new, `200` when replaced;
// - `GET /kv/<key>` returns the stored bytes, or `404`;
// - `DELETE /kv/<key>` removes the key: `204`, or `404`.
//
// The store lives in the process (Node) or in the instance (Wasm). Under wasmbench's
// `wasi-http` host every request gets a fresh instance, so a value stored by one request is
// gone for the next; under `wasi-http-reuse` it lasts as long as the instance does.

export const MAX_VALUE_BYTES = 1 << 20;
const MAX_KEY_BYTES = 256;
const MAX_KEYS = 100_000;
const MAX_STORE_BYTES = 256 << 20;

export const TEXT = "text/plain; charset=utf-8";
const BINARY = "application/octet-stream";

const store = new Map();
let storedBytes = 0;
const encoder = new TextEncoder();

function text(status, message) {
  return [status, TEXT, encoder.encode(message)];
}

/** Answers one request: [status, content type, body bytes]. */
export function handle(method, target, body) {
  const path = target.split("?", 1)[0];
  if (method === "GET" && path === "/") return text(200, "hello from javascript");
  if (method === "GET" && path === "/healthz") return text(200, "ok");
  if (!path.startsWith("/kv/")) return text(404, "unknown path: use /, /kv/<key> or /healthz");
  const key = path.slice("/kv/".length);
  const keyBytes = encoder.encode(key).length;
  if (keyBytes === 0 || keyBytes > MAX_KEY_BYTES) {
    return text(400, "key must be 1 to 256 bytes: use /kv/<key>");
  }
  switch (method) {
    case "GET": {
      const value = store.get(key);
      return value === undefined ? text(404, "no such key") : [200, BINARY, value];
    }
    case "PUT": {
      if (body.length > MAX_VALUE_BYTES) return text(413, "value too large: at most 1 MiB");
      const old = store.get(key);
      const oldBytes = old === undefined ? 0 : keyBytes + old.length;
      const newBytes = storedBytes - oldBytes + keyBytes + body.length;
      if ((old === undefined && store.size >= MAX_KEYS) || newBytes > MAX_STORE_BYTES) {
        return text(507, "store full: delete keys first");
      }
      store.set(key, body);
      storedBytes = newBytes;
      return old === undefined ? text(201, "created") : text(200, "updated");
    }
    case "DELETE": {
      const value = store.get(key);
      if (value === undefined) return text(404, "no such key");
      store.delete(key);
      storedBytes -= keyBytes + value.length;
      return [204, TEXT, new Uint8Array(0)];
    }
    default:
      return text(405, "use GET, PUT or DELETE on /kv/<key>");
  }
}
