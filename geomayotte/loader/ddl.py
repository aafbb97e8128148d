"""Tables of the data model, created from the source specs (identifiers quoted, values bound)."""
from __future__ import annotations

from psycopg2 import sql

from geomayotte.loader.spec import Sources, TableSpec

SQL_TYPES = {
    'text': 'text', 'integer': 'integer', 'bigint': 'bigint', 'double': 'double precision',
    'date': 'date', 'timestamptz': 'timestamptz', 'epoch': 'timestamptz', 'text[]': 'text[]',
}


def create_table(cur, sources: Sources, spec: TableSpec) -> None:
    schema = sql.Identifier(sources.schema)
    table = sql.Identifier(sources.schema, spec.name)
    cur.execute(sql.SQL('CREATE SCHEMA IF NOT EXISTS {}').format(schema))
    cur.execute('CREATE EXTENSION IF NOT EXISTS postgis')
    cur.execute('CREATE EXTENSION IF NOT EXISTS unaccent')   # CQL2 ACCENTI()
    cols = []
    for f in spec.fields:
        col = sql.SQL('{} {}').format(sql.Identifier(f.column), sql.SQL(SQL_TYPES[f.type]))
        if f.column == spec.key:
            col = sql.SQL('{} NOT NULL PRIMARY KEY').format(col)
        if f.pattern:
            col = sql.SQL('{} CONSTRAINT {} CHECK ({} ~ {})').format(
                col, sql.Identifier(f'{spec.name}_{f.column}_pattern'),
                sql.Identifier(f.column), sql.Literal(f.pattern))
        if f.column in spec.references:
            col = sql.SQL('{} REFERENCES {} DEFERRABLE INITIALLY DEFERRED').format(
                col, sql.Identifier(sources.schema, spec.references[f.column]))
        cols.append(col)
    if spec.geometry:
        cols.append(sql.SQL('geom geometry({}, {}) NOT NULL').format(
            sql.SQL(spec.geometry), sql.Literal(sources.storage_srid)))
        # Invalid geometries are kept as received; their validity is recorded beside them.
        cols.append(sql.SQL('geom_valid boolean GENERATED ALWAYS AS (ST_IsValid(geom)) STORED'))
        cols.append(sql.SQL('geom_invalid_reason text GENERATED ALWAYS AS '
                            '(CASE WHEN ST_IsValid(geom) THEN NULL ELSE ST_IsValidReason(geom) END) STORED'))
    # when and by which partner a feature last changed through the API (modifie_par NULL: as
    # loaded from the source file, which the loader may then update or remove)
    cols.append(sql.SQL('modifie_le timestamptz NOT NULL DEFAULT now()'))
    cols.append(sql.SQL('modifie_par text'))
    cur.execute(sql.SQL('CREATE TABLE IF NOT EXISTS {} ({})').format(table, sql.SQL(', ').join(cols)))
    cur.execute('SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND '
                "table_name = %s AND column_name IN ('modifie_le', 'modifie_par')",
                (sources.schema, spec.name))
    if cur.fetchone()[0] < 2:   # a table made before these columns (ALTER locks out readers)
        cur.execute(sql.SQL('ALTER TABLE {} ADD COLUMN IF NOT EXISTS modifie_le timestamptz NOT NULL '
                            'DEFAULT now(), ADD COLUMN IF NOT EXISTS modifie_par text').format(table))
    cur.execute(sql.SQL('CREATE INDEX IF NOT EXISTS {} ON {} (modifie_le)').format(
        sql.Identifier(f'{spec.name}_modifie_le_idx'), table))
    if spec.geometry:
        cur.execute(sql.SQL('CREATE INDEX IF NOT EXISTS {} ON {} USING gist (geom)').format(
            sql.Identifier(f'{spec.name}_geom_gist'), table))
    for f in spec.fields:
        if f.type in ('timestamptz', 'epoch', 'date') or f.column in spec.references:
            cur.execute(sql.SQL('CREATE INDEX IF NOT EXISTS {} ON {} ({})').format(
                sql.Identifier(f'{spec.name}_{f.column}_idx'), table, sql.Identifier(f.column)))
