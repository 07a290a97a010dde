"""A minimal HTTP/1.1 keep-alive client on asyncio streams: cheap enough per request that a 2-core
machine keeps most of its CPU for the server (no header objects, no per-request task)."""

from __future__ import annotations

import asyncio

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """A response this client cannot read (not HTTP/1.1, no Content-Length, a head too large)."""


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, keep-alive) from a response head ending in CRLF CRLF."""
    status_line, _, rest = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    length: int | None = None
    keep_alive = parts[0] == b"HTTP/1.1"
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
        elif name == b"transfer-encoding":
            raise HttpError("chunked responses are not supported by this client")
    if length is None:
        raise HttpError("the response has no Content-Length")
    return int(parts[1]), length, keep_alive


class Connection:
    """One keep-alive connection; `request` sends prepared request bytes and reads the whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.local_port: int = writer.get_extra_info("sockname")[1]
        self.open = True
        self.requests = 0
        self.owner: int | None = None  # the worker pid holding the other end, once known

    @classmethod
    async def connect(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError("response head larger than 64 kB") from None
        status, length, keep_alive = parse_head(head)
        body = await self.reader.readexactly(length)
        self.requests += 1
        if not keep_alive:
            self.close()
        return status, body

    def close(self) -> None:
        if self.open:
            self.open = False
            self.writer.close()
