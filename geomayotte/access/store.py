"""The ``access`` schema: partners, their API keys (hashed) and their rights per dataset."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from geomayotte import database

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS access;
CREATE TABLE IF NOT EXISTS access.partner (
    id        text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{1,62}$'),
    name      text NOT NULL CHECK (name <> ''),
    created   timestamptz NOT NULL DEFAULT now(),
    disabled  timestamptz
);
CREATE TABLE IF NOT EXISTS access.api_key (
    id          text PRIMARY KEY,                  -- public part of the key
    partner     text NOT NULL REFERENCES access.partner ON DELETE CASCADE,
    secret_hash bytea NOT NULL,                    -- SHA-256 of the secret part
    label       text,
    created     timestamptz NOT NULL DEFAULT now(),
    expires     timestamptz,
    revoked     timestamptz
);
CREATE TABLE IF NOT EXISTS access.dataset_grant (
    partner   text NOT NULL REFERENCES access.partner ON DELETE CASCADE,
    dataset   text NOT NULL,
    can_write boolean NOT NULL DEFAULT false,
    granted   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner, dataset)
);
"""

_ready: set[str] = set()


class AccessError(Exception):
    """A management request that cannot be done (unknown partner, bad identifier ...)."""


def ensure_schema(url: str) -> None:
    if url in _ready:
        return
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('geomayotte.access.schema'))")
        cur.execute(SCHEMA_SQL)
    _ready.add(url)


def digest(secret: str) -> bytes:
    """Keys carry 256 random bits: a plain SHA-256 cannot be brute-forced, and it is what a
    lookup per request can afford (unlike a password hash)."""
    return hashlib.sha256(secret.encode()).digest()


# -- management (geomayotte-partners) -----------------------------------------------------
def add_partner(url: str, partner: str, name: str) -> None:
    ensure_schema(url)
    import psycopg2
    try:
        with database.connection(url) as conn, conn.cursor() as cur:
            cur.execute('INSERT INTO access.partner (id, name) VALUES (%s, %s)', (partner, name))
    except psycopg2.errors.UniqueViolation:
        raise AccessError(f'partner {partner!r} already exists') from None
    except psycopg2.errors.CheckViolation:
        raise AccessError(f'partner id {partner!r}: 2 to 63 characters among a-z 0-9 _ -, '
                          'starting with a letter or digit; name not empty') from None


def disable_partner(url: str, partner: str) -> None:
    _one(url, 'UPDATE access.partner SET disabled = now() WHERE id = %s', (partner,),
         f'unknown partner {partner!r}')


def enable_partner(url: str, partner: str) -> None:
    _one(url, 'UPDATE access.partner SET disabled = NULL WHERE id = %s', (partner,),
         f'unknown partner {partner!r}')


def add_key(url: str, partner: str, key_id: str, secret: str, label: str | None,
            expires: dt.datetime | None) -> None:
    ensure_schema(url)
    _known(url, partner)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute('INSERT INTO access.api_key (id, partner, secret_hash, label, expires) '
                    'VALUES (%s, %s, %s, %s, %s)', (key_id, partner, digest(secret), label, expires))


def revoke_key(url: str, key_id: str) -> None:
    _one(url, 'UPDATE access.api_key SET revoked = now() WHERE id = %s AND revoked IS NULL',
         (key_id,), f'no active key {key_id!r}')


def grant(url: str, partner: str, dataset: str, write: bool) -> None:
    ensure_schema(url)
    _known(url, partner)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute('INSERT INTO access.dataset_grant (partner, dataset, can_write) VALUES (%s, %s, %s) '
                    'ON CONFLICT (partner, dataset) DO UPDATE SET can_write = EXCLUDED.can_write, '
                    'granted = now()', (partner, dataset, write))


def revoke_grant(url: str, partner: str, dataset: str) -> None:
    _one(url, 'DELETE FROM access.dataset_grant WHERE partner = %s AND dataset = %s',
         (partner, dataset), f'partner {partner!r} has no grant on {dataset!r}')


def listing(url: str) -> list[dict]:
    ensure_schema(url)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT p.id, p.name, p.disabled IS NOT NULL,
                   coalesce((SELECT json_agg(json_build_object('id', k.id, 'label', k.label,
                            'expires', k.expires, 'revoked', k.revoked) ORDER BY k.created)
                             FROM access.api_key k WHERE k.partner = p.id), '[]'),
                   coalesce((SELECT json_agg(json_build_object('dataset', g.dataset,
                            'write', g.can_write) ORDER BY g.dataset)
                             FROM access.dataset_grant g WHERE g.partner = p.id), '[]')
            FROM access.partner p ORDER BY p.id""")
        return [{'id': r[0], 'name': r[1], 'disabled': r[2], 'keys': r[3], 'grants': r[4]}
                for r in cur.fetchall()]


def _known(url, partner):
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute('SELECT 1 FROM access.partner WHERE id = %s', (partner,))
        if cur.fetchone() is None:
            raise AccessError(f'unknown partner {partner!r}')


def _one(url, stmt, params, missing):
    ensure_schema(url)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(stmt, params)
        if cur.rowcount == 0:
            raise AccessError(missing)


# -- per request -------------------------------------------------------------------------
def key_holder(url: str, key_id: str, secret: str) -> tuple[str, dict[str, bool]] | None:
    """(partner, {dataset: can_write}) for a valid, unexpired, unrevoked key of an active
    partner; None otherwise."""
    ensure_schema(url)
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT k.partner, k.secret_hash,
                   coalesce((SELECT json_object_agg(g.dataset, g.can_write)
                             FROM access.dataset_grant g WHERE g.partner = k.partner), '{}')
            FROM access.api_key k JOIN access.partner p ON p.id = k.partner
            WHERE k.id = %s AND k.revoked IS NULL AND p.disabled IS NULL
              AND (k.expires IS NULL OR k.expires > now())""", (key_id,))
        row = cur.fetchone()
    if row is None or not hmac.compare_digest(bytes(row[1]), digest(secret)):
        return None
    return row[0], row[2]


def partner_grants(url: str, partner: str) -> dict[str, bool] | None:
    """{dataset: can_write} of an active partner (OIDC callers); None if unknown or disabled."""
    ensure_schema(url)
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT coalesce((SELECT json_object_agg(g.dataset, g.can_write)
                             FROM access.dataset_grant g WHERE g.partner = p.id), '{}')
            FROM access.partner p WHERE p.id = %s AND p.disabled IS NULL""", (partner,))
        row = cur.fetchone()
    return row[0] if row else None
