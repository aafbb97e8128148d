"""The raw HTTP request of the call being served, for the provider.

pygeoapi hands providers pre-digested arguments only. A few things need the raw
request: the keyset ``cursor`` of our ``next`` links, the untransformed ``bbox``
(so antimeridian boxes and boxes larger than the storage CRS' domain are handled),
``filter-crs`` for CQL2 BBOX(). The WSGI middleware sets it for each request.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from geomayotte.access.policy import ANONYMOUS, Principal


@dataclass
class RequestInfo:
    url: str                              # scheme://host/path without query
    principal: Principal = ANONYMOUS      # who is asking (geomayotte.access)
    params: list[tuple[str, str]] = field(default_factory=list)
    filter_json: bool = False             # the CQL2 filter came as JSON (query or body)
    filter_body: str | None = None        # that JSON, to repeat it in paging links
    raw_json: bool = False                # the answer will be GeoJSON: features may stay text
    raw_features: str | None = None       # the page's features as PostGIS wrote them
    can_stream: bool = False              # a GET or POST whose body may be streamed
    stream: tuple | None = None           # (database URL, statement, parameters) of a page
                                          # too large to build in memory: streamed by the middleware
    last_page: bool | None = None         # set by the provider after an items query
    links: list[dict] = field(default_factory=list)   # the provider's paging links

    def get(self, name: str, default=None):
        for k, v in self.params:
            if k == name:
                return v
        return default


current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    'geomayotte_request', default=None)
