"""The kv routes as a wasi:http/proxy component, built with componentize-py:

    componentize-py -d wit -w wasi:http/proxy@0.2.12 componentize -p . app -o app.wasm

Blocking stream calls are enough here: one request per instance call, bodies of at most 1 MiB.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Other,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

import kv

# wasi:io streams take at most 4096 bytes per blocking write.
WRITE_CHUNK = 4096
READ_CHUNK = 64 << 10


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = request.method()
        # Method_Get -> "GET"; a method outside the enum carries its own name.
        name = method.value if isinstance(method, Method_Other) else type(method).__name__[7:].upper()
        target = request.path_with_query() or "/"
        body = read_body(request)
        if body is None:
            status, ctype, payload = 413, kv.TEXT, b"value too large: at most 1 MiB"
        else:
            status, ctype, payload = kv.handle(name, target, body)
        fields = [("content-type", ctype.encode())]
        if status != 204:
            fields.append(("content-length", str(len(payload)).encode()))
        response = OutgoingResponse(Fields.from_list(fields))
        response.set_status_code(status)
        out = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        # The stream is a child of the body: it must be dropped before the body is finished.
        with out.write() as stream:
            for i in range(0, len(payload), WRITE_CHUNK):
                stream.blocking_write_and_flush(payload[i : i + WRITE_CHUNK])
        OutgoingBody.finish(out, None)


def read_body(request: IncomingRequest) -> bytes | None:
    """The whole request body; None past kv's value limit."""
    incoming = request.consume()
    chunks = []
    size = 0
    with incoming.stream() as stream:
        while True:
            try:
                chunk = stream.blocking_read(READ_CHUNK)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise
            size += len(chunk)
            if size > kv.MAX_VALUE_BYTES:
                return None
            chunks.append(chunk)
    IncomingBody.finish(incoming)
    return b"".join(chunks)
