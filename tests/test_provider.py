"""The provider called in-process (no HTTP): count policy and keyset paging."""
from __future__ import annotations

import pytest

from geomayotte.providers.features import PostGISFeatureProvider
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError


def provider(url, table='geodata.seismes', **extra):
    return PostGISFeatureProvider({'type': 'feature', 'name': 'x', 'data': url, 'table': table,
                                   'storage_crs': 'http://www.opengis.net/def/crs/EPSG/0/4471',
                                   'time_field': 't0' if table == 'geodata.seismes' else None,
                                   **extra})


def test_fields_come_from_the_catalog(database_url):
    p = provider(database_url)
    assert p.id_field == 'evid'
    assert p.fields['mag'] == {'type': 'number', 'format': 'double'}
    assert 'geom' not in p.fields and p.fields['geom_valid'] == {'type': 'boolean'}


@pytest.mark.parametrize('policy,limit_env,expect_count', [
    ('exact', '0', True), ('none', '1000000', False), ('auto', '1000000', True), ('auto', '100', False)])
def test_count_policy(database_url, monkeypatch, policy, limit_env, expect_count):
    monkeypatch.setenv('GEOMAYOTTE_EXACT_COUNT_LIMIT', limit_env)
    doc = provider(database_url, count_policy=policy).query(limit=10, skip_geometry=True)
    assert doc['numberReturned'] == 10
    assert ('numberMatched' in doc) is expect_count
    if expect_count:
        assert doc['numberMatched'] == 426


def test_last_page_needs_no_count(database_url, monkeypatch):
    monkeypatch.setenv('GEOMAYOTTE_EXACT_COUNT_LIMIT', '0')
    doc = provider(database_url, count_policy='none').query(offset=420, limit=10, skip_geometry=True)
    assert doc['numberReturned'] == 6 and doc['numberMatched'] == 426


def test_get_unknown_and_mistyped_ids(database_url):
    p = provider(database_url)
    for bad in ('abc', '1e3', '', '9' * 30):
        with pytest.raises(ProviderItemNotFoundError):
            p.get(bad)
    assert p.get('665884')['id'] == 665884


def test_bad_sort_and_properties_are_400(database_url):
    p = provider(database_url)
    with pytest.raises(ProviderInvalidQueryError):
        p.query(sortby=[{'property': 'nope', 'order': '+'}])
    with pytest.raises(ProviderInvalidQueryError):
        p.query(select_properties=['nope'])
    with pytest.raises(ProviderInvalidQueryError):
        p.query(properties=[('nope', '1')])
