// The kv routes as a wasi:http/proxy component: StarlingMonkey (jco componentize) calls the
// fetch event handler once per incoming request. Build: see README.md.
import { handle, MAX_VALUE_BYTES, TEXT } from "./kv.js";

async function respond(request) {
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  const [status, type, payload] =
    body.length > MAX_VALUE_BYTES
      ? [413, TEXT, new TextEncoder().encode("value too large: at most 1 MiB")]
      : handle(request.method, url.pathname + url.search, body);
  return new Response(status === 204 ? null : payload, {
    status,
    headers: { "content-type": type },
  });
}

addEventListener("fetch", (event) => event.respondWith(respond(event.request)));
