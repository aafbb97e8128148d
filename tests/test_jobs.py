"""Process jobs: async execution on the procrastinate queue, persisted in PostgreSQL."""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests
from owslib.ogcapi.processes import Processes


CORPUS = Path(__file__).parent / 'corpus'
EXEC = '/processes/validate-reference-model/execution'


def inputs(name='wrong_commune', ft='zone_alea_inondation'):
    return {'featureType': ft, 'features': json.loads((CORPUS / f'{name}.geojson').read_text(encoding='utf-8'))}


def wait_for(api, job_url, timeout=60):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        doc = api.session.get(job_url, params={'f': 'json'}, timeout=10).json()
        seen.append((doc['status'], doc['progress']))
        if doc['status'] in ('successful', 'failed', 'dismissed'):
            return doc, seen
        time.sleep(0.2)
    raise AssertionError(f'job did not finish: {seen[-5:]}')


def test_async_job_end_to_end(api):
    r = api.session.post(api.base + EXEC, json={'inputs': inputs()}, headers={'Prefer': 'respond-async'}, timeout=30)
    assert r.status_code == 201, r.text
    loc = r.headers['Location']
    assert r.json()['status'] == 'accepted' and loc.endswith(r.json()['jobID'])
    assert r.headers.get('Preference-Applied') == 'respond-async'
    doc, seen = wait_for(api, loc)
    assert doc['status'] == 'successful' and doc['progress'] == 100, doc
    res = api.session.get(loc + '/results', params={'f': 'json'}, timeout=10)
    assert res.status_code == 200
    assert [i['code'] for i in res.json()['issues']] == ['R001']


def test_sync_job_is_recorded_too(api):
    r = api.session.post(api.base + EXEC, json={'inputs': inputs('valid')}, timeout=30)
    assert r.status_code == 200 and r.json()['summary']['passed']
    jobs = api.session.get(api.base + '/jobs', params={'f': 'json', 'limit': 50}, timeout=10).json()['jobs']
    assert any(j['status'] == 'successful' for j in jobs)


def test_failed_async_job_says_why(api):
    r = api.session.post(api.base + EXEC, json={'inputs': {'featureType': 'nope'}},
                         headers={'Prefer': 'respond-async'}, timeout=30)
    assert r.status_code == 201
    doc, _ = wait_for(api, r.headers['Location'])
    assert doc['status'] == 'failed' and 'featureType' in doc['message']


def test_unknown_jobs_and_results_not_ready(api, database_url):
    for bad in ('nope', str(uuid.uuid4()), '%27%20OR%201=1'):
        for r in (api(f'/jobs/{bad}', f='json'), api(f'/jobs/{bad}/results', f='json'),
                  api.session.delete(f'{api.base}/jobs/{bad}', timeout=10)):
            assert r.status_code == 404 and r.json()['code'] == 'NoSuchJob', (bad, r.text[:200])
            assert r.headers['Content-Type'].startswith('application/json')
    jid = str(uuid.uuid4())
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:   # accepted, no queue entry
        cur.execute("INSERT INTO jobs.job (id, process_id, status, message, owner) "
                    "VALUES (%s, 'validate-reference-model', 'accepted', 'queued', 'test-partner')", (jid,))
    r = api(f'/jobs/{jid}/results', f='json')
    assert r.status_code == 404 and r.json()['code'] == 'ResultNotReady'
    assert api.session.delete(f'{api.base}/jobs/{jid}', timeout=10).status_code == 200
    assert api(f'/jobs/{jid}', f='json').status_code == 404


def test_dismiss_a_finished_job(api):
    r = api.session.post(api.base + EXEC, json={'inputs': inputs()}, headers={'Prefer': 'respond-async'}, timeout=30)
    loc = r.headers['Location']
    wait_for(api, loc)
    d = api.session.delete(loc, timeout=10)
    assert d.status_code == 200 and d.json()['status'] == 'dismissed'
    assert d.headers['Content-Type'].startswith('application/json')     # was text/html
    assert api.session.get(loc, params={'f': 'json'}, timeout=10).status_code == 404
    assert api.session.get(loc + '/results', params={'f': 'json'}, timeout=10).status_code == 404


def test_jobs_are_paged(api):
    for _ in range(3):
        api.session.post(api.base + EXEC, json={'inputs': inputs('valid')}, timeout=30)
    first = api.session.get(api.base + '/jobs', params={'f': 'json', 'limit': 2}, timeout=10).json()
    assert len(first['jobs']) == 2
    nxt = [lk['href'] for lk in first['links'] if lk['rel'] == 'next']
    assert nxt
    second = api.session.get(nxt[0], timeout=10).json()
    assert second['jobs'] and not {j['jobID'] for j in second['jobs']} & {j['jobID'] for j in first['jobs']}
    n = first['numberMatched']
    seen, url = [], f'{api.base}/jobs?f=json&limit=2'
    while url:
        doc = api.session.get(url, timeout=10).json()
        seen += [j['jobID'] for j in doc['jobs']]
        url = next((lk['href'] for lk in doc['links'] if lk['rel'] == 'next'), None)
        assert len(seen) <= n + 2
    assert len(seen) == len(set(seen)) >= n - 5     # jobs may be added by other tests meanwhile


def test_results_default_to_json(api):
    r = api.session.post(api.base + EXEC, json={'inputs': inputs()}, timeout=30)
    assert r.status_code == 200
    jobs = api.session.get(api.base + '/jobs', params={'f': 'json', 'limit': 1}, timeout=10).json()['jobs']
    res = api.session.get(f"{api.base}/jobs/{jobs[0]['jobID']}/results", headers={'Accept': '*/*'}, timeout=10)
    assert res.headers['Content-Type'].startswith('application/json') and 'issues' in res.json()


def test_job_of_a_dead_worker_ends_failed(api, database_url):
    jid = str(uuid.uuid4())
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO jobs.job (id, process_id, status, message, progress, started, heartbeat, "
                    "owner) VALUES (%s, 'validate-reference-model', 'running', 'running', 40, %s, %s, "
                    "'test-partner')", (jid, old, old))
    doc = api(f'/jobs/{jid}', f='json').json()
    assert doc['status'] == 'failed' and 'worker running this job stopped' in doc['message']


def test_jobs_survive_a_server_restart(api, database_url, data_dir, tmp_path, free_tcp_port):
    """A job made through one server is there, with its result, for a new server process."""
    r = api.session.post(api.base + EXEC, json={'inputs': inputs()}, headers={'Prefer': 'respond-async'}, timeout=30)
    loc = r.headers['Location']
    wait_for(api, loc)
    port = free_tcp_port
    root = Path(__file__).resolve().parent.parent
    openapi = tmp_path / 'openapi.yml'
    env = dict(os.environ, DATABASE_URL=database_url, GEOMAYOTTE_DATA_DIR=str(data_dir),
               GEOMAYOTTE_BASE_URL=f'http://127.0.0.1:{port}', PYGEOAPI_OPENAPI=str(openapi))
    subprocess.run([sys.executable, '-m', 'geomayotte.openapi', '--output', str(openapi)], env=env,
                   check=True, cwd=root, capture_output=True)
    proc = subprocess.Popen([str(Path(sys.executable).parent / 'gunicorn'), 'geomayotte.app:application',
                             '--bind', f'127.0.0.1:{port}', '--workers', '1'], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f'http://127.0.0.1:{port}/jobs/{loc.rsplit("/", 1)[-1]}'
        for _ in range(100):
            try:
                doc = api.session.get(url, params={'f': 'json'}, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert doc.status_code == 200 and doc.json()['status'] == 'successful'
        res = api.session.get(url + '/results', params={'f': 'json'}, timeout=5)
        assert [i['code'] for i in res.json()['issues']] == ['R001']
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_owslib_async(server, api, owslib):
    p = owslib(Processes)
    out = p.execute('validate-reference-model', inputs('valid'), async_=True)
    job_id = out['jobID']
    doc, _ = wait_for(api, f'{server}/jobs/{job_id}')
    assert doc['status'] == 'successful'


def test_process_body_limit(api):
    """The test server runs with GEOMAYOTTE_MAX_PROCESS_BODY = 8 MiB."""
    r = api.session.post(api.base + EXEC, data=b'x' * (9 * 1024 * 1024),
                         headers={'Content-Type': 'application/json'}, timeout=60)
    assert r.status_code == 413 and 'GEOMAYOTTE_MAX_PROCESS_BODY' in r.json()['description']


def test_big_inputs_run_as_jobs(api):
    """The test server runs with GEOMAYOTTE_MAX_SYNC_BODY = 1 MiB."""
    doc = inputs('valid')
    one = doc['features']['features'][0]
    many = []
    for k in range(3000):                           # about 1.5 MB of GeoJSON: 55 m squares, 77 m apart
        f = json.loads(json.dumps(one))
        dx, dy = (k % 60) * 0.0007, (k // 60) * 0.0007
        f['geometry']['coordinates'] = [[[x + dx, y + dy] for x, y in f['geometry']['coordinates'][0]]]
        f['properties']['id_obj'] = f'ZAPI{k:04d}'
        many.append(f)
    doc['features']['features'] = many
    r = api.session.post(api.base + EXEC, json={'inputs': doc}, timeout=60)
    assert r.status_code == 413 and 'respond-async' in r.json()['description']
    r = api.session.post(api.base + EXEC, json={'inputs': doc}, headers={'Prefer': 'respond-async'}, timeout=60)
    assert r.status_code == 201
    done, _ = wait_for(api, r.headers['Location'], timeout=120)
    assert done['status'] == 'successful'


@pytest.mark.parametrize('prefer', ['respond-sync', 'respond-async'])
@pytest.mark.parametrize('raw', [
    '{"inputs": {"featureType": "equipement", "features": {"type": "FeatureCollection", "features": '
    '[{"type": "Feature", "geometry": null, "properties": {"nom": "a\\u0000b"}}]}}}',
    '{"inputs": {"featureType": "equipement", "features": {"type": "FeatureCollection", "features": '
    '[{"type": "Feature", "geometry": null, "properties": {"nom\\u0000": "x"}}]}}}',
    '{"inputs": {"featureType": "\\ud800"}}',
])
def test_nul_and_lone_surrogates_are_400_and_leave_no_job(api, prefer, raw):
    before = api.session.get(api.base + '/jobs', params={'f': 'json', 'limit': 1}, timeout=10).json()['numberMatched']
    r = api.session.post(api.base + EXEC, data=raw, headers={'Content-Type': 'application/json', 'Prefer': prefer},
                         timeout=30)
    assert r.status_code == 400, r.text[:200]
    after = api.session.get(api.base + '/jobs', params={'f': 'json', 'limit': 1}, timeout=10).json()['numberMatched']
    assert after == before


def test_lone_surrogate_in_a_cql2_json_filter(api):
    r = api.session.post(api.base + '/collections/communes/items', data='{"op": "=", "args": [{"property": "nom"}, "\\ud800"]}',
                         headers={'Content-Type': 'application/query-cql-json'}, timeout=10)
    assert r.status_code == 400 and 'surrogate' in r.json()['description']


def test_read_only_paths_answer_405_in_json(api):
    for method, path in (('POST', '/model'), ('POST', '/jobs'), ('PUT', '/processes/validate-reference-model')):
        r = api.session.request(method, api.base + path, data='{}', timeout=10)
        assert r.status_code == 405 and r.json()['code'] == 'MethodNotAllowed', (method, path, r.status_code)


def test_async_results_are_kept_as_sent(api):
    doc = inputs('valid')
    doc['features']['features'][0]['properties'].update({'zz': -0.0, 'aa': 1.7976931348623157e308})
    body = json.dumps({'inputs': {**doc, 'repair': True}})
    r = api.session.post(api.base + EXEC, data=body, headers={'Content-Type': 'application/json',
                                                                'Prefer': 'respond-async'}, timeout=30)
    loc = r.headers['Location']
    wait_for(api, loc)
    text = api.session.get(loc + '/results', params={'f': 'json'}, timeout=10).text
    props = json.loads(text)['repaired']['features'][0]['properties']
    assert list(props)[-2:] == ['zz', 'aa'] and str(props['zz']) == '-0.0' and props['aa'] == 1.7976931348623157e308


def test_running_job_without_heartbeat_is_reaped(api, database_url):
    jid = str(uuid.uuid4())
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO jobs.job (id, process_id, status, message, updated, owner) VALUES "
                    "(%s, 'validate-reference-model', 'running', 'running', now() - interval '10 minutes', "
                    "'test-partner')", (jid,))
    assert api(f'/jobs/{jid}', f='json').json()['status'] == 'failed'


def test_job_ids_are_canonical(api):
    r = api.session.post(api.base + EXEC, json={'inputs': inputs()}, headers={'Prefer': 'respond-async'}, timeout=30)
    jid = r.headers['Location'].rsplit('/', 1)[-1]
    assert api(f'/jobs/{jid}', f='json').status_code == 200
    assert api(f'/jobs/{jid[:-1]}\uff11', f='json').status_code == 404    # a full-width digit


def test_a_dismissed_running_job_is_stopped(server, database_url, monkeypatch):
    """Found by a breaking session: a job dismissed while it ran went on to its end (23 s more
    of a worker) and its result was thrown away. The worker's heartbeat finds the row gone
    and stops the job's process. The job's work here is a child that would sleep a minute."""
    import threading
    from geomayotte.jobs import queue
    jid = str(uuid.uuid4())
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO jobs.job (id, process_id, status, message, owner, inputs) VALUES "
                    "(%s, 'validate-reference-model', 'accepted', 'queued', 'test-partner', '{}')", (jid,))
    monkeypatch.setattr(queue, '_child', lambda *args: time.sleep(60))
    monkeypatch.setattr(queue, 'HEARTBEAT_SECONDS', 0.5)

    def dismiss():
        time.sleep(1.5)
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute('DELETE FROM jobs.job WHERE id = %s', (jid,))
    threading.Thread(target=dismiss).start()
    started = time.monotonic()
    queue.run_job(job_id=jid, url=database_url)
    assert time.monotonic() - started < 10


READS = ['/collections/villages/items', '/collections/communes/items/97611',
         '/collections/catalogue/items', '/collections/communes/items']


def _statuses(api, n):
    with ThreadPoolExecutor(8) as pool:       # as many at once as the server has threads
        return list(pool.map(lambda i: api(READS[i % len(READS)], f='json', limit=2).status_code,
                             range(n)))


def test_requests_and_jobs_after_a_database_restart(api, restart_database):
    """A newcomer's finding: after a database restart, requests answered 503 until every
    dead pooled session had failed one, and the job worker failed the first job it picked,
    which then stayed "accepted" for good. Idle sessions are now checked when taken."""
    assert set(_statuses(api, 40)) == {200}      # every server thread holds a session now
    restart_database()
    assert _statuses(api, 40) == [200] * 40
    r = api.session.post(api.base + EXEC, json={'inputs': inputs()},
                         headers={'Prefer': 'respond-async'}, timeout=30)
    assert r.status_code == 201, r.text
    doc, _ = wait_for(api, r.headers['Location'])
    assert doc['status'] == 'successful', doc
    res = api.session.get(r.headers['Location'] + '/results', params={'f': 'json'}, timeout=10)
    assert [i['code'] for i in res.json()['issues']] == ['R001']


def test_a_job_that_cannot_reach_the_database_is_tried_again(server, database_url, db, free_tcp_port):
    """A job whose first attempt finds the database away (a restart) is not lost: the queue
    tries it again later (here its database URL names a port where nothing listens, so
    the session worker's attempt fails the way a restart makes it fail)."""
    from geomayotte.jobs import queue
    dead = f'postgresql://postgres@127.0.0.1:{free_tcp_port}/geomayotte'
    with db.cursor() as cur:
        cur.execute('INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES (%s, %s, %s) '
                    'RETURNING id', (queue.QUEUE, 'geomayotte.run_job',
                                     json.dumps({'job_id': str(uuid.uuid4()), 'url': dead})))
        (qid,) = cur.fetchone()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.cursor() as cur:
                cur.execute('SELECT status::text, attempts, scheduled_at > now() FROM procrastinate_jobs '
                            'WHERE id = %s', (qid,))
                status, attempts, later = cur.fetchone()
            if attempts >= 1:
                break
            time.sleep(0.2)
        assert (status, attempts, later) == ('todo', 1, True)    # tried, failed, scheduled again
    finally:
        with db.cursor() as cur:
            cur.execute('DELETE FROM procrastinate_jobs WHERE id = %s', (qid,))
