"""Settings read from the environment, in one place.

Every knob a user may turn is an environment variable; the defaults make
``make serve`` work on a fresh clone next to ``../shared/data/mayotte``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


class SettingError(ValueError):
    """An environment variable that is not what it should be."""


def _number(name: str, default: str, kind=int, minimum=None, maximum=None):
    raw = _env(name, default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)):
        raise SettingError(f'{name}={raw!r} is not {"an integer" if kind is int else "a number"}')
    if minimum is not None and value < minimum:
        raise SettingError(f'{name}={raw!r}: at least {minimum}')
    if maximum is not None and value > maximum:
        raise SettingError(f'{name}={raw!r}: at most {maximum}')
    return value


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
    return _number('GEOMAYOTTE_PGPORT', '54329', minimum=1, maximum=65535)


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
    return _number('GEOMAYOTTE_POOL_SIZE', '4', minimum=1, maximum=1000)


def statement_timeout() -> float:
    """Seconds a query of the server may run before PostgreSQL stops it (0: never)."""
    # PostgreSQL takes at most 2^31-1 ms
    return _number('GEOMAYOTTE_STATEMENT_TIMEOUT', '30', float, minimum=0, maximum=2147483)


def exact_count_limit() -> int:
    """Above this planner estimate, ``numberMatched`` is not counted exactly."""
    return _number('GEOMAYOTTE_EXACT_COUNT_LIMIT', '100000', minimum=0)


def stream_rows() -> int:
    """GeoJSON pages of at least this many features are streamed, not built in memory."""
    return _number('GEOMAYOTTE_STREAM_ROWS', '2000', minimum=1)


def stream_batch() -> int:
    """Features fetched from the server-side cursor per chunk of a streamed page."""
    return _number('GEOMAYOTTE_STREAM_BATCH', '500', minimum=1)


def socket_timeout() -> float:
    """Seconds a send or receive on a client's socket may block (0: never stop)."""
    return _number('GEOMAYOTTE_SOCKET_TIMEOUT', '30', float, minimum=0, maximum=86400)


MiB = 1024 * 1024


def max_body() -> int:
    """Bytes of a CQL2 JSON search body."""
    return _number('GEOMAYOTTE_MAX_BODY', str(2 * MiB), minimum=1)


def max_write_body() -> int:
    """Bytes of a Features Part 4 write body."""
    return _number('GEOMAYOTTE_MAX_WRITE_BODY', str(16 * MiB), minimum=1)


def max_sync_body() -> int:
    """Bytes of process inputs run in the web worker (larger ones must run as jobs)."""
    return _number('GEOMAYOTTE_MAX_SYNC_BODY', str(8 * MiB), minimum=1)


def max_process_body() -> int:
    """Bytes of a process execution body."""
    return _number('GEOMAYOTTE_MAX_PROCESS_BODY', str(64 * MiB), minimum=1)


def max_filter_vertices() -> int:
    """Positions in a filter's geometry literals, all together."""
    return _number('GEOMAYOTTE_MAX_FILTER_VERTICES', '10000', minimum=1)


def max_feature_vertices() -> int:
    """Vertices of one submitted feature (validation, writes)."""
    return _number('GEOMAYOTTE_MAX_FEATURE_VERTICES', '50000', minimum=1)


def max_unzipped() -> int:
    """Unpacked bytes of a submitted zip."""
    return _number('GEOMAYOTTE_MAX_UNZIPPED', str(512 * MiB), minimum=1)


def job_timeout() -> int:
    """Seconds a job may run."""
    return _number('GEOMAYOTTE_JOB_TIMEOUT', '3600', minimum=1, maximum=30 * 86400)


def job_memory_mb() -> int:
    """Address-space ceiling of a job's process, in MiB."""
    return _number('GEOMAYOTTE_JOB_MEMORY_MB', '4096', minimum=64, maximum=16 * 1024 * 1024)


NUMBERS = (pg_port, pool_size, statement_timeout, exact_count_limit, stream_rows, stream_batch,
           socket_timeout, max_body, max_write_body, max_sync_body, max_process_body,
           max_filter_vertices, max_feature_vertices, max_unzipped, job_timeout, job_memory_mb)


def check() -> None:
    """Every numeric setting read once: the first wrong one raises SettingError."""
    for read in NUMBERS:
        read()


WORKER_BOOT_ERROR = 3     # gunicorn's exit status for a worker that cannot start


def check_or_exit() -> None:
    """For the server: a bad setting is one line on stderr and gunicorn stops ("Worker
    failed to boot") instead of starting workers again and again, each with a traceback."""
    import sys
    try:
        check()
    except SettingError as err:
        print(f'geomayotte: {err}', file=sys.stderr, flush=True)
        sys.exit(WORKER_BOOT_ERROR)


def apply_defaults() -> None:
    """The environment pygeoapi reads at import time, with the project's defaults (the server
    and the command-line tools alike)."""
    os.environ.setdefault('PYGEOAPI_CONFIG', str(pygeoapi_config()))
    os.environ.setdefault('PYGEOAPI_OPENAPI', str(PROJECT_DIR / 'openapi' / 'openapi.yml'))
    os.environ.setdefault('DATABASE_URL', database_url())
    os.environ.setdefault('GEOMAYOTTE_DATA_DIR', str(data_dir()))
    os.environ.setdefault('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000')
