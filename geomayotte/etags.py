"""Entity tags of features (RFC 9110 8.8.3, 13.1).

A feature's ETag is its row's version, ``"md5(row)"``, the same in every representation
(CRS, language): a client that read a feature in CRS84 may write it back with that tag.
Reads (``geomayotte.fastpath``) answer ``If-None-Match`` with 304; writes
(``geomayotte.writes``) refuse a failed ``If-Match`` or ``If-None-Match`` with 412.
"""
from __future__ import annotations


def _tags(header: str) -> set[str]:
    return {t.strip() for t in header.split(',') if t.strip()}


def if_match(header: str | None, etag: str | None) -> bool:
    """Does ``If-Match`` hold: absent, ``*`` on an existing feature, or naming ``etag`` by
    strong comparison (a weak tag never matches)?"""
    if header is None:
        return True
    tags = _tags(header)
    return etag is not None and ('*' in tags or etag in tags)


def none_match(header: str | None, etag: str | None) -> bool:
    """Does ``If-None-Match`` name the feature: ``*`` on an existing one, or ``etag`` by
    weak comparison (``W/"x"`` names ``"x"``)?"""
    if not header or etag is None:
        return False
    tags = {t.removeprefix('W/') for t in _tags(header)}
    return '*' in tags or etag in tags
