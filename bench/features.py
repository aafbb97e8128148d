"""Features benchmark: our platform, pygeoapi's PostgreSQL provider, TiPG and direct SQL,
on the same synthetic table, in one interleaved run.

    make bench            (or: .venv/bin/python bench/features.py --help)

1. loads 200,000 building footprints (5-8 vertices, over Mayotte, commune code, use,
   height, update time, accented name) and 50,000 points into schema ``bench``,
   deterministically (bench/synthetic.py), stored in EPSG:4471 like the platform;
2. starts the four servers with the same worker count (gunicorn for the WSGI ones,
   uvicorn for TiPG, installed in its own virtualenv ``bench/.venv-tipg``);
3. for every workload, checks that every server returns the same features, then
   measures each with ``wrk`` (8 connections), servers interleaved in every round;
4. writes bench/results/features.json and .md (requests/s, p50/p99, bytes, memory,
   and ratios ours/each).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import requests
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
OUT = HERE / 'results'
CRS = 'http://www.opengis.net/def/crs/'


# -- data ------------------------------------------------------------------------------------
def load(url: str, rows: int, points: int) -> None:
    from synthetic import buildings
    from geomayotte.validation import reference
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bench.buildings') IS NOT NULL")
        ready = cur.fetchone()[0]
        if ready:
            cur.execute('SELECT count(*) FROM bench.buildings')
            ready = cur.fetchone()[0] == rows
    if ready:
        print(f'bench.buildings already holds {rows} rows', flush=True)
        conn.close()
        return
    communes = reference.communes(url)
    t = time.perf_counter()
    features, metric = buildings(rows + points, communes)
    print(f'generated {rows + points} synthetic features in {time.perf_counter() - t:.1f} s', flush=True)
    with conn, conn.cursor() as cur:
        cur.execute('DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench')
        for table, kind in (('buildings', 'Polygon'), ('points', 'Point')):
            cur.execute(f'CREATE TABLE bench.{table} (id bigint PRIMARY KEY, code_insee text, usage text, '
                        f'hauteur double precision, maj timestamptz, nom text, geom geometry({kind}, 4471) NOT NULL)')
        for table, sl in (('buildings', slice(0, rows)), ('points', slice(rows, rows + points))):
            buf = io.StringIO()
            for i, (f, g) in enumerate(zip(features[sl], metric[sl]), start=1):
                p = f['properties']
                geom = g if table == 'buildings' else g.centroid
                buf.write('\t'.join([str(i), p['code_insee'], p['usage'], str(p['hauteur']), p['maj'],
                                     p['nom'], f'SRID=4471;{geom.wkt}']) + '\n')
            buf.seek(0)
            cur.copy_expert(f'COPY bench.{table} FROM STDIN', buf)
            cur.execute(f'CREATE INDEX ON bench.{table} USING gist (geom)')
            cur.execute(f'CREATE INDEX ON bench.{table} (usage)')
            cur.execute(f'ANALYZE bench.{table}')
    conn.close()
    print(f'loaded bench.buildings ({rows}) and bench.points ({points})', flush=True)


# -- servers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _collection(provider: dict) -> dict:
    return {'type': 'collection', 'title': 'Bâtiments (synthétiques)', 'description': 'benchmark',
            'keywords': ['bench'], 'links': [],
            'extents': {'spatial': {'bbox': [44.95, -13.05, 45.35, -12.6], 'crs': CRS + 'OGC/1.3/CRS84'}},
            'providers': [provider]}


def pygeoapi_config(tmp: Path, url: str, port: int, provider: dict, name: str) -> Path:
    cfg = {'server': {'bind': {'host': '127.0.0.1', 'port': port}, 'url': f'http://127.0.0.1:{port}',
                      'mimetype': 'application/json; charset=UTF-8', 'encoding': 'utf-8',
                      'languages': ['fr-FR'], 'limits': {'default_items': 10, 'max_items': 10000},
                      'map': {'url': 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', 'attribution': 'OSM'},
                      'pretty_print': False},
           'logging': {'level': 'ERROR'},
           'metadata': {'identification': {'title': 'bench', 'description': 'bench', 'keywords': ['bench'],
                                           'keywords_type': 'theme', 'terms_of_service': 'x', 'url': 'x'},
                        'license': {'name': 'x', 'url': 'x'}, 'provider': {'name': 'x', 'url': 'x'},
                        'contact': {'name': 'x', 'position': 'x', 'address': 'x', 'city': 'x',
                                    'stateorprovince': 'x', 'postalcode': 'x', 'country': 'x', 'email': 'x',
                                    'url': 'x', 'role': 'pointOfContact'}},
           'resources': {'buildings': _collection(provider)}}
    path = tmp / f'{name}.yml'
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def start_servers(url: str, workers: int, tmp: Path, tipg_python: str | None) -> dict:
    venv_bin = Path(sys.executable).parent
    pg = psycopg2.extensions.parse_dsn(url)
    crs_list = [CRS + 'OGC/1.3/CRS84', CRS + 'EPSG/0/4326', CRS + 'EPSG/0/4471']
    servers = {}
    common = ['--workers', str(workers), '--threads', '4', '--worker-class', 'gthread',
              '--limit-request-line', '8190', '--timeout', '120', '--log-level', 'error']

    def spawn(name, cmd, env, base, prefix):
        log = open(tmp / f'{name}.log', 'w')
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        servers[name] = {'proc': proc, 'base': base, 'prefix': prefix}

    # ours
    port = free_port()
    ours = pygeoapi_config(tmp, url, port, {
        'type': 'feature', 'name': 'geomayotte.providers.features.PostGISFeatureProvider', 'data': url,
        'table': 'bench.buildings', 'storage_crs': CRS + 'EPSG/0/4471', 'crs': crs_list,
        'count_policy': 'auto', 'include_extra_query_parameters': True}, 'ours')
    # the benchmark's table is open to anyone (geomayotte.access hides a collection whose
    # diffusion level is not given): a config directory of its own says so
    conf = tmp / 'config'
    conf.mkdir(exist_ok=True)
    for name in ('sources.yml', 'model'):
        (conf / name).symlink_to(ROOT / 'config' / name)
    (conf / 'datasets.yml').write_text('datasets:\n  buildings: {diffusion: open}\n')
    env = dict(os.environ, DATABASE_URL=url, PYGEOAPI_CONFIG=str(ours), PYGEOAPI_OPENAPI=str(tmp / 'ours-openapi.yml'),
               GEOMAYOTTE_BASE_URL=f'http://127.0.0.1:{port}', GEOMAYOTTE_POOL_SIZE='8',
               GEOMAYOTTE_CONFIG_DIR=str(conf))
    subprocess.run([sys.executable, '-m', 'geomayotte.openapi', '--config', str(ours), '--output',
                    str(tmp / 'ours-openapi.yml')], env=env, check=True, cwd=ROOT, capture_output=True)
    # as `make serve` runs it: our gthread worker class (JSON refusals, request-head deadline)
    spawn('ours', [str(venv_bin / 'gunicorn'), 'geomayotte.app:application', '--bind', f'127.0.0.1:{port}',
                   *common, '--worker-class', 'geomayotte.gunicorn_worker.ThreadWorker'],
          env, f'http://127.0.0.1:{port}', '/collections/buildings')
    # pygeoapi's own PostgreSQL provider
    port = free_port()
    stock = pygeoapi_config(tmp, url, port, {
        'type': 'feature', 'name': 'PostgreSQL',
        'data': {'host': pg.get('host', '127.0.0.1'), 'port': int(pg.get('port', 5432)), 'dbname': pg['dbname'],
                 'user': pg.get('user', 'postgres'), 'password': pg.get('password', ''),
                 'search_path': ['bench', 'public']},
        'id_field': 'id', 'table': 'buildings', 'geom_field': 'geom',
        'storage_crs': CRS + 'EPSG/0/4471', 'crs': crs_list}, 'pygeoapi')
    env = dict(os.environ, PYGEOAPI_CONFIG=str(stock), PYGEOAPI_OPENAPI=str(tmp / 'stock-openapi.yml'))
    subprocess.run([str(venv_bin / 'pygeoapi'), 'openapi', 'generate', str(stock), '-of',
                    str(tmp / 'stock-openapi.yml')], env=env, check=True, cwd=tmp, capture_output=True)
    spawn('pygeoapi', [str(venv_bin / 'gunicorn'), 'pygeoapi.flask_app:APP', '--bind', f'127.0.0.1:{port}',
                       *common], env, f'http://127.0.0.1:{port}', '/collections/buildings')
    # TiPG
    if tipg_python:
        port = free_port()
        env = dict(os.environ, DATABASE_URL=url, TIPG_DB_SCHEMAS='["bench"]', TIPG_DB_TABLES='["bench.buildings"]',
                   TIPG_MAX_FEATURES_PER_QUERY='10000', TIPG_DEFAULT_FEATURES_LIMIT='10')
        spawn('tipg', [str(Path(tipg_python).parent / 'uvicorn'), 'tipg.main:app', '--host', '127.0.0.1',
                       '--port', str(port), '--workers', str(workers), '--log-level', 'error'],
              env, f'http://127.0.0.1:{port}', '/collections/bench.buildings')
    # direct SQL
    port = free_port()
    env = dict(os.environ, BENCH_DATABASE_URL=url)
    spawn('sql', [str(venv_bin / 'gunicorn'), 'bench.baseline_app:app', '--bind', f'127.0.0.1:{port}', *common],
          env, f'http://127.0.0.1:{port}', '')
    for name, s in servers.items():
        deadline = time.monotonic() + 90
        probe = s['base'] + (s['prefix'] + '/items?limit=1' if s['prefix'] else '/?limit=1')
        while True:
            try:
                if requests.get(probe, timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if s['proc'].poll() is not None or time.monotonic() > deadline:
                stop_servers(servers)      # the others started: never left running
                raise RuntimeError(f'{name} did not start: see {tmp / (name + ".log")}')
            time.sleep(0.5)
    return servers


def stop_servers(servers: dict) -> None:
    for s in servers.values():
        try:
            os.killpg(s['proc'].pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for s in servers.values():
        try:
            s['proc'].wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(s['proc'].pid, signal.SIGKILL)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MiB), from /proc."""
    total, pids = 0, {pid}
    for p in Path('/proc').iterdir():
        if p.name.isdigit():
            try:
                stat = (p / 'stat').read_text().split()
                if int(stat[3]) in pids or int(p.name) == pid:
                    pids.add(int(p.name))
            except (OSError, IndexError):
                continue
    for p in pids:
        try:
            for line in Path(f'/proc/{p}/status').read_text().splitlines():
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


# -- workloads --------------------------------------------------------------------------------
def workloads(url: str) -> list[dict]:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute('SELECT id FROM bench.buildings ORDER BY id OFFSET 149999 LIMIT 1')
        (after,) = cur.fetchone()
    conn.close()
    cursor = base64.urlsafe_b64encode(json.dumps({'k': after}).encode()).decode().rstrip('=')
    bbox = '45.2225,-12.7875,45.2317,-12.7785'      # about 1 km x 1 km in Mamoudzou
    c4471 = CRS + 'EPSG/0/4471'
    cql = "usage='habitation' AND hauteur BETWEEN 5 AND 8"
    return [
        {'name': 'first page (100)', 'q': {'limit': 100}, 'sql': {'limit': 100}},
        {'name': 'bbox 1 km² (1000)', 'q': {'limit': 1000, 'bbox': bbox}, 'sql': {'limit': 1000, 'bbox': bbox}},
        {'name': 'deep page (offset 150,000)', 'q': {'limit': 100, 'offset': 150000},
         'ours': {'limit': 100, 'offset': 150000, 'cursor': cursor}, 'sql': {'limit': 100, 'offset': 150000}},
        {'name': 'property filter', 'q': {'limit': 100, 'usage': 'commerce'}, 'sql': {'limit': 100, 'usage': 'commerce'}},
        {'name': 'single item', 'item': 123456},
        {'name': '10,000 features', 'q': {'limit': 10000}, 'sql': {'limit': 10000}},
        {'name': 'CQL2 property + range', 'q': {'limit': 100, 'filter': cql, 'filter-lang': 'cql2-text'},
         'sql': {'limit': 100, 'usage': 'habitation', 'hmin': 5, 'hmax': 8}},
        {'name': 'crs=EPSG:4471 page (100)', 'q': {'limit': 100, 'crs': c4471}, 'sql': {'limit': 100, 'crs': c4471},
         'skip': ['tipg']},     # TiPG has no crs parameter
    ]


def url_for(server: str, s: dict, w: dict) -> str:
    from urllib.parse import urlencode
    if 'item' in w:
        return f"{s['base']}{s['prefix']}/items/{w['item']}" if server != 'sql' else f"{s['base']}/items/{w['item']}"
    params = w.get(server, w['sql'] if server == 'sql' else w['q'])
    if server == 'tipg':
        params = {**params, 'f': 'geojson'}
    return f"{s['base']}{s['prefix']}/items?{urlencode(params)}" if server != 'sql' else f"{s['base']}/?{urlencode(params)}"


def feature_ids(body: bytes) -> list:
    doc = json.loads(body)
    feats = doc['features'] if 'features' in doc else [doc]
    return sorted(int(f['id']) for f in feats)


def wrk(url: str, seconds: int, connections: int, server_pid: int | None = None) -> dict:
    """One wrk measurement; with ``server_pid``, the server's peak memory while it ran."""
    proc = subprocess.Popen(['wrk', '-t2', f'-c{connections}', f'-d{seconds}s', '--latency',
                             '--timeout', '30s', url], stdout=subprocess.PIPE, text=True)
    peak = base = rss_mb(server_pid) if server_pid else None
    while server_pid and proc.poll() is None:
        time.sleep(0.25)
        peak = max(peak, rss_mb(server_pid))
    out = proc.communicate()[0]

    def ms(label):
        m = re.search(rf'^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$', out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == 'us' else v * 1000 if m.group(2) == 's' else v
    rps = re.search(r'Requests/sec:\s+([\d.]+)', out)
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    return {'rps': float(rps.group(1)) if rps else 0.0, 'p50_ms': ms('50'), 'p99_ms': ms('99'),
            'non2xx': int(errors.group(1)) if errors else 0, 'rss_before_mb': base, 'rss_peak_mb': peak}


def main(argv=None) -> int:
    from geomayotte import settings
    ap = argparse.ArgumentParser(
        description='Features benchmark: ours vs pygeoapi\'s PostgreSQL provider vs TiPG vs direct SQL, '
                    'same table, same worker counts, interleaved. It (re)creates the schema `bench` '
                    '(DROP SCHEMA bench CASCADE) in the database given, and writes '
                    'bench/results/features.json and .md (the committed results: keep them or '
                    'git checkout bench/results).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--database-url', default=settings.database_url(),
                    help='PostGIS database (its schema `bench` is replaced)')
    ap.add_argument('--rows', type=int, default=200000, help='synthetic building footprints')
    ap.add_argument('--points', type=int, default=50000, help='synthetic points')
    ap.add_argument('--workers', type=int, default=2, help='server processes of each server')
    ap.add_argument('--connections', type=int, default=8, help='concurrent connections of wrk')
    ap.add_argument('--seconds', type=int, default=5, help='length of one measurement')
    ap.add_argument('--rounds', type=int, default=2, help='rounds (each server measured once per '
                    'workload per round; the best round is kept)')
    ap.add_argument('--tipg-python', default=str(HERE / '.venv-tipg' / 'bin' / 'python'),
                    help='python of a virtualenv with tipg and uvicorn ("" to skip TiPG)')
    args = ap.parse_args(argv)
    if not shutil.which('wrk'):
        print('wrk is needed: apt-get install wrk', file=sys.stderr)
        return 2
    tipg = args.tipg_python if args.tipg_python and Path(args.tipg_python).exists() else None
    load(args.database_url, args.rows, args.points)
    tmp = Path(tempfile.mkdtemp(prefix='geomayotte-bench-'))
    servers = start_servers(args.database_url, args.workers, tmp, tipg)
    results = {}
    try:
        wl = workloads(args.database_url)
        for w in wl:                      # same features everywhere, and the bytes of each answer
            ref = None
            for name, s in servers.items():
                if name in w.get('skip', []):
                    continue
                r = requests.get(url_for(name, s, w), timeout=120)
                assert r.status_code == 200, (name, w['name'], r.status_code, r.text[:300])
                ids = feature_ids(r.content)
                ref = ref if ref is not None else ids
                if ids != ref:
                    raise AssertionError(f'{name} returns other features for {w["name"]}')
                results.setdefault(w['name'], {}).setdefault(name, {})['bytes'] = len(r.content)
        for rnd in range(args.rounds):
            for w in wl:
                order = [n for n in servers if n not in w.get('skip', [])]
                random.Random(rnd).shuffle(order)
                for name in order:
                    m = wrk(url_for(name, servers[name], w), args.seconds, args.connections,
                            servers[name]['proc'].pid)
                    runs = results[w['name']][name].setdefault('runs', [])
                    runs.append(m)
                    print(f"round {rnd + 1} {w['name']:<28} {name:<9} {m['rps']:>9.1f} req/s  "
                          f"p50 {m['p50_ms']} ms  p99 {m['p99_ms']} ms", flush=True)
    finally:
        stop_servers(servers)
    write(results, args)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def write(results: dict, args) -> None:
    OUT.mkdir(exist_ok=True)
    summary = {}
    for wname, per in results.items():
        for name, r in per.items():
            runs = r.get('runs', [])
            if not runs:
                continue
            best = max(runs, key=lambda m: m['rps'])
            summary.setdefault(wname, {})[name] = {
                'rps': best['rps'], 'p50_ms': best['p50_ms'], 'p99_ms': best['p99_ms'],
                'bytes': r['bytes'], 'rss_peak_mb': max(m['rss_peak_mb'] for m in runs),
                'non2xx': sum(m['non2xx'] for m in runs)}
    meta = {'date': time.strftime('%Y-%m-%d %H:%M'), 'cpus': os.cpu_count(), 'rows': args.rows,
            'workers': args.workers, 'connections': args.connections, 'seconds': args.seconds,
            'rounds': args.rounds}
    (OUT / 'features.json').write_text(json.dumps({'meta': meta, 'results': summary}, indent=1))
    names = ['ours', 'pygeoapi', 'tipg', 'sql']
    lines = ['# Features benchmark', '',
             f"{meta['date']}, {meta['cpus']} CPUs, {meta['rows']:,} buildings, {meta['workers']} workers per server, "
             f"{meta['connections']} connections, best of {meta['rounds']} rounds of {meta['seconds']} s", '',
             '| workload | ' + ' | '.join(f'{n} req/s (p50 ms)' for n in names) +
             ' | ours/pygeoapi | ours/TiPG | ours/SQL (p50) |', '|' + '---|' * (len(names) + 4)]
    for wname, per in summary.items():
        cells = [f"{per[n]['rps']:.0f} ({per[n]['p50_ms']:.1f})" if n in per else 'n/a' for n in names]
        o = per.get('ours', {})

        def ratio(n, key='rps'):
            if n not in per or not o or not per[n][key] or not o.get(key):
                return 'n/a'
            return f"{o[key] / per[n][key]:.2f}"
        lines.append(f'| {wname} | ' + ' | '.join(cells) +
                     f" | {ratio('pygeoapi')} | {ratio('tipg')} | {ratio('sql', 'p50_ms')} |")
    first, big = summary.get('first page (100)', {}), summary.get('10,000 features', {})
    if big:
        lines += ['', 'Server memory, peak while wrk ran (MiB, all processes of the server): '
                  'first page (100 features) -> 10,000-feature page: ' +
                  ', '.join(f"{n} {first.get(n, {}).get('rss_peak_mb')} -> {big[n]['rss_peak_mb']}"
                            for n in names if n in big)]
    (OUT / 'features.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    sys.exit(main())
