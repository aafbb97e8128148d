"""The loader: every source feature arrives, typed, in EPSG:4471, idempotently."""
from __future__ import annotations

import datetime as dt

import fiona
import pytest

from geomayotte.loader import cli as loader, spec as specmod

SOURCES = specmod.load()


def source_count(data_dir, table):
    t = SOURCES.table(table)
    with fiona.open(data_dir / t.file, **t.open_options) as src:
        return len(src)


@pytest.mark.parametrize('table', [t.name for t in SOURCES.tables])
def test_every_source_feature_arrives(db, data_dir, table):
    with db.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM geodata.{table}')  # name from our own config
        assert cur.fetchone()[0] == source_count(data_dir, table)


def test_known_counts(db):
    expected = {'communes': 17, 'villages': 66, 'seismes': 426, 'antennes_gsm': 154,
                'cantons': 13, 'departement': 1, 'zones_glissement_terrain': 19,
                'zones_inondation': 11, 'forets_publiques': 12, 'trait_de_cote': 27,
                'population_communes': 17}
    with db.cursor() as cur:
        for table, n in expected.items():
            cur.execute(f'SELECT count(*) FROM geodata.{table}')
            assert cur.fetchone()[0] == n, table


def test_second_load_changes_nothing(database_url, data_dir, db):
    results = loader.load_all(database_url, data_dir, progress=False)
    assert all(r.inserted == 0 and r.updated == 0 and r.deleted == 0 for r in results), results
    assert all(r.rows == r.source for r in results)


def test_reference_model_in_4471_with_indexes_and_keys(db):
    with db.cursor() as cur:
        cur.execute("SELECT f_table_name, srid FROM geometry_columns WHERE f_table_schema='geodata'")
        srids = dict(cur.fetchall())
        assert set(srids.values()) == {4471}
        assert 'population_communes' not in srids
        cur.execute("""SELECT tablename FROM pg_indexes WHERE schemaname='geodata'
                       AND indexdef LIKE '%USING gist%'""")
        assert {r[0] for r in cur.fetchall()} == set(srids)
        cur.execute("""SELECT a.attname FROM pg_index i JOIN pg_attribute a
                       ON a.attrelid=i.indrelid AND a.attnum=ANY(i.indkey)
                       WHERE i.indrelid='geodata.communes'::regclass AND i.indisprimary""")
        assert [r[0] for r in cur.fetchall()] == ['code_insee']
        # constraints: an INSEE code outside Mayotte is refused
        with pytest.raises(Exception):
            cur.execute("INSERT INTO geodata.communes VALUES ('75056', 'Paris', "
                        "ST_Multi(ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4471)))")


def test_invalid_flood_zone_kept_as_received_and_flagged(db):
    with db.cursor() as cur:
        cur.execute("""SELECT id_obj, geom_valid, geom_invalid_reason, ST_NumGeometries(geom)
                       FROM geodata.zones_inondation WHERE NOT geom_valid""")
        rows = cur.fetchall()
    assert len(rows) == 1
    id_obj, valid, reason, parts = rows[0]
    assert id_obj == 'ZAPI0040' and valid is False
    assert 'Too few points' in reason
    assert parts == 213   # kept as received, not repaired


def test_source_quirks(db):
    with db.cursor() as cur:
        cur.execute("SELECT nom FROM geodata.departement")           # bare Feature file
        assert cur.fetchone()[0] == 'Mayotte'
        cur.execute("SELECT llib_frt FROM geodata.forets_publiques WHERE llib_frt LIKE '%Bénara%'")
        assert cur.fetchone()[0] == 'Forêt départementale des Monts Bénara'   # CP1252 DBF
        cur.execute("SELECT dt_maj FROM geodata.zones_glissement_terrain WHERE id_obj='ZAPM0099'")
        assert cur.fetchone()[0] == dt.date(2019, 6, 26)                    # DD/MM/YYYY text
        cur.execute("SELECT region, departement FROM geodata.population_communes LIMIT 1")
        assert cur.fetchone() == ('06', '976')                              # codes stay text
        cur.execute("SELECT autres_noms FROM geodata.villages WHERE geonameid=921704")
        assert 'Passamaïnti' in cur.fetchone()[0]                           # array property
        cur.execute("SELECT codes_postaux FROM geodata.population_communes WHERE code_insee='97611'")
        assert len(cur.fetchone()[0]) == 2
        cur.execute("SELECT t0 FROM geodata.seismes WHERE evid=665884")
        assert cur.fetchone()[0] == dt.datetime(2018, 5, 13, 4, 28, 2, tzinfo=dt.timezone.utc)
        cur.execute("SELECT count(*) FROM geodata.communes WHERE GeometryType(geom)='MULTIPOLYGON'")
        assert cur.fetchone()[0] == 17                                      # mixed types unified


def test_forests_keep_their_native_coordinates(db, data_dir):
    with fiona.open(data_dir / 'forets/L_FORET_DEP_DOM_S_976.shp') as src:
        first = next(iter(src))
    x, y = first.geometry['coordinates'][0][0][:2] if first.geometry['type'] == 'Polygon' \
        else first.geometry['coordinates'][0][0][0][:2]
    with db.cursor() as cur:
        cur.execute("""SELECT ST_X(ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)),
                              ST_Y(ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1))
                       FROM geodata.forets_publiques WHERE iidtn_frt = %s""",
                    (first['properties']['IIDTN_FRT'],))
        gx, gy = cur.fetchone()
    assert abs(gx - x) < 1e-6 and abs(gy - y) < 1e-6


def test_bad_source_is_reported_not_dropped(tmp_path, database_url):
    bad = tmp_path / 'communes-976-mayotte.geojson'
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                   '"properties": {"code": "97601"}, "geometry": null}]}')
    with pytest.raises(loader.LoadError, match='feature 0 has no geometry'):
        loader.load_all(database_url, tmp_path, only=['communes'], progress=False)
    with pytest.raises(loader.LoadError, match='file not found'):
        loader.load_all(database_url, tmp_path, only=['villages'], progress=False)


def test_cli_reports_errors_with_exit_code(tmp_path, database_url, capsys):
    assert loader.main(['--data-dir', str(tmp_path), '--database-url', database_url,
                        '--only', 'villages', '--quiet']) == 1
    assert 'file not found' in capsys.readouterr().err
