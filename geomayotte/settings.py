"""Settings read from the environment, in one place.

Every knob a user may turn is an environment variable; the defaults make
``make serve`` work on a fresh clone next to ``../shared/data/mayotte``.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


class SettingError(ValueError):
    """An environment variable that is not what it should be."""


def _number(name: str, default: str, kind=int):
    raw = _env(name, default)
    try:
        return kind(raw)
    except ValueError:
        raise SettingError(f'{name}={raw!r} is not {"an integer" if kind is int else "a number"}') from None


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, '') else default


def config_dir() -> Path:
    """The reference model and loader specs (``config/``)."""
    return Path(_env('GEOMAYOTTE_CONFIG_DIR', str(PROJECT_DIR / 'config')))


def pygeoapi_config() -> Path:
    return Path(_env('PYGEOAPI_CONFIG', str(PROJECT_DIR / 'pygeoapi-config.yml')))


def data_dir() -> Path:
    """Directory holding the real Mayotte source files."""
    return Path(_env('GEOMAYOTTE_DATA_DIR',
                     str(PROJECT_DIR.parent / 'shared' / 'data' / 'mayotte')))


def pgdata_dir() -> Path:
    """Data directory of the private PostgreSQL cluster (when no DATABASE_URL)."""
    return Path(_env('GEOMAYOTTE_PGDATA', str(PROJECT_DIR / '.pgdata')))


def pg_port() -> int:
    return _number('GEOMAYOTTE_PGPORT', '54329')


def database_url() -> str:
    """The database the platform talks to.

    ``DATABASE_URL`` when given, otherwise the private cluster's URL.
    """
    url = os.environ.get('DATABASE_URL')
    if url:
        return url
    return f'postgresql://postgres@127.0.0.1:{pg_port()}/geomayotte'


def pool_size() -> int:
    """Connections kept per server process."""
    return _number('GEOMAYOTTE_POOL_SIZE', '4')


def statement_timeout() -> float:
    """Seconds a query of the server may run before PostgreSQL stops it (0: never)."""
    return _number('GEOMAYOTTE_STATEMENT_TIMEOUT', '30', float)


def exact_count_limit() -> int:
    """Above this planner estimate, ``numberMatched`` is not counted exactly."""
    return _number('GEOMAYOTTE_EXACT_COUNT_LIMIT', '100000')


def stream_rows() -> int:
    """GeoJSON pages of at least this many features are streamed, not built in memory."""
    return _number('GEOMAYOTTE_STREAM_ROWS', '2000')


def stream_batch() -> int:
    """Features fetched from the server-side cursor per chunk of a streamed page."""
    return _number('GEOMAYOTTE_STREAM_BATCH', '500')


def apply_defaults() -> None:
    """The environment pygeoapi reads at import time, with the project's defaults (the server
    and the command-line tools alike)."""
    os.environ.setdefault('PYGEOAPI_CONFIG', str(pygeoapi_config()))
    os.environ.setdefault('PYGEOAPI_OPENAPI', str(PROJECT_DIR / 'openapi' / 'openapi.yml'))
    os.environ.setdefault('DATABASE_URL', database_url())
    os.environ.setdefault('GEOMAYOTTE_DATA_DIR', str(data_dir()))
    os.environ.setdefault('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000')
