"""What a served table looks like, read once from the PostgreSQL catalog.

Every identifier that reaches SQL is checked against this description first.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from geomayotte import database
from geomayotte.errors import GeoMayotteError

# PostgreSQL type -> (JSON Schema type, format, value kind used to coerce filter literals)
_TYPES = {
    'text': ('string', None, 'text'), 'character varying': ('string', None, 'text'),
    'character': ('string', None, 'text'),
    'integer': ('integer', None, 'integer'), 'bigint': ('integer', None, 'integer'),
    'smallint': ('integer', None, 'integer'),
    'double precision': ('number', 'double', 'number'), 'real': ('number', 'float', 'number'),
    'numeric': ('number', None, 'number'),
    'boolean': ('boolean', None, 'boolean'),
    'date': ('string', 'date', 'date'),
    'timestamp with time zone': ('string', 'date-time', 'datetime'),
    'timestamp without time zone': ('string', 'date-time', 'datetime'),
    'ARRAY': ('array', None, 'array'),
}


def kind_of(pg_type: str) -> str:
    """The value kind of a PostgreSQL type as ``format_type`` writes it (``integer``,
    ``character varying(10)``, ``text[]`` -> ``array``)."""
    if pg_type.endswith('[]'):
        return 'array'
    return _TYPES.get(pg_type.split('(')[0], ('string', None, 'text'))[2]


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    json_type: str
    format: str | None
    kind: str


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: dict[str, Column]    # served properties, in table order
    key: str
    geometry: str | None
    srid: int | None
    geometry_type: str | None
    has_validity: bool            # geom_valid column present (invalid geometries kept)

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)


class TableNotFound(GeoMayotteError):
    pass


_cache: dict[tuple[str, str, str], Table] = {}
_lock = threading.Lock()



def describe(url: str, schema: str, name: str) -> Table:
    """The table's description, from the catalog; cached for the process' life."""
    key = (url, schema, name)
    table = _cache.get(key)
    if table is None:
        with _lock:
            table = _cache.get(key) or _read(url, schema, name)
            _cache[key] = table
    return table


def _read(url: str, schema: str, name: str) -> Table:
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                   t.typname, t.typcategory
              FROM pg_attribute a
              JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_type t ON t.oid = a.atttypid
             WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum""", (schema, name))
        rows = cur.fetchall()
        if not rows:
            raise TableNotFound(f'table {schema}.{name} does not exist (run the loader?)')
        cur.execute("""
            SELECT a.attname
              FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass
               AND i.indisprimary""", (schema, name))
        pk = [r[0] for r in cur.fetchall()]
        cur.execute("""
            SELECT f_geometry_column, srid, type FROM geometry_columns
             WHERE f_table_schema = %s AND f_table_name = %s""", (schema, name))
        geo = cur.fetchall()
    if len(pk) != 1:
        raise GeoMayotteError(f'table {schema}.{name} needs a one-column primary key')
    columns = {}
    names = set()
    for attname, fmt, typname, category in rows:
        names.add(attname)
        if typname == 'geometry' or attname == 'modifie_par':   # geom_valid, modifie_le are served;
            continue                                                # who wrote is in the history
        base = 'ARRAY' if category == 'A' else fmt.split('(')[0]
        json_type, json_format, kind = _TYPES.get(base, ('string', None, 'text'))
        columns[attname] = Column(attname, fmt, json_type, json_format, kind)
    geom, srid, gtype = (geo[0] if geo else (None, None, None))
    return Table(schema=schema, name=name, columns=columns, key=pk[0], geometry=geom,
                 srid=srid, geometry_type=gtype, has_validity='geom_valid' in names)
