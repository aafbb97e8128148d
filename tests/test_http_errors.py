"""Requests refused by gunicorn itself, before the application sees them, answer an OGC
exception document like every other error (gunicorn's own answer is an HTML page)."""
import json
import socket
import urllib.parse

import pytest
import requests


def raw(server: str, request: bytes) -> tuple[str, dict, dict]:
    """Send bytes as they are; the status line, headers and JSON body of the answer."""
    host, port = urllib.parse.urlsplit(server).netloc.split(':')
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        data = b''
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    status, *lines = head.decode('latin-1').split('\r\n')
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(':') for line in lines)}
    assert headers['content-type'] == 'application/json', data[:300]
    return status, headers, json.loads(body)


@pytest.mark.parametrize('request_bytes, status, code, words', [
    (b'GET /collections/communes/items?q=' + b'x' * 9000 + b' HTTP/1.1\r\nHost: x\r\n\r\n',
     '414', 'URITooLong', 'line'),
    (b'GET /collections HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'y' * 9000 + b'\r\n\r\n',
     '431', 'RequestHeaderFieldsTooLarge', 'header'),
    (b'GET /collections HTTP/1.1\r\nHost: x\r\n'
     + b''.join(b'X-H%d: 1\r\n' % i for i in range(200)) + b'\r\n',
     '431', 'RequestHeaderFieldsTooLarge', 'header'),
    (b'GET\x00 /collections HTTP/1.1\r\nHost: x\r\n\r\n', '400', 'InvalidRequest', 'method'),
    # a raw (not percent-encoded) accent, as typed in a shell
    ('GET /collections/catalogue/items?q=forêt HTTP/1.1\r\nHost: x\r\n\r\n'.encode(), '400',
     'InvalidRequest', 'request line'),
    (b'GET /collections HTTP/9.9\r\nHost: x\r\n\r\n', '400', 'InvalidRequest', 'version'),
    (b'GET /collections HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', '400', 'InvalidRequest', 'header'),
    (b'POST /collections/communes/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
     b'Content-Type: application/query-cql-json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
     '400', 'InvalidRequest', 'chunk'),
    (b'POST /collections/communes/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n'
     b'Content-Type: application/query-cql-json\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
     '501', 'NotImplemented', 'transfer'),
])
def test_requests_gunicorn_refuses_get_an_ogc_exception(server, request_bytes, status, code, words):
    line, headers, doc = raw(server, request_bytes)
    assert line.split()[1] == status, (line, doc)
    assert doc['code'] == code
    assert words in doc['description'].lower(), doc
    assert headers['access-control-allow-origin'] == '*'
    assert 'Accept' in headers['vary']


def test_next_link_past_the_request_line_limit_is_a_json_414(server):
    """The known limit of a POSTed CQL2 JSON search: its next link carries the filter, and
    past gunicorn's 8,190-byte request line following it is refused; the client now gets
    a JSON 414 it can act on (page by POSTing the filter again with the link's cursor)."""
    names = [f'nom-{i:04d}' for i in range(700)]        # no village is called so
    body = {'op': 'not', 'args': [{'op': 'in', 'args': [{'property': 'nom'}, names]}]}
    r = requests.post(f'{server}/collections/villages/items', json=body, params={'limit': 1},
                      headers={'Content-Type': 'application/query-cql-json'}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    page = r.json()
    assert page['numberMatched'] == 66
    nxt = [link['href'] for link in page['links'] if link['rel'] == 'next']
    assert len(nxt) == 1 and len(nxt[0]) > 8190
    follow = requests.get(nxt[0], timeout=30)
    assert follow.status_code == 414
    assert follow.json()['code'] == 'URITooLong'


def test_ctrl_c_stops_the_server_at_once(tmp_path):
    """A newcomer's finding: Ctrl-C on `make serve` took 30 s. The terminal's SIGINT reaches
    every process of the group, then the arbiter sends its workers SIGQUIT; the second
    signal re-entered gunicorn's gthread quit handler inside ThreadPoolExecutor.shutdown,
    which deadlocked on its own lock until the arbiter killed the worker (graceful_timeout,
    30 s). Ctrl-C pressed repeatedly makes the race sure (without the guard every round
    hangs); several rounds."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path
    (tmp_path / 'hello.py').write_text(
        'def application(environ, start_response):\n'
        '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
        '    return [b"ok"]\n')
    root = Path(__file__).resolve().parent.parent
    for _ in range(4):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / 'gunicorn'), 'hello:application', '--chdir', str(tmp_path),
             '--bind', f'127.0.0.1:{port}', '--workers', '4', '--threads', '4',
             '--worker-class', 'geomayotte.gunicorn_worker.ThreadWorker'],
            cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if requests.get(f'http://127.0.0.1:{port}/', timeout=2).text == 'ok':
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            time.sleep(0.5)                          # every worker up
            started = time.monotonic()
            for _ in range(20):                      # Ctrl-C, pressed again and again
                os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=25)
            assert time.monotonic() - started < 10
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_make_serve_stops_on_sigterm(database_url, data_dir):
    """Found by a breaking session: `kill -TERM` of `make serve` stopped nothing (the recipe's
    shell ran its trap only once gunicorn, its foreground command, had ended). Server and
    job worker now run in the background of a shell that waits for them."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(['make', 'serve', f'PORT={port}', 'WORKERS=1', f'DATABASE_URL={database_url}',
                             f'DATA_DIR={data_dir}'], cwd=root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f'http://127.0.0.1:{port}/conformance', timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise AssertionError('make serve did not serve')
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)              # to make alone, as `kill <pid>` does
        proc.wait(timeout=30)
        while time.monotonic() - started < 15:        # and everything it started
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError('processes of make serve still run 15 s after SIGTERM')
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
