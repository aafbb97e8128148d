"""``geomayotte-load``: read the real Mayotte files with fiona and write them to PostGIS.

Idempotent: every table is synchronised with its source inside one transaction
(new keys inserted, changed rows updated, vanished keys deleted), so a second run
leaves the same rows.  A feature that cannot be loaded stops the load with its
file, index and reason: nothing is dropped silently.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import fiona
import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values
from tqdm import tqdm

from geomayotte import commands, settings
from geomayotte.writes import audit
from geomayotte.loader import convert, ddl, spec as specmod


class LoadError(RuntimeError):
    pass


@dataclass
class Result:
    table: str
    source: int
    inserted: int
    updated: int
    deleted: int
    rows: int


def read_rows(path: Path, spec: specmod.TableSpec, progress: bool):
    """Yield ``(row values, geometry GeoJSON, srid)`` for every feature of the file."""
    try:
        src = fiona.open(path, **spec.open_options)
    except Exception as err:  # fiona raises several driver-specific types
        raise LoadError(f'{path}: cannot be opened ({err})') from err
    with src:
        srid = spec.srid
        if srid is None and spec.geometry:
            epsg = src.crs.to_epsg() if src.crs else None
            if epsg is None:
                raise LoadError(f'{path}: no CRS in the file and none declared in sources.yml')
            srid = epsg
        known = {f.source for f in spec.fields}
        extra = set(src.schema['properties']) - known
        if spec.open_options.get('X_POSSIBLE_NAMES'):
            extra -= {spec.open_options['X_POSSIBLE_NAMES'], spec.open_options['Y_POSSIBLE_NAMES']}
        if extra:
            raise LoadError(f'{path}: properties {sorted(extra)} are not mapped in sources.yml')
        for index, feat in enumerate(tqdm(src, total=len(src), desc=spec.name, unit='feat',
                                          disable=not progress, leave=False)):
            props = feat['properties']
            row = []
            for f in spec.fields:
                try:
                    row.append(convert.convert(props.get(f.source), f.type))
                except convert.ValueProblem as err:
                    raise LoadError(f'{path}: feature {index}, {f.source}: {err}') from None
            geom = None
            if spec.geometry:
                if feat.geometry is None:
                    raise LoadError(f'{path}: feature {index} has no geometry')
                geom = json.dumps(feat.geometry.__geo_interface__)
            yield row, geom, srid


def load_table(conn, sources: specmod.Sources, spec: specmod.TableSpec, data_dir: Path,
               progress: bool = True) -> Result:
    path = data_dir / spec.file
    if not path.exists():
        raise LoadError(f'{path}: file not found (set GEOMAYOTTE_DATA_DIR or --data-dir)')
    rows = list(read_rows(path, spec, progress))
    key_index = spec.columns.index(spec.key)
    keys = [r[0][key_index] for r in rows]
    if None in keys:
        raise LoadError(f'{path}: feature {keys.index(None)} has no {spec.key}')
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise LoadError(f'{path}: duplicate {spec.key} values {dupes}')
    with conn.cursor() as cur:   # deleted by a partner through the API: not brought back
        gone = set(audit.deleted_keys(cur, spec.name))
    if gone:
        rows = [r for r, k in zip(rows, keys) if str(k) not in gone]
        keys = [k for k in keys if str(k) not in gone]

    table = sql.Identifier(sources.schema, spec.name)
    columns = [sql.Identifier(c) for c in spec.columns]
    values = [sql.Placeholder()] * len(columns)
    if spec.geometry:
        columns.append(sql.Identifier('geom'))
        geom = sql.SQL('ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON({}), {}), {})').format(
            sql.Placeholder(), sql.Placeholder(), sql.Literal(sources.storage_srid))
        if spec.geometry.startswith('Multi'):
            geom = sql.SQL('ST_Multi({})').format(geom)
        values.append(geom)
        data = [(*r, g, srid) for r, g, srid in rows]
    else:
        data = [tuple(r) for r, _, _ in rows]
    non_key = [c for c in columns if c != sql.Identifier(spec.key)]
    upsert = sql.SQL(
        'INSERT INTO {table} AS t ({cols}) VALUES %s '
        'ON CONFLICT ({key}) DO UPDATE SET {sets}, modifie_le = now() '
        'WHERE ({old}) IS DISTINCT FROM ({new}) AND t.modifie_par IS NULL '
        'RETURNING (xmax = 0)'
    ).format(
        table=table, cols=sql.SQL(', ').join(columns), key=sql.Identifier(spec.key),
        sets=sql.SQL(', ').join(sql.SQL('{c} = EXCLUDED.{c}').format(c=c) for c in non_key),
        old=sql.SQL(', ').join(sql.SQL('t.{}').format(c) for c in non_key),
        new=sql.SQL(', ').join(sql.SQL('EXCLUDED.{}').format(c) for c in non_key),
    )
    template = sql.SQL('({})').format(sql.SQL(', ').join(values))
    with conn.cursor() as cur:
        ddl.create_table(cur, sources, spec)
        flags = execute_values(cur, upsert.as_string(cur), data,
                               template=template.as_string(cur), page_size=500, fetch=True)
        inserted = sum(1 for (f,) in flags if f)
        updated = len(flags) - inserted
        # features partners maintain through the API are theirs now: never removed here
        cur.execute(sql.SQL('DELETE FROM {} WHERE NOT ({} = ANY(%s)) AND modifie_par IS NULL').format(
            table, sql.Identifier(spec.key)), (keys,))
        deleted = cur.rowcount
        cur.execute(sql.SQL('SELECT count(*) FROM {} WHERE {} = ANY(%s)').format(
            table, sql.Identifier(spec.key)), (keys,))
        (count,) = cur.fetchone()
    if count != len(rows):
        raise LoadError(f'{spec.name}: {len(rows)} source features but {count} rows')
    return Result(spec.name, len(rows), inserted, updated, deleted, count)


def load_all(url: str, data_dir: Path, only: list[str] | None = None,
             progress: bool = True) -> list[Result]:
    sources = specmod.load()
    unknown = set(only or []) - {t.name for t in sources.tables}
    if unknown:
        raise LoadError(f'unknown tables {sorted(unknown)}; known: {[t.name for t in sources.tables]}')
    results = []
    conn = psycopg2.connect(url)
    try:
        with conn:  # one transaction: the whole load lands, or nothing does
            for spec in sources.tables:
                if only and spec.name not in only:
                    continue
                results.append(load_table(conn, sources, spec, data_dir, progress))
    except psycopg2.Error as err:
        raise LoadError(f'database error: {err}') from err
    finally:
        conn.close()
    return results


@commands.friendly('geomayotte-load')
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='geomayotte-load',
        description='Load the real Mayotte files (communes, cantons, villages, hazard zones, '
                    'forests, earthquakes, antennas, coastline, population) into PostGIS, '
                    'in EPSG:4471. Safe to run again: it synchronises, never duplicates.')
    parser.add_argument('--data-dir', type=Path, default=None,
                        help='directory of the source files (default $GEOMAYOTTE_DATA_DIR '
                             'or ../shared/data/mayotte)')
    parser.add_argument('--database-url', default=None,
                        help='PostGIS database (default $DATABASE_URL or the private cluster)')
    parser.add_argument('--only', nargs='*', help='load only these tables')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    data_dir = args.data_dir or settings.data_dir()
    url = args.database_url or settings.database_url()
    os.environ['GEOMAYOTTE_DATA_DIR'] = str(data_dir)   # the catalogue sync reads the DEM there
    os.environ.setdefault('DATABASE_URL', url)
    settings.apply_defaults()
    try:
        results = load_all(url, data_dir, args.only, progress=not args.quiet)
    except (LoadError, specmod.SpecError) as err:
        print(f'geomayotte-load: {err}', file=sys.stderr)
        return 1
    print(f'{"table":<26}{"source":>8}{"rows":>8}{"new":>6}{"changed":>9}{"removed":>9}')
    for r in results:
        print(f'{r.table:<26}{r.source:>8}{r.rows:>8}{r.inserted:>6}{r.updated:>9}{r.deleted:>9}')
    # the catalogue's records follow the data (extents, periods, counts)
    from geomayotte.catalogue import sync
    from geomayotte.errors import GeoMayotteError
    try:
        print(f'catalogue: {sync.sync(url).summary()}')
    except (GeoMayotteError, psycopg2.Error) as err:
        print(f'geomayotte-load: data loaded, but the catalogue was not updated: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
