"""gunicorn's threaded worker, answering the requests gunicorn itself refuses in JSON.

A request line over ``--limit-request-line`` (414), too many or too large headers
(431), a malformed request line, header or chunk (400), an unknown transfer coding
(501): gunicorn answers these before the application sees the request, with an HTML
page. This worker gives the same status an OGC exception body instead, as every other
error of the platform has, with the headers every answer carries (CORS, Vary). It also
stops at once when asked to quit twice (below).

Serve with ``gunicorn --worker-class geomayotte.gunicorn_worker.ThreadWorker``.
"""
from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers import gthread

from geomayotte.headers import CORS_HEADERS, VARY

# gunicorn's status → the OGC exception code of the body
CODES = {
    400: 'InvalidRequest',
    403: 'Forbidden',
    414: 'URITooLong',
    417: 'ExpectationFailed',
    431: 'RequestHeaderFieldsTooLarge',
    501: 'NotImplemented',
}


def error_answer(status_int: int, reason: str, mesg: str) -> bytes:
    """The whole HTTP answer (head and JSON body) for an error gunicorn raises."""
    body = json.dumps({
        'code': CODES.get(status_int, 'NoApplicableCode'),
        'description': mesg or reason,
    }, ensure_ascii=False).encode()
    head = [f'HTTP/1.1 {status_int} {reason}', 'Connection: close',
            'Content-Type: application/json', f'Content-Length: {len(body)}',
            *(f'{name}: {value}' for name, value in CORS_HEADERS),
            f'Vary: {", ".join(VARY)}']
    return ('\r\n'.join(head) + '\r\n\r\n').encode('latin-1') + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, error_answer(status_int, reason, mesg))


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker whose own error answers are OGC exception documents, and
    which stops at once on Ctrl-C."""

    _quitting = False

    def handle_quit(self, sig, frame):
        # Ctrl-C sends SIGINT to the whole process group and the arbiter then sends SIGQUIT:
        # the second signal re-entered gthread's handler inside ThreadPoolExecutor.shutdown,
        # which waited for ever on its own (non-reentrant) lock, until the arbiter killed
        # the worker 30 s later (a newcomer's finding: `make serve` took 30 s to stop)
        if self._quitting:
            return
        self._quitting = True
        super().handle_quit(sig, frame)

    def init_process(self):
        # gunicorn's Worker.handle_error writes through gunicorn.util.write_error; this
        # runs in the forked worker process only, so the arbiter is untouched
        util.write_error = write_json_error
        super().init_process()
