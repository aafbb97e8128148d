"""What every command-line tool does with the errors a user can cause: a database that
cannot be reached, a setting that is not a number, our own errors. One line saying what
is wrong and exit status 2, never a Python traceback."""
from __future__ import annotations

import functools
import sys

import psycopg2


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, 'user_msg', None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def friendly(prog: str):
    """Decorate a ``main(argv) -> int``."""
    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs):
            from pygeoapi.provider.base import ProviderGenericError   # imported only here:
            from geomayotte.errors import GeoMayotteError             # geomayotte-db stays light
            from geomayotte.settings import SettingError
            import psycopg     # procrastinate's driver (the job queue)
            try:
                return main(*args, **kwargs)
            except (psycopg2.OperationalError, psycopg2.ProgrammingError, psycopg.OperationalError,
                    psycopg.ProgrammingError) as err:
                print(f'{prog}: database not reachable: {_first_line(err)} (check DATABASE_URL, '
                      'or GEOMAYOTTE_PGPORT for the private cluster: geomayotte-db status)',
                      file=sys.stderr)
            except (GeoMayotteError, SettingError, ProviderGenericError) as err:
                print(f'{prog}: {_first_line(err)}', file=sys.stderr)
            return 2
        return run
    return wrap
