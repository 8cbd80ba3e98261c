// The native twin of app.js: the same kv routes on Node's http module.
//
//   node server.js --port 8080        # or PORT=8080 node server.js
//
// Address: HOST, else 127.0.0.1. Prints nothing; the service is ready when its port accepts.
import { createServer } from "node:http";
import { handle, MAX_VALUE_BYTES, TEXT } from "./kv.js";

function port() {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--port") return Number(args[i + 1]);
    if (args[i].startsWith("--port=")) return Number(args[i].slice("--port=".length));
  }
  return Number(process.env.PORT ?? 8080);
}

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_VALUE_BYTES) chunks.push(chunk);
  });
  req.on("end", () => {
    const [status, type, payload] =
      size > MAX_VALUE_BYTES
        ? [413, TEXT, Buffer.from("value too large: at most 1 MiB")]
        : handle(req.method, req.url, new Uint8Array(Buffer.concat(chunks)));
    // Content-Length rather than chunked encoding; Node writes head and body together.
    const headers = status === 204 ? {} : { "content-type": type, "content-length": payload.length };
    res.writeHead(status, headers);
    res.end(status === 204 ? undefined : payload);
  });
});
// Node keeps idle connections 5 s by default: a load that pauses longer (wasmbench's
// interleaved blocks) would find them closed and pay for new ones.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
// Node's default listen backlog is 511, enough for 100 clients connecting at once.
server.listen(port(), process.env.HOST ?? "127.0.0.1");
