"""Length-prefixed pickle messages over pipes, with a deadline on reads."""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from typing import Any, BinaryIO

_HEADER = struct.Struct("!Q")


def send_message(stream: BinaryIO, message: Any) -> None:
    """Write one length-prefixed pickle to `stream`."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_message(fd: int, deadline: float | None) -> Any:
    """Read one length-prefixed pickle from file descriptor `fd`.

    Raises TimeoutError when `deadline` (a `time.monotonic()` value) passes first and EOFError when
    the other side closed the pipe.
    """
    header = _read_exactly(fd, _HEADER.size, deadline)
    (length,) = _HEADER.unpack(header)
    return pickle.loads(_read_exactly(fd, length, deadline))


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
