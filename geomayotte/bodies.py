"""Request bodies refused for their size."""
from __future__ import annotations


def drain(environ, length: int, cap: int) -> None:
    """Read (and drop) a refused body, up to ``cap`` bytes, so that the client gets our
    answer (a 413) instead of a reset connection while it is still sending."""
    left = min(length, cap)
    stream = environ['wsgi.input']
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        left -= len(chunk)
