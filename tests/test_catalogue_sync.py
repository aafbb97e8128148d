"""Records stay in step with the data; metadata errors stop the server."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from geomayotte.catalogue import metadata, sync
from geomayotte.loader import cli as loader

ROOT = Path(__file__).resolve().parent.parent

ITEMS = '/collections/catalogue/items'


def stamp(rec: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(rec['properties']['updated'].replace('Z', '+00:00'))


def villages_record(api) -> dict:
    r = api(f'{ITEMS}/villages')
    assert r.status_code == 200, r.text
    return r.json()


def test_a_data_change_moves_the_record(api, db):
    """Insert a village 30 km east of the easternmost one: the record's count, extent and
    update time follow at the next request (triggers mark it stale); delete it: back."""
    before = villages_record(api)
    cur = db.cursor()
    cur.execute('SELECT max(geonameid) + 1 FROM geodata.villages')
    (new_id,) = cur.fetchone()
    time.sleep(0.01)
    cur.execute("""INSERT INTO geodata.villages (geonameid, nom, code_insee, geom)
                   SELECT %s, 'Test est', code_insee, ST_Translate(geom, 30000, 0)
                     FROM geodata.villages ORDER BY ST_X(geom) DESC LIMIT 1""", (new_id,))
    try:
        during = villages_record(api)
        cur.execute("SELECT count(*), ST_XMax(ST_Extent(ST_Transform(geom, 4326))) FROM geodata.villages")
        count, xmax = cur.fetchone()
        assert during['properties']['featureCount'] == count == before['properties']['featureCount'] + 1
        assert max(p[0] for p in during['geometry']['coordinates'][0]) == pytest.approx(xmax, abs=1e-8)
        assert xmax > max(p[0] for p in before['geometry']['coordinates'][0])
        assert stamp(during) > stamp(before)
    finally:
        cur.execute('DELETE FROM geodata.villages WHERE geonameid = %s', (new_id,))
    after = villages_record(api)
    assert after['properties']['featureCount'] == before['properties']['featureCount']
    assert after['geometry'] == before['geometry']
    assert stamp(after) > stamp(during)


def test_statements_that_change_nothing_leave_the_record(api, db):
    before = villages_record(api)
    cur = db.cursor()
    cur.execute('UPDATE geodata.villages SET population = population WHERE false')
    cur.execute('DELETE FROM geodata.villages WHERE false')
    assert villages_record(api)['properties']['updated'] == before['properties']['updated']


def test_the_loader_resynchronises_the_catalogue(api, db, database_url, data_dir, capsys):
    """Move a village by hand, then reload: data and record are back to the source's."""
    before = villages_record(api)
    cur = db.cursor()
    cur.execute('UPDATE geodata.villages SET geom = ST_Translate(geom, 0, 50000) '
                'WHERE geonameid = (SELECT min(geonameid) FROM geodata.villages)')
    moved = villages_record(api)
    assert moved['geometry'] != before['geometry']
    assert loader.main(['--only', 'villages', '--database-url', database_url, '--data-dir',
                        str(data_dir), '--quiet']) == 0
    assert 'catalogue: ' in capsys.readouterr().out
    after = villages_record(api)
    assert after['geometry'] == before['geometry']
    assert after['properties']['featureCount'] == before['properties']['featureCount']


def test_sync_is_idempotent_and_removes_what_is_no_longer_served(database_url, db):
    first = sync.sync(database_url)
    cur = db.cursor()
    cur.execute("SELECT id, updated FROM catalogue.record WHERE source = 'local' ORDER BY id")
    stamps = cur.fetchall()
    again = sync.sync(database_url)
    assert not (again.added or again.updated or again.removed)
    assert len(again.unchanged) == len(first.added + first.updated + first.unchanged)
    cur.execute("SELECT id, updated FROM catalogue.record WHERE source = 'local' ORDER BY id")
    assert cur.fetchall() == stamps
    cat = sync.catalogue()
    fewer = dataclasses.replace(cat, resources=tuple(r for r in cat.resources if r.id != 'cantons'))
    try:
        assert sync.sync(database_url, fewer).removed == ['cantons']
    finally:
        assert sync.sync(database_url).added == ['cantons']


# -- metadata errors -----------------------------------------------------------------------------
def _broken(tmp_path, change) -> Path:
    conf = tmp_path / 'config'
    shutil.copytree(ROOT / 'config', conf)
    doc = yaml.safe_load((conf / 'datasets.yml').read_text())
    change(doc)
    (conf / 'datasets.yml').write_text(yaml.safe_dump(doc, allow_unicode=True))
    return conf


@pytest.mark.parametrize('change, words', [
    (lambda d: d['datasets'].pop('villages'), ['served collections without catalogue metadata', 'villages']),
    (lambda d: d['datasets']['communes'].update(themes=['xx']), ['communes', "unknown theme 'xx'"]),
    (lambda d: d['datasets']['communes'].update(diffusion='public'), ['communes', 'diffusion']),
    (lambda d: d['datasets']['communes'].update(license='WTFPL'), ['communes', 'unknown license']),
    (lambda d: d['datasets']['communes'].pop('lineage'), ['communes', 'lineage is missing']),
    (lambda d: d['datasets']['communes'].update(producer='nobody'), ['communes', 'unknown producer']),
    (lambda d: d['datasets']['communes'].update(frequency='sometimes'), ['communes', 'frequency']),
    (lambda d: d['datasets']['communes'].update(colour='blue'), ['communes', 'unknown fields']),
    (lambda d: d['datasets'].update(routes=d['datasets']['communes']), ['routes', 'not served']),
    (lambda d: d['feature_types']['themes'].pop('batiment'), ['batiment']),
    (lambda d: d['processes'].pop('validate-reference-model'), ['validate-reference-model']),
    (lambda d: d['catalogue'].pop('publisher'), ['catalogue.publisher']),
])
def test_missing_or_wrong_metadata_is_a_config_error(tmp_path, change, words):
    conf = _broken(tmp_path, change)
    with pytest.raises(metadata.MetadataError) as err:
        metadata.load(conf / 'datasets.yml')
    for w in words:
        assert w in str(err.value), str(err.value)


def test_the_server_does_not_start_without_metadata(tmp_path, database_url, data_dir):
    conf = _broken(tmp_path, lambda d: d['datasets'].pop('seismes'))
    env = dict(os.environ, GEOMAYOTTE_CONFIG_DIR=str(conf), DATABASE_URL=database_url,
               GEOMAYOTTE_DATA_DIR=str(data_dir), PYGEOAPI_CONFIG=str(ROOT / 'pygeoapi-config.yml'),
               PYGEOAPI_OPENAPI=str(ROOT / 'openapi' / 'openapi.yml'))
    res = subprocess.run([sys.executable, '-c', 'import geomayotte.app'], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert 'MetadataError' in res.stderr and 'seismes' in res.stderr, res.stderr[-2000:]
    check = subprocess.run([str(Path(sys.executable).parent / 'geomayotte-catalogue'), 'check'], env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and 'seismes' in check.stderr
