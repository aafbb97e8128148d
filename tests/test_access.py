"""Who sees what: anonymous callers, a partner without rights, a partner granted the
restricted dataset, across every endpoint that can reveal data; API keys and OpenID
Connect tokens; a caller never learns that a dataset it may not see exists.

Datasets (config/datasets.yml): `communes` open, `seismes` partners, `forets_publiques`
restricted (granted to test-partner by conftest)."""
from __future__ import annotations

import datetime as dt
import json

import psycopg2
import pytest
import requests

from geomayotte.access import store, tokens

RESTRICTED, PARTNERS, OPEN = 'forets_publiques', 'seismes', 'communes'
# what would give the restricted dataset away: its id, titles, a field name, a value
MARKERS = ('forets_publiques', 'Forêts publiques', 'Public forests', 'ccod_frt', 'llib_frt',
           'Tchaourembo', 'BENARA')
PARTNER_MARKERS = ('seismes', 'Séismes', 'mag_type', 'evid')


def _key(url, partner, **kw):
    token, key_id, secret = tokens.new_key()
    store.add_key(url, partner, key_id, secret, kw.get('label'), kw.get('expires'))
    return token, key_id


@pytest.fixture(scope='module')
def callers(database_url, partner_key):
    """{name: Authorization header or None}."""
    store.add_partner(database_url, 'outsider', 'Partenaire sans droits')
    outsider, _ = _key(database_url, 'outsider')
    return {'anonymous': None, 'outsider': f'Bearer {outsider}', 'reader': f'Bearer {partner_key}'}


def _get(server, path, auth, **params):
    headers = {'Authorization': auth} if auth else {}
    return requests.get(server + path, params=params or None, headers=headers, timeout=30)


def _text(r) -> str:
    return r.text + json.dumps(dict(r.headers))


ENDPOINTS = [
    ('/collections/{c}', {'f': 'json'}), ('/collections/{c}', {'f': 'html'}),
    ('/collections/{c}/items', {'f': 'json'}), ('/collections/{c}/items', {'f': 'html'}),
    ('/collections/{c}/items', {'f': 'json', 'limit': 5000}),          # streamed
    ('/collections/{c}/items', {'f': 'csv'}), ('/collections/{c}/items', {'f': 'jsonld'}),
    ('/collections/{c}/items/{fid}', {}), ('/collections/{c}/items/{fid}', {'f': 'html'}),
    ('/collections/{c}/queryables', {'f': 'json'}), ('/collections/{c}/schema', {'f': 'json'}),
    ('/collections/{c}/items', {'filter': 'no_such_field = 1'}),       # an error naming fields
]


@pytest.fixture(scope='module')
def forest_id(database_url):
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute('SELECT iidtn_frt FROM geodata.forets_publiques ORDER BY 1 LIMIT 1')
        return cur.fetchone()[0]


@pytest.mark.parametrize('path,params', ENDPOINTS)
def test_restricted_dataset_is_a_missing_one_for_those_without_rights(server, callers, forest_id,
                                                                     path, params):
    hidden = path.format(c=RESTRICTED, fid=forest_id)
    missing = path.format(c='no_such_collection', fid=forest_id)
    for who in ('anonymous', 'outsider'):
        r = _get(server, hidden, callers[who], **params)
        m = _get(server, missing, callers[who], **params)
        assert r.status_code == m.status_code == 404, (who, r.status_code, r.text[:200])
        assert r.text.replace('no_such_collection', '') == m.text.replace('no_such_collection', '')
        assert not [x for x in MARKERS if x in _text(r)], (who, hidden)
    ok = _get(server, hidden, callers['reader'], **params)
    expected = 400 if 'filter' in params else 200
    assert ok.status_code == expected, ok.text[:300]


def test_partner_datasets_need_a_partner(server, callers):
    assert _get(server, f'/collections/{PARTNERS}/items', None, f='json').status_code == 404
    for who in ('outsider', 'reader'):
        r = _get(server, f'/collections/{PARTNERS}/items', callers[who], f='json', limit=3)
        assert r.status_code == 200 and len(r.json()['features']) == 3


@pytest.mark.parametrize('who,sees', [('anonymous', {OPEN}), ('outsider', {OPEN, PARTNERS}),
                                      ('reader', {OPEN, PARTNERS, RESTRICTED})])
def test_listings_and_openapi_show_only_what_the_caller_may_see(server, callers, who, sees):
    auth = callers[who]
    listed = {c['id'] for c in _get(server, '/collections', auth, f='json').json()['collections']}
    html = _get(server, '/collections', auth, f='html').text
    doc = _get(server, '/openapi', auth, f='json')
    assert doc.status_code == 200
    paths = doc.json()['paths']
    for name in (OPEN, PARTNERS, RESTRICTED):
        shown = name in sees
        assert (name in listed) is shown, (who, name)
        assert (f'/collections/{name}' in html) is shown, (who, name)
        assert (f'/collections/{name}/items' in paths) is shown, (who, name)
    text = _text(doc) + html + json.dumps(sorted(listed))
    if RESTRICTED not in sees:
        assert not [x for x in MARKERS if x in text]
    if PARTNERS not in sees:
        assert not [x for x in ('/collections/seismes', 'Séismes') if x in text]


def test_fast_path_and_streams_respect_rights(server, callers, forest_id):
    for who in ('anonymous', 'outsider'):
        assert _get(server, f'/collections/{RESTRICTED}/items/{forest_id}', callers[who]).status_code == 404
    r = _get(server, f'/collections/{RESTRICTED}/items/{forest_id}', callers['reader'])
    assert r.status_code == 200 and r.json()['id'] == forest_id


# -- credentials ---------------------------------------------------------------------------------
def test_bad_credentials_are_401_everywhere(server, database_url):
    revoked, revoked_id = _key(database_url, 'test-partner', label='revoked')
    store.revoke_key(database_url, revoked_id)
    expired, _ = _key(database_url, 'test-partner',
                      expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    wrong_secret = revoked[:-4] + 'AAAA'
    for auth in (f'Bearer {revoked}', f'Bearer {expired}', f'Bearer {wrong_secret}',
                 'Bearer gmk_nothexadecimal.x', 'Bearer not-a-jwt', 'Basic dXNlcjpwYXNz', 'Bearer',
                 f'Bearer {"A" * 5000}'):
        for path in ('/collections', f'/collections/{OPEN}/items', '/openapi', '/jobs'):
            r = _get(server, path, auth, f='json')
            assert r.status_code == 401, (auth[:30], path, r.status_code)
            assert r.headers['WWW-Authenticate'].startswith('Bearer realm="geomayotte"')
            assert r.json()['code'] == 'Unauthorized' and r.json()['description']


def test_disabled_partner_and_revoked_grant(server, database_url):
    store.add_partner(database_url, 'temporary', 'Partenaire temporaire')
    token, _ = _key(database_url, 'temporary')
    auth = f'Bearer {token}'
    store.grant(database_url, 'temporary', RESTRICTED, write=False)
    assert _get(server, f'/collections/{RESTRICTED}', auth, f='json').status_code == 200
    store.revoke_grant(database_url, 'temporary', RESTRICTED)
    assert _get(server, f'/collections/{RESTRICTED}', auth, f='json').status_code == 404
    store.disable_partner(database_url, 'temporary')
    r = _get(server, f'/collections/{OPEN}', auth, f='json')
    assert r.status_code == 401 and 'disabled' in r.json()['description']
    from geomayotte.access import cli     # a newcomer found no way back
    assert cli.main(['--database-url', database_url, 'enable', 'temporary']) == 0
    assert _get(server, f'/collections/{OPEN}', auth, f='json').status_code == 200
    assert cli.main(['--database-url', database_url, 'enable', 'nobody-at-all']) != 0


def test_openid_connect_tokens(server, oidc):
    good = oidc.token()
    r = _get(server, f'/collections/{RESTRICTED}/items', f'Bearer {good}', f='json', limit=1)
    assert r.status_code == 200          # test-partner, through its identity provider
    from cryptography.hazmat.primitives.asymmetric import rsa
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import jwt
    bad = {
        'expired': oidc.token(exp=1),
        'other issuer': oidc.token(iss='https://evil.test'),
        'other audience': oidc.token(aud='someone-else'),
        'no expiry': oidc.token(exp=None),
        'signed by another key': oidc.token(key=other_key),
        'unknown key id': oidc.token(kid='nope'),
        'unknown partner': oidc.token(partner='nobody'),
        'no partner claim': oidc.token(partner=None),
        'alg none': jwt.encode({'iss': oidc.issuer, 'aud': oidc.audience, 'partner': 'test-partner',
                                'exp': 4102444800}, None, algorithm='none'),
        'HS256 with the public key as secret': jwt.encode(
            {'iss': oidc.issuer, 'aud': oidc.audience, 'partner': 'test-partner', 'exp': 4102444800},
            'secret', algorithm='HS256', headers={'kid': 'test-key'}),
    }
    for why, token in bad.items():
        r = _get(server, f'/collections/{OPEN}', f'Bearer {token}', f='json')
        assert r.status_code == 401, why
        assert r.json()['code'] == 'Unauthorized'


# -- processes and jobs ------------------------------------------------------------------------------
EXEC = '/processes/validate-reference-model/execution'
VALID = {'featureType': 'commune', 'features': {'type': 'FeatureCollection', 'features': []}}


def test_running_a_process_needs_a_partner(server):
    r = requests.post(server + EXEC, json={'inputs': VALID}, timeout=30)
    assert r.status_code == 401 and r.headers['WWW-Authenticate'] == 'Bearer realm="geomayotte"'
    assert 'partner' in r.json()['description']


def test_partners_see_only_their_own_jobs(server, callers, database_url):
    mine = requests.post(server + EXEC, json={'inputs': VALID}, timeout=60,
                         headers={'Authorization': callers['reader'], 'Prefer': 'respond-async'})
    assert mine.status_code == 201
    job = mine.headers['Location'].rsplit('/', 1)[-1]
    reader = {'Authorization': callers['reader']}
    outsider = {'Authorization': callers['outsider']}
    for path in (f'/jobs/{job}', f'/jobs/{job}/results'):
        assert requests.get(server + path, params={'f': 'json'}, headers=outsider, timeout=30).status_code == 404
        assert requests.get(server + path, params={'f': 'json'}, timeout=30).status_code == 404
    assert requests.delete(f'{server}/jobs/{job}', headers=outsider, timeout=30).status_code == 404
    listed = requests.get(server + '/jobs', params={'f': 'json', 'limit': 1000}, headers=outsider,
                          timeout=30).json()['jobs']
    assert job not in {j['jobID'] for j in listed}
    assert requests.get(server + '/jobs', params={'f': 'json'}, timeout=30).json()['jobs'] == []
    own = requests.get(server + '/jobs', params={'f': 'json', 'limit': 1000}, headers=reader,
                       timeout=30).json()['jobs']
    assert job in {j['jobID'] for j in own}
    assert requests.get(f'{server}/jobs/{job}', params={'f': 'json'}, headers=reader,
                        timeout=30).status_code == 200


def _forest_submission(db):
    """A copy of a published forest, as a partner could submit it (in EPSG:4471)."""
    with db.cursor() as cur:
        cur.execute('SELECT ST_AsGeoJSON(ST_MakeValid(geom))::json, iidtn_frt FROM geodata.forets_publiques '
                    'ORDER BY 2 LIMIT 1')
        geom, fid = cur.fetchone()
    return fid, {'type': 'FeatureCollection', 'features': [{'type': 'Feature', 'geometry': geom,
                                                             'properties': {}}]}


def test_validation_never_compares_with_a_dataset_the_submitter_may_not_read(server, callers, db):
    fid, fc = _forest_submission(db)
    body = {'inputs': {'featureType': 'foret_publique', 'features': fc, 'crs': 'EPSG:4471'}}
    seen = {}
    for who in ('reader', 'outsider'):
        r = requests.post(server + EXEC, json=body, timeout=120, headers={'Authorization': callers[who]})
        assert r.status_code == 200, r.text[:300]
        seen[who] = r.text
    assert fid in seen['reader']            # the duplicate of the published forest is reported
    assert fid not in seen['outsider'] and not [x for x in MARKERS if x in seen['outsider']]


@pytest.mark.parametrize('who,sees', [('anonymous', {OPEN}), ('outsider', {OPEN, PARTNERS}),
                                      ('reader', {OPEN, PARTNERS, RESTRICTED})])
def test_catalogue_records_and_dcat_show_only_what_the_caller_may_see(server, callers, who, sees):
    auth = callers[who]
    page = _get(server, '/collections/catalogue/items', auth, f='json', limit=1000)
    assert page.status_code == 200
    ids = {f['id'] for f in page.json()['features']}
    assert page.json()['numberMatched'] == len(ids)
    for name in (OPEN, PARTNERS, RESTRICTED):
        assert (name in ids) is (name in sees), (who, name)
        one = _get(server, f'/collections/catalogue/items/{name}', auth, f='json')
        assert one.status_code == (200 if name in sees else 404), (who, name)
    found = _get(server, '/collections/catalogue/items', auth, f='json', q='forêts')
    assert (RESTRICTED in {f['id'] for f in found.json()['features']}) is (RESTRICTED in sees)
    texts = [page.text, found.text]
    for fmt in ('jsonld', 'ttl', 'rdf'):
        r = _get(server, '/collections/catalogue/dcat', auth, f=fmt, limit=1000)
        assert r.status_code == 200
        texts.append(r.text)
        assert (f'/collections/{RESTRICTED}' in r.text) is (RESTRICTED in sees), (who, fmt)
    if RESTRICTED not in sees:
        leaked = [x for x in ('forets_publiques', 'Forêts publiques', 'Tchaourembo') if any(x in t for t in texts)]
        assert not leaked, (who, leaked)


def test_forged_tokens_are_401_not_500(server, oidc):
    """Found by a breaking session: a token whose algorithm does not fit the key (ES256 on an
    RSA key id) reached PyJWT's key loading and gave a 500."""
    import base64

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip('=')
    body = b64({'iss': oidc.issuer, 'aud': oidc.audience, 'partner': 'test-partner', 'exp': 4102444800})
    for header in ({'alg': 'ES256', 'kid': 'test-key'}, {'alg': 'EdDSA', 'kid': 'test-key'},
                   {'alg': 'ES512'}, {'alg': 'PS256', 'kid': 'test-key'}):
        r = _get(server, f'/collections/{OPEN}', f'Bearer {b64(header)}.{body}.c2lnbmF0dXJl', f='json')
        assert r.status_code == 401, (header, r.status_code)
    for claims in ({'partner': 'test\x00partner'}, {'exp': '9999999999'}, {'partner': 'Test Partner'}):
        r = _get(server, f'/collections/{OPEN}', f'Bearer {oidc.token(**claims)}', f='json')
        assert r.status_code == 401, claims


@pytest.mark.parametrize('path,auth', [('/collections/communes/items', None),
                                       ('/collections/communes/items/97601', None),
                                       ('/collections', None), ('/collections/catalogue/dcat', None),
                                       ('/collections/communes', 'Bearer nope')])
def test_answers_vary_on_authorization(server, path, auth):
    """Every answer may depend on the caller: shared caches must key on the credential."""
    r = _get(server, path, auth)
    assert 'authorization' in r.headers.get('Vary', '').lower(), (path, r.headers.get('Vary'))


def test_grants_say_what_they_give(database_url, capsys):
    """Found by a breaking session: granting the open catalogue said "restricted"; a write
    grant on a coverage nobody can write was accepted."""
    from geomayotte.access import cli
    store.add_partner(database_url, 'granted', 'Partenaire des droits')
    assert cli.main(['--database-url', database_url, 'grant', 'granted', 'catalogue']) == 0
    assert '(diffusion: open)' in capsys.readouterr().out
    assert cli.main(['--database-url', database_url, 'grant', 'granted', 'relief', '--write']) != 0
    assert 'relief cannot be written' in capsys.readouterr().err
    assert cli.main(['--database-url', database_url, 'grant', 'granted', 'zones_inondation', '--write']) == 0
    assert 'read and write zones_inondation (diffusion: partners)' in capsys.readouterr().out
