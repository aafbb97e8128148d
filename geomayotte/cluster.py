"""A private PostgreSQL + PostGIS cluster inside the project directory.

Used when no ``DATABASE_URL`` is given: ``geomayotte-db start`` creates (once)
and starts a cluster on its own port and data directory, so nothing else on the
machine is touched.  PostgreSQL refuses to run as root, so when we are root the
cluster belongs to the ``postgres`` user and is driven through ``runuser``.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from geomayotte import commands, settings

DBNAME = 'geomayotte'
POSTGIS_PACKAGE = 'postgresql-{major}-postgis-3'


class ClusterError(RuntimeError):
    """Something the user must fix; the message says what."""


def _bindir() -> Path:
    explicit = os.environ.get('GEOMAYOTTE_PG_BINDIR')
    candidates = [explicit] if explicit else sorted(
        glob.glob('/usr/lib/postgresql/*/bin'),
        key=lambda p: int(Path(p).parent.name), reverse=True)
    for cand in candidates:
        if cand and (Path(cand) / 'pg_ctl').exists():
            return Path(cand)
    found = shutil.which('pg_ctl')
    if found:
        return Path(found).parent
    raise ClusterError(
        'PostgreSQL server binaries (pg_ctl, initdb) not found. Install them, '
        'e.g. `apt-get install postgresql-15 postgresql-15-postgis-3`, or set '
        'DATABASE_URL to an existing PostGIS database.')


def _major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / 'pg_config'), '--version'] if (bindir / 'pg_config').exists()
                         else [str(bindir / 'postgres'), '--version'],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[-1].split('.')[0]


def _postgis_available(bindir: Path) -> bool:
    major = _major(bindir)
    return any(Path(p).exists() for p in (
        f'/usr/share/postgresql/{major}/extension/postgis.control',
        str(bindir.parent / 'share' / 'extension' / 'postgis.control')))


def ensure_postgis(bindir: Path) -> None:
    if _postgis_available(bindir):
        return
    package = POSTGIS_PACKAGE.format(major=_major(bindir))
    if os.geteuid() == 0 and shutil.which('apt-get'):
        print(f'PostGIS is missing: installing {package} with apt-get', file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'update', '-qq'], check=True, env=env)
        subprocess.run(['apt-get', 'install', '-y', '-qq', package], check=True, env=env)
        if _postgis_available(bindir):
            return
    raise ClusterError(
        f'PostGIS is not installed for PostgreSQL {_major(bindir)}: install the '
        f'Debian package `{package}` (as root: apt-get install {package}).')


def _as_owner(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ['runuser', '-u', 'postgres', '--', *cmd]
    return subprocess.run(cmd, **kw)


def _sockdir(pgdata: Path) -> Path:
    return pgdata / 'socket'


def status(pgdata: Path, bindir: Path) -> bool:
    if not (pgdata / 'PG_VERSION').exists():
        return False
    res = _as_owner([str(bindir / 'pg_ctl'), '-D', str(pgdata), 'status'],
                    capture_output=True, text=True)
    return res.returncode == 0


def running_port(pgdata: Path) -> int | None:
    """The port the cluster in ``pgdata`` was started on (postmaster.pid, line 4), if known."""
    try:
        lines = (pgdata / 'postmaster.pid').read_text().splitlines()
        return int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def _other_port(pgdata: Path, port: int) -> str | None:
    """Why a running cluster in ``pgdata`` is not the one on ``port`` (None if it is)."""
    actual = running_port(pgdata)
    if actual is None or actual == port:
        return None
    return (f'the cluster in {pgdata} runs on port {actual}, not {port}: set '
            f'GEOMAYOTTE_PGPORT={actual} (or stop it: geomayotte-db stop)')


def init(pgdata: Path, bindir: Path) -> None:
    if (pgdata / 'PG_VERSION').exists():
        return
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(pgdata, 'postgres', 'postgres')
        probe = subprocess.run(['runuser', '-u', 'postgres', '--', 'test', '-w', str(pgdata)])
        if probe.returncode != 0:
            raise ClusterError(
                f'The postgres user cannot write to {pgdata} (a parent directory is '
                'not traversable?). Set GEOMAYOTTE_PGDATA to a directory it can use, '
                'or DATABASE_URL to an existing database.')
    res = _as_owner([str(bindir / 'initdb'), '-D', str(pgdata), '-U', 'postgres',
                     '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8'],
                    capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f'initdb failed:\n{res.stdout}\n{res.stderr}')
    conf = pgdata / 'postgresql.conf'
    with open(conf, 'a') as fh:
        fh.write('\n# geomayotte private cluster\n'
                 "listen_addresses = '127.0.0.1'\n"
                 'max_connections = 200\n'
                 'shared_buffers = 256MB\n'
                 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
                 "unix_socket_directories = 'socket'\n")
    sock = _sockdir(pgdata)
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(sock, 'postgres', 'postgres')


def start(pgdata: Path, port: int, bindir: Path) -> str:
    ensure_postgis(bindir)
    init(pgdata, bindir)
    if status(pgdata, bindir):
        if (why := _other_port(pgdata, port)):
            raise ClusterError(why)
    else:
        log = pgdata / 'server.log'
        res = _as_owner([str(bindir / 'pg_ctl'), '-D', str(pgdata), '-l', str(log),
                         '-o', f'-p {port}', '-w', '-t', '60', 'start'],
                        capture_output=True, text=True)
        if res.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ''
            if 'already in use' in tail:     # the one thing to say (the log says no more)
                raise ClusterError(f'Port {port} is taken (another cluster?): give another one with '
                                   'GEOMAYOTTE_PGPORT (environment or make argument).')
            raise ClusterError(f'PostgreSQL did not start on port {port}:\n{res.stderr}\n{tail}')
    _wait_ready(port, bindir)
    _ensure_database(port, bindir)
    return url(port)


def _psql(port: int, bindir: Path, dbname: str, sql: str) -> str:
    res = subprocess.run([str(bindir / 'psql'), '-h', '127.0.0.1', '-p', str(port), '-U', 'postgres',
                          '-d', dbname, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f'psql failed: {res.stderr.strip()}')
    return res.stdout.strip()


def _wait_ready(port: int, bindir: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([str(bindir / 'pg_isready'), '-h', '127.0.0.1', '-p', str(port)],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise ClusterError(f'PostgreSQL on port {port} is not accepting connections')


def _ensure_database(port: int, bindir: Path) -> None:
    exists = _psql(port, bindir, 'postgres',
                   f"SELECT 1 FROM pg_database WHERE datname = '{DBNAME}'")  # constant name
    if not exists:
        _psql(port, bindir, 'postgres', f'CREATE DATABASE {DBNAME}')
    _psql(port, bindir, DBNAME, 'CREATE EXTENSION IF NOT EXISTS postgis')
    _psql(port, bindir, DBNAME, 'CREATE EXTENSION IF NOT EXISTS unaccent')


def stop(pgdata: Path, bindir: Path) -> None:
    if status(pgdata, bindir):
        _as_owner([str(bindir / 'pg_ctl'), '-D', str(pgdata), '-m', 'fast', '-w', 'stop'],
                  check=True, capture_output=True)


def url(port: int) -> str:
    return f'postgresql://postgres@127.0.0.1:{port}/{DBNAME}'


@commands.friendly('geomayotte-db')
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='geomayotte-db',
        description='Manage the private PostgreSQL + PostGIS cluster of the platform '
                    '(used when DATABASE_URL is not set). Data directory: '
                    '$GEOMAYOTTE_PGDATA (default .pgdata/ in the project); '
                    'port: $GEOMAYOTTE_PGPORT (default 54329).')
    parser.add_argument('action', choices=['start', 'stop', 'status', 'url'],
                        help='start: create if needed and start, then print the URL; '
                             'stop; status: "running" (exit 0), "stopped" (exit 3), or running '
                             'on another port than the one given (exit 4); url: print the '
                             'database URL (of the port given; nothing is checked)')
    parser.add_argument('--pgdata', type=Path, default=None, help='data directory')
    parser.add_argument('--port', type=int, default=None, help='TCP port on 127.0.0.1')
    args = parser.parse_args(argv)
    pgdata = (args.pgdata or settings.pgdata_dir()).resolve()
    port = args.port or settings.pg_port()
    try:
        if args.action == 'url':
            print(url(port))
            return 0
        bindir = _bindir()
        if args.action == 'start':
            print(start(pgdata, port, bindir))
        elif args.action == 'stop':
            stop(pgdata, bindir)
        else:
            running = status(pgdata, bindir)
            if running and (why := _other_port(pgdata, port)):
                print(f'running on port {running_port(pgdata)}, not {port}')
                print(f'geomayotte-db: {why}', file=sys.stderr)
                return 4
            print('running' if running else 'stopped')
            return 0 if running else 3
    except ClusterError as err:
        print(f'geomayotte-db: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
