"""gunicorn's threaded worker, answering the requests gunicorn itself refuses in JSON.

A request line over ``--limit-request-line`` (414), too many or too large headers
(431), a malformed request line, header or chunk (400), a transfer coding it does not
take (501, or 400 for gzip, identity and codings after chunked): gunicorn answers these
before the application sees the request, with an HTML page. This worker gives the same status an OGC exception body instead, as every other
error of the platform has, with the headers every answer carries (CORS, Vary). A request
head must arrive within GEOMAYOTTE_SOCKET_TIMEOUT (408, then the connection is closed);
the worker stops at once when asked to quit twice (below).

Serve with ``gunicorn --worker-class geomayotte.gunicorn_worker.ThreadWorker``.
"""
from __future__ import annotations

import json
import socket
import threading
import time

from gunicorn import util
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.workers import gthread

from geomayotte import settings
from geomayotte.headers import CORS_HEADERS, VARY

# sockets whose request head is being read -> when it must be in. gunicorn reads a head
# with no time limit: a few clients sending half a request line held every thread for as
# long as they kept their sockets open (a breaking session froze the server so); the
# application bounds every read after the head itself (middleware: the socket's timeout)
_heads: dict[socket.socket, float] = {}
_heads_lock = threading.Lock()


def head_read(sock) -> None:
    """The request's head is in: the watchdog leaves its socket alone from now on."""
    with _heads_lock:
        _heads.pop(sock, None)


# gunicorn's status → the OGC exception code of the body
CODES = {
    400: 'InvalidRequest',
    403: 'Forbidden',
    408: 'RequestTimeout',
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


# answers that may leave the request's body unread: the connection cannot carry another
# request (gunicorn drops an application's Connection: close as hop-by-hop and kept it
# open: after a 413, the client's next request on it got no answer)
CLOSING_STATUSES = frozenset({408, 413})


class _Response(gunicorn_wsgi.Response):
    """gunicorn's response, closing the connection after a 408 or a 413."""

    def process_headers(self, headers):
        super().process_headers(headers)
        if self.status_code in CLOSING_STATUSES:
            self.force_close()


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
        gunicorn_wsgi.Response = _Response
        settings.check_or_exit()        # before anything reads one (as the app does)
        self.head_timeout = settings.socket_timeout()
        if self.head_timeout > 0:
            threading.Thread(target=self._watch_heads, name='head-watchdog', daemon=True).start()
        super().init_process()

    def handle(self, conn):
        if self.head_timeout > 0:
            with _heads_lock:
                _heads[conn.sock] = time.monotonic() + self.head_timeout
        try:
            return super().handle(conn)
        finally:
            head_read(conn.sock)

    def _watch_heads(self):
        """Once a second: a head not in by its deadline gets a 408 and its socket is shut,
        which ends the read that held the thread."""
        answer = error_answer(408, 'Request Timeout',
                              f'the request head did not arrive within {self.head_timeout:g} s '
                              '(GEOMAYOTTE_SOCKET_TIMEOUT)')
        while True:
            time.sleep(min(1.0, self.head_timeout / 2))
            now = time.monotonic()
            with _heads_lock:
                late = [sock for sock, deadline in _heads.items() if deadline < now]
                for sock in late:
                    del _heads[sock]
            for sock in late:
                try:
                    sock.send(answer, socket.MSG_DONTWAIT)
                except OSError:
                    pass
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
