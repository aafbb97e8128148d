"""The caller and what it may see.

Every collection has a diffusion level in ``config/datasets.yml``:

- ``open``: anyone, anonymous callers included;
- ``partners``: any authenticated partner;
- ``restricted``: partners holding a grant on it (``geomayotte-partners grant``).

A collection without a level is treated as restricted (nothing leaks by omission),
except a records catalogue, open by nature (its records are filtered one by one).
Writing needs a grant with write rights, whatever the level.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from geomayotte import settings
from geomayotte.access import store, tokens

LEVELS = ('open', 'partners', 'restricted')


@dataclass(frozen=True)
class Principal:
    partner: str | None = None                     # None: anonymous
    grants: dict = field(default_factory=dict)     # dataset -> can write
    via: str = 'anonymous'                         # anonymous | api-key | oidc

    @property
    def authenticated(self) -> bool:
        return self.partner is not None

    def can_read(self, dataset: str) -> bool:
        level = diffusion(dataset)
        return level == 'open' or (self.authenticated and (
            level == 'partners' or dataset in self.grants))

    def can_write(self, dataset: str) -> bool:
        return self.authenticated and bool(self.grants.get(dataset)) and self.can_read(dataset)


ANONYMOUS = Principal()


def authenticate(authorization: str | None, url: str | None = None) -> Principal:
    """The caller of a request from its ``Authorization`` header; ``tokens.Unauthorized``
    for a credential that is present but not valid."""
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.strip().partition(' ')
    token = token.strip()
    if scheme.lower() != 'bearer' or not token:
        raise tokens.Unauthorized('give the credential as "Authorization: Bearer <token>"')
    url = url or settings.database_url()
    key = tokens.parse_key(token)
    if key is not None:
        holder = store.key_holder(url, *key)
        if holder is None:
            raise tokens.Unauthorized('unknown, revoked or expired API key, or its partner is disabled')
        return Principal(holder[0], holder[1], 'api-key')
    if token.startswith(tokens.PREFIX):
        raise tokens.Unauthorized('malformed API key')
    partner = tokens.verify_jwt(token)
    grants = store.partner_grants(url, partner)
    if grants is None:
        raise tokens.Unauthorized('the token names no active partner of this platform')
    return Principal(partner, grants, 'oidc')


# -- diffusion levels ------------------------------------------------------------------------
_lock = threading.Lock()
_levels: dict = {}


def levels() -> dict[str, str]:
    """{collection: level} from config/datasets.yml (re-read when the file changes)."""
    import yaml
    path = settings.config_dir() / 'datasets.yml'
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return {}
    found = _levels.get(stamp)
    if found is None:
        with open(path, encoding='utf-8') as fh:
            doc = yaml.safe_load(fh) or {}
        found = {rid: entry.get('diffusion') for rid, entry in (doc.get('datasets') or {}).items()
                 if isinstance(entry, dict) and entry.get('diffusion') in LEVELS}
        with _lock:
            _levels.clear()
            _levels[stamp] = found
    return found


def _records_collections() -> set[str]:
    from pygeoapi.flask_app import CONFIG
    return {rid for rid, res in CONFIG.get('resources', {}).items()
            if any(p.get('type') == 'record' for p in res.get('providers') or [])}


def diffusion(dataset: str) -> str:
    level = levels().get(dataset)
    if level is None:
        return 'open' if dataset in _records_collections() else 'restricted'
    return level
