"""The routes of examples/kv, shared by the wasi:http component (app.py) and its native twin
(server.py), so both builds answer from the same code.

- `GET /` answers `hello from python`;
- `GET /healthz` answers `ok`;
- `PUT /kv/<key>` stores the body: `201` when new, `200` when replaced;
- `GET /kv/<key>` returns the stored bytes, or `404`;
- `DELETE /kv/<key>` removes the key: `204`, or `404`.

The store lives in the process (native) or in the instance (Wasm). Under wasmbench's
`wasi-http` host every request gets a fresh instance, so a value stored by one request is gone
for the next; under `wasi-http-reuse` it lasts as long as the instance does.
"""

MAX_VALUE_BYTES = 1 << 20
MAX_KEY_BYTES = 256
MAX_KEYS = 100_000
MAX_STORE_BYTES = 256 << 20

TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    507: "Insufficient Storage",
}

_store: dict[bytes, bytes] = {}
_stored_bytes = 0


def handle(method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
    """Answers one request: (status, content type, body)."""
    global _stored_bytes
    path = target.split("?", 1)[0]
    if method == "GET" and path == "/":
        return 200, TEXT, b"hello from python"
    if method == "GET" and path == "/healthz":
        return 200, TEXT, b"ok"
    if not path.startswith("/kv/"):
        return 404, TEXT, b"unknown path: use /, /kv/<key> or /healthz"
    key = path[len("/kv/") :].encode()
    if not key or len(key) > MAX_KEY_BYTES:
        return 400, TEXT, b"key must be 1 to 256 bytes: use /kv/<key>"
    if method == "GET":
        value = _store.get(key)
        if value is None:
            return 404, TEXT, b"no such key"
        return 200, BINARY, value
    if method == "PUT":
        if len(body) > MAX_VALUE_BYTES:
            return 413, TEXT, b"value too large: at most 1 MiB"
        old = _store.get(key)
        old_bytes = 0 if old is None else len(key) + len(old)
        new_bytes = _stored_bytes - old_bytes + len(key) + len(body)
        if (old is None and len(_store) >= MAX_KEYS) or new_bytes > MAX_STORE_BYTES:
            return 507, TEXT, b"store full: delete keys first"
        _store[key] = body
        _stored_bytes = new_bytes
        return (201, TEXT, b"created") if old is None else (200, TEXT, b"updated")
    if method == "DELETE":
        value = _store.pop(key, None)
        if value is None:
            return 404, TEXT, b"no such key"
        _stored_bytes -= len(key) + len(value)
        return 204, TEXT, b""
    return 405, TEXT, b"use GET, PUT or DELETE on /kv/<key>"
