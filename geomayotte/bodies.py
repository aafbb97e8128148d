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


class Unfit(ValueError):
    """A JSON document PostgreSQL or our parsers cannot take."""


def bad_string(value: str) -> str | None:
    """Why PostgreSQL text cannot hold ``value`` (NUL, lone surrogate), or None."""
    if '\x00' in value:
        return 'NUL characters are not allowed in text'
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        return 'unpaired UTF-16 surrogates are not text'
    return None


def check_json(doc, max_depth: int, on_object=None) -> None:
    """Every key and value of a parsed JSON document, iteratively (hostile nesting must not
    exhaust the stack): at most ``max_depth`` levels, no NUL or lone surrogate in a string
    or key (raises ``Unfit``); ``on_object`` sees each object."""
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise Unfit(f'nested too deeply ({max_depth} levels at most)')
        if isinstance(node, dict):
            if on_object is not None:
                on_object(node)
            stack.extend((k, depth + 1) for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str) and (why := bad_string(node)):
            raise Unfit(why)
