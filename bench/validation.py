"""Benchmark: features validated per second against the reference model.

    .venv/bin/python bench/validation.py [--sizes 10000 100000]

Same synthetic building footprints (bench/synthetic.py) checked three ways in one run:
- ours: the full validation (GeoJSON parsed, format, geometry, territory, reference
  consistency against the communes, overlaps, attributes), report built;
- a plain Python loop calling shapely's ``is_valid`` on each (already parsed) geometry;
- PostGIS ``ST_IsValidDetail`` over the same geometries in a table (query time only).
Writes bench/results/validation.md and .json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import psycopg2
import shapely
from psycopg2.extras import execute_values

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import buildings  # noqa: E402

from geomayotte import settings  # noqa: E402
from geomayotte.validation import reference, report  # noqa: E402

OUT = Path(__file__).resolve().parent / 'results'


def timed(fn, repeat=1):
    best = float('inf')
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0] + ' Writes '
                                 'bench/results/validation.json and .md (the committed results).',
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[10000, 100000],
                    help='numbers of synthetic buildings to validate')
    ap.add_argument('--database-url', default=settings.database_url(),
                    help='PostGIS database with the loaded communes (a temporary table only)')
    args = ap.parse_args(argv)
    url = args.database_url
    communes = reference.communes(url)
    rows = []
    for n in args.sizes:
        features, metric = buildings(n, communes)
        doc = {'type': 'FeatureCollection', 'features': features}
        t_ours, rep = timed(lambda: report.validate({'featureType': 'batiment', 'features': doc}, url))
        parsed = [shapely.geometry.shape(f['geometry']) for f in features]
        t_loop, invalid_loop = timed(lambda: sum(1 for g in parsed if not g.is_valid), repeat=2)
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            cur.execute('CREATE TEMP TABLE bench_geom (id int, geom geometry(Polygon, 4471))')
            execute_values(cur, 'INSERT INTO bench_geom VALUES %s',
                           [(i, g.wkb_hex) for i, g in enumerate(metric)],
                           template='(%s, ST_SetSRID(%s::geometry, 4471))', page_size=5000)
            cur.execute('ANALYZE bench_geom')

            def pg():
                cur.execute('SELECT count(*) FROM bench_geom WHERE NOT (ST_IsValidDetail(geom)).valid')
                return cur.fetchone()[0]
            t_pg, invalid_pg = timed(pg, repeat=2)
        conn.close()
        rows.append({'features': n, 'ours_s': round(t_ours, 3), 'loop_is_valid_s': round(t_loop, 3),
                     'postgis_is_valid_detail_s': round(t_pg, 3),
                     'ours_per_s': round(n / t_ours), 'loop_per_s': round(n / t_loop),
                     'postgis_per_s': round(n / t_pg),
                     'ours_vs_loop': round(t_ours / t_loop, 1), 'ours_vs_postgis': round(t_ours / t_pg, 1),
                     'issues': rep['summary']['byRule'] and {k: v['count'] for k, v in rep['summary']['byRule'].items()},
                     'invalid_loop': invalid_loop, 'invalid_postgis': invalid_pg})
        print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(exist_ok=True)
    meta = {'python': platform.python_version(), 'machine': platform.machine(), 'cpus': __import__('os').cpu_count(),
            'date': time.strftime('%Y-%m-%d %H:%M'), 'shapely': shapely.__version__}
    (OUT / 'validation.json').write_text(json.dumps({'meta': meta, 'rows': rows}, indent=1))
    lines = ['# Validation benchmark', '', f"{meta['date']}, {meta['cpus']} CPUs, Python {meta['python']}, "
             f"shapely {meta['shapely']}", '',
             '| features | ours: full validation | loop of shapely is_valid | PostGIS ST_IsValidDetail | '
             'ours / loop (time) | ours / PostGIS (time) |', '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['features']:,} | {r['ours_per_s']:,}/s ({r['ours_s']} s) | {r['loop_per_s']:,}/s "
                     f"({r['loop_is_valid_s']} s) | {r['postgis_per_s']:,}/s ({r['postgis_is_valid_detail_s']} s) | "
                     f"{r['ours_vs_loop']} | {r['ours_vs_postgis']} |")
    lines += ['', 'Ours runs every rule group (parsing included); the two others only test OGC validity '
              'of geometries already parsed or stored.', '']
    (OUT / 'validation.md').write_text('\n'.join(lines))
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
