"""Bearer credentials: the platform's API keys and OpenID Connect JWTs.

An API key reads ``gmk_<id>.<secret>``: the id finds the key, the secret is compared with
its stored SHA-256. Anything else sent as a bearer token is taken for a JWT, verified
against the configured issuer's key set (``GEOMAYOTTE_OIDC_ISSUER``, ``GEOMAYOTTE_OIDC_JWKS``
(a URL or a file), ``GEOMAYOTTE_OIDC_AUDIENCE``), asymmetric algorithms only; its
``GEOMAYOTTE_OIDC_PARTNER_CLAIM`` claim (default ``partner``) names the partner, who must
exist in the ``access`` schema.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path

PREFIX = 'gmk_'
_KEY = re.compile(r'^gmk_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$')
PARTNER_ID = re.compile(r'[a-z0-9][a-z0-9_-]{1,62}')   # as access.partner's CHECK
ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']


class Unauthorized(Exception):
    """The credential is not valid (the reason is for the caller: no secret in it)."""


def new_key() -> tuple[str, str, str]:
    """(token, key id, secret) of a fresh API key; the token is shown once, never stored."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return f'{PREFIX}{key_id}.{secret}', key_id, secret


def parse_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of something shaped like one of our keys, else None."""
    m = _KEY.match(token)
    return (m.group(1), m.group(2)) if m else None


def oidc_configured() -> bool:
    return bool(os.environ.get('GEOMAYOTTE_OIDC_ISSUER') and os.environ.get('GEOMAYOTTE_OIDC_JWKS'))


_lock = threading.Lock()
_jwks: dict = {}


def _signing_key(token: str):
    import jwt
    source = os.environ['GEOMAYOTTE_OIDC_JWKS']
    if source.startswith(('http://', 'https://')):
        with _lock:
            client = _jwks.get(source)
            if client is None:
                client = _jwks[source] = jwt.PyJWKClient(source, cache_keys=True, lifespan=300)
        return client.get_signing_key_from_jwt(token).key
    path = Path(source)
    stamp = (source, path.stat().st_mtime_ns)
    with _lock:
        keyset = _jwks.get(stamp)
        if keyset is None:
            keyset = _jwks[stamp] = jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
    kid = jwt.get_unverified_header(token).get('kid')
    for key in keyset.keys:
        if kid is None or key.key_id == kid:
            return key.key
    raise Unauthorized('the token is signed with a key the issuer does not publish')


def verify_jwt(token: str) -> str:
    """The partner named by a valid JWT of the configured issuer."""
    import jwt
    if not oidc_configured():
        raise Unauthorized('not an API key of this platform, and no OpenID Connect issuer is configured')
    try:
        key = _signing_key(token)
        claims = jwt.decode(token, key, algorithms=ALGORITHMS,
                            audience=os.environ.get('GEOMAYOTTE_OIDC_AUDIENCE') or None,
                            issuer=os.environ['GEOMAYOTTE_OIDC_ISSUER'],
                            options={'require': ['exp', 'iss'],
                                     'verify_aud': bool(os.environ.get('GEOMAYOTTE_OIDC_AUDIENCE'))},
                            leeway=30)
    except jwt.ExpiredSignatureError:
        raise Unauthorized('the token has expired') from None
    except jwt.PyJWKClientError as err:
        raise Unauthorized(f'the issuer\'s keys cannot be read: {err}') from None
    except (jwt.PyJWTError, TypeError, ValueError, KeyError) as err:
        # bad signature, claims, or a key that does not fit the token's algorithm
        raise Unauthorized(f'invalid token: {err}') from None
    if not isinstance(claims.get('exp'), (int, float)) or isinstance(claims.get('exp'), bool):
        raise Unauthorized('invalid token: "exp" must be a number (NumericDate)')
    claim = os.environ.get('GEOMAYOTTE_OIDC_PARTNER_CLAIM', 'partner')
    partner = claims.get(claim)
    if not isinstance(partner, str) or not PARTNER_ID.fullmatch(partner):
        raise Unauthorized(f'the token has no {claim!r} claim naming a partner')
    return partner
