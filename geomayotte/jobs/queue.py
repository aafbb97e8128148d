"""The task queue: procrastinate, which queues in PostgreSQL itself.

Why procrastinate rather than Celery: the platform already runs PostgreSQL, so the
queue needs no broker (no Redis or RabbitMQ to install, secure and back up); jobs
are rows in the same database as their status and results; workers on several
machines only need the database URL; and a queued job survives a restart because
it is a committed row.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import procrastinate
import psycopg2

from geomayotte import settings
from geomayotte.jobs import progress, store

LOGGER = logging.getLogger(__name__)
QUEUE = 'geomayotte-processes'
HEARTBEAT_SECONDS = 5


app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=settings.database_url()),
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


JOB_TIMEOUT = settings.job_timeout()
JOB_MEMORY = settings.job_memory_mb()


# a job that could not start because the database was away (a restart, a failover) is
# tried again, for about two minutes (2 s, 4 s, ... 20 s apart), then left to the next
# worker start (which queues again accepted jobs with no queue entry)
RETRY = procrastinate.RetryStrategy(max_attempts=10, wait=2, linear_wait=2,
                                    retry_exceptions={psycopg2.OperationalError})


@app.task(name='geomayotte.run_job', queue=QUEUE, pass_context=False, retry=RETRY)
def run_job(job_id: str, url: str) -> None:
    """Run one job in a child process: its row says which process, with which inputs.

    The child has a memory ceiling (GEOMAYOTTE_JOB_MEMORY_MB) and a time limit
    (GEOMAYOTTE_JOB_TIMEOUT); this process writes the heartbeat meanwhile, so a long
    computation that holds the GIL is never taken for a dead worker.
    """
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
    ctx = multiprocessing.get_context('fork')
    child = ctx.Process(target=_child, args=(url, job_id, process_id, inputs, response, outputs),
                        name=f'job-{job_id}')
    child.start()
    deadline = time.monotonic() + JOB_TIMEOUT
    while child.is_alive():
        child.join(HEARTBEAT_SECONDS)
        if child.is_alive():
            try:
                alive = store.update(url, job_id, heartbeat=_now())
            except Exception:  # a missed beat is not fatal: the reaper waits 60 s
                LOGGER.exception('heartbeat of job %s failed', job_id)
                alive = True
            if not alive:      # dismissed by its partner (DELETE /jobs/{id}): stop the work
                child.kill()
                child.join()
                LOGGER.info('job %s dismissed while it ran: stopped', job_id)
                return
            if time.monotonic() > deadline:
                child.kill()
                child.join()
                store.finish_if_running(url, job_id, 'failed',
                                        f'stopped after {JOB_TIMEOUT} s (GEOMAYOTTE_JOB_TIMEOUT)')
                return
    if child.exitcode != 0:
        reason = ('ran out of memory' if child.exitcode in (-9, 137) else f'exit code {child.exitcode}')
        store.finish_if_running(url, job_id, 'failed', f'the process stopped: {reason}')


def _child(url, job_id, process_id, inputs, response, outputs) -> None:
    import resource
    from geomayotte import database
    from geomayotte.jobs.manager import run_processor
    database.forget_after_fork()  # the parent's connections are not for the child
    limit = JOB_MEMORY * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    token = progress.set_reporter(lambda pct, msg: store.update(
        url, job_id, progress=max(10, min(95, int(pct))), message=msg))
    try:
        run_processor(url, job_id, process_id, inputs, response, outputs=outputs)
    except MemoryError:
        store.finish_if_running(url, job_id, 'failed',
                                f'the inputs need more than {JOB_MEMORY} MiB (GEOMAYOTTE_JOB_MEMORY_MB)')
    finally:
        progress.reset(token)


def requeue_orphans(url: str) -> int:
    """Accepted jobs with no queue entry (lost before they were queued): queue them again."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("""SELECT j.id::text FROM jobs.job j WHERE j.status = 'accepted'
                           AND j.inputs IS NOT NULL AND NOT EXISTS (
                             SELECT 1 FROM procrastinate_jobs p WHERE p.args->>'job_id' = j.id::text
                                AND p.status IN ('todo', 'doing'))""")
            ids = [r[0] for r in cur.fetchall()]
            cur.execute("""UPDATE jobs.job SET status = 'failed', finished = now(), updated = now(),
                           message = 'the job was lost before it was queued; submit it again'
                           WHERE status = 'accepted' AND inputs IS NULL AND created < now() - interval '1 minute'""")
    finally:
        conn.close()
    for job_id in ids:
        defer(url, job_id)
    return len(ids)


def _now():
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc)
