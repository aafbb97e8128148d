"""The task queue: procrastinate, which queues in PostgreSQL itself.

Why procrastinate rather than Celery: the platform already runs PostgreSQL, so the
queue needs no broker (no Redis or RabbitMQ to install, secure and back up); jobs
are rows in the same database as their status and results; workers on several
machines only need the database URL; and a queued job survives a restart because
it is a committed row.
"""
from __future__ import annotations

import logging
import threading
import time

import procrastinate

from geomayotte import settings
from geomayotte.jobs import progress, store

LOGGER = logging.getLogger(__name__)
QUEUE = 'geomayotte-processes'
HEARTBEAT_SECONDS = 5


def _libpq(url: str) -> str:
    return url


app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_libpq(settings.database_url())),
                        import_paths=['geomayotte.jobs.queue'])


_opened = threading.Lock()
_is_open = False


def _open_sync() -> None:
    """Web workers defer synchronously: procrastinate then uses a sync connection."""
    global _is_open
    with _opened:
        if not _is_open:
            app.open()
            _is_open = True


def ensure_schema(url: str) -> None:
    """The procrastinate tables and ours, created once (concurrent starts serialise)."""
    import psycopg2
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('geomayotte.jobs.queue.schema'))")
            cur.execute("SELECT to_regclass('procrastinate_jobs')")
            if cur.fetchone()[0] is None:
                cur.execute(procrastinate.schema.SchemaManager.get_schema())
    finally:
        conn.close()
    store.ensure_schema(url)


def defer(url: str, job_id: str) -> int:
    _open_sync()
    return run_job.defer(job_id=job_id, url=url)


@app.task(name='geomayotte.run_job', queue=QUEUE, pass_context=False)
def run_job(job_id: str, url: str) -> None:
    """Run one job: its row says which process, with which inputs."""
    from geomayotte.jobs.manager import run_processor
    row = store.inputs(url, job_id)
    if row is None:
        LOGGER.warning('job %s vanished (dismissed) before it ran', job_id)
        return
    process_id, inputs, response, status, outputs = row
    if status != 'accepted':
        LOGGER.warning('job %s is %s, not accepted: not run again', job_id, status)
        return
    store.update(url, job_id, status='running', message='running', progress=10,
                 started=_now(), heartbeat=_now())
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(url, job_id, stop), daemon=True)
    beat.start()
    token = progress.set_reporter(lambda pct, msg: store.update(
        url, job_id, progress=max(10, min(95, int(pct))), message=msg, heartbeat=_now()))
    try:
        run_processor(url, job_id, process_id, inputs, response, outputs=outputs)
    finally:
        progress.reset(token)
        stop.set()
        beat.join(timeout=2)


def _heartbeat(url: str, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            store.update(url, job_id, heartbeat=_now())
        except Exception:  # a missed beat is not fatal; the reaper waits 60 s
            LOGGER.exception('heartbeat of job %s failed', job_id)


def _now():
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc)


def wait_idle(seconds: float) -> None:
    time.sleep(seconds)
