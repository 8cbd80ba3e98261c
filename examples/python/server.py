"""The native twin of app.py: the same kv routes on the standard library's ThreadingHTTPServer.

    python3 server.py --port 8080        # or PORT=8080 python3 server.py

Address: HOST, else 127.0.0.1. Prints nothing; the service is ready when its port accepts.
"""

import argparse
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kv


class Handler(BaseHTTPRequestHandler):
    # Keep-alive: the stdlib answers HTTP/1.0 and closes every connection by default.
    protocol_version = "HTTP/1.1"
    # A response is one write (below); no Nagle delay either way.
    disable_nagle_algorithm = True

    def serve(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            length = int(length) if length else 0
        except ValueError:
            return self.answer(400, kv.TEXT, b"invalid Content-Length", close=True)
        if self.headers.get("Transfer-Encoding"):
            return self.answer(501, kv.TEXT, b"chunked bodies are not supported", close=True)
        if length > kv.MAX_VALUE_BYTES:
            return self.answer(413, kv.TEXT, b"value too large: at most 1 MiB", close=True)
        body = self.rfile.read(length) if length else b""
        self.answer(*kv.handle(self.command, self.path, body))

    do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = serve

    def answer(self, status: int, ctype: str, payload: bytes, close: bool = False) -> None:
        # Headers and body in one write: send_response/end_headers would write the head
        # alone, and the body's small second segment would wait for the client's delayed ACK.
        close = close or self.close_connection
        head = f"HTTP/1.1 {status} {kv.REASONS.get(status, 'Unknown')}\r\n"
        if status != 204:
            head += f"content-type: {ctype}\r\ncontent-length: {len(payload)}\r\n"
        if close:
            head += "connection: close\r\n"
            self.close_connection = True
        self.wfile.write(head.encode("latin-1") + b"\r\n" + payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # The listen backlog; the stdlib's 5 drops connections when 100 clients connect at once.
    request_queue_size = 128


def main() -> int:
    parser = argparse.ArgumentParser(description="kv routes on http.server")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument(
        "--backlog", type=int, default=Server.request_queue_size, help="listen backlog"
    )
    args = parser.parse_args()
    Server.request_queue_size = args.backlog
    port = args.port if args.port is not None else int(os.environ.get("PORT", "8080"))
    host = os.environ.get("HOST", "127.0.0.1")
    with Server((host, port), Handler) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
