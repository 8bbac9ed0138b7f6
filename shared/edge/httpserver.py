"""The HTTP server every process runs (uvicorn on httptools), with its request heads bounded.

httptools (llhttp) has no limit on a request's headers: it gathers each header's value, however long, before the
server sees it, so twenty 50 MB headers to ``/healthz`` were read whole and the process kept the memory. Here a
request line and headers together larger than ``PIPELINES_MAX_HEADER_BYTES``, or more header fields than
``PIPELINES_MAX_HEADERS``, are answered ``431 Request Header Fields Too Large`` and the connection is closed:

- while the head is still arriving, as soon as the bytes received for it pass the limit (so a connection holds at
  most the limit and one read of the socket, never the header an attacker keeps sending);
- when the head came in one read, by adding up the request line and each header the parser gives, before the
  application is called.

uvicorn's h11 protocol has such a bound (``h11_max_incomplete_event_size``) but costs more CPU per request; this
keeps httptools and adds the bound to it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from shared.edge.problems import problem_bytes

MAX_HEADER_BYTES = 32 * 1024  # the default of PIPELINES_MAX_HEADER_BYTES: request line and headers together
MAX_HEADERS = 100  # the default of PIPELINES_MAX_HEADERS: header fields in one request


class _HeadTooLargeError(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol refusing a request head over ``max_header_bytes`` or ``max_headers`` (431)."""

    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES
    max_headers: ClassVar[int] = MAX_HEADERS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between the end of a request (or the connection's start) and its next head's end
        self._head_received = 0  # bytes received since then
        self._head_parsed = 0  # bytes of the request line and the headers the parser gave
        self._header_count = 0
        self._over: str | None = None  # the bound a parser callback found passed
        self._refusal: str | None = None

    def data_received(self, data: bytes) -> None:
        counting = self._in_head
        if counting:
            self._head_received += len(data)
        super().data_received(data)
        # still in the head after this read: everything received since it began is head
        if counting and self._in_head and self._head_received > self.max_header_bytes:
            self._refuse(self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_parsed = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        if self._head_parsed > self.max_header_bytes:
            self._stop(self._too_large())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_parsed += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_count > self.max_headers:
            self._stop(f"a request may have at most {self.max_headers} header fields")
        if self._head_parsed > self.max_header_bytes:
            self._stop(self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_received = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers any error of the parser 400; a bound above stopped the parser: 431."""
        if self._over is not None:
            self._refuse(self._over)
        else:
            super().send_400_response(msg)

    def _stop(self, detail: str) -> None:
        """Stop the parser from a callback (it raises HttpParserCallbackError; uvicorn then sends its 400)."""
        self._over = detail
        raise _HeadTooLargeError(detail)

    def _too_large(self) -> str:
        return f"the request line and headers may be at most {self.max_header_bytes} bytes"

    def _refuse(self, detail: str) -> None:
        if self._refusal is not None or self.transport.is_closing():
            return
        self._refusal = detail
        body = problem_bytes(431, detail, "headers_too_large")
        head = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_http(max_header_bytes: int = MAX_HEADER_BYTES, max_headers: int = MAX_HEADERS) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these bounds."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "max_headers": max_headers},
    )
