"""``geomayotte-worker``: run process jobs from the queue (one or more per machine)."""
from __future__ import annotations

import argparse
import logging
import sys

from geomayotte import commands, settings


@commands.friendly('geomayotte-worker')
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='geomayotte-worker',
        description='Run the platform\'s process jobs (OGC API Processes, Prefer: respond-async) '
                    'from the procrastinate queue in PostgreSQL ($DATABASE_URL or the private '
                    'cluster). Start several, on one or more machines, to run more jobs at once.')
    parser.add_argument('--concurrency', type=int, default=1, help='jobs run at once (default 1)')
    parser.add_argument('--once', action='store_true',
                        help='run the jobs waiting now, then exit (for tests and cron)')
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 64:
        parser.error('--concurrency: from 1 to 64 jobs at once')
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    settings.check()
    from geomayotte.jobs import queue, store   # reads settings at import: after the check
    url = settings.database_url()
    queue.ensure_schema(url)
    requeued = queue.requeue_orphans(url)
    if requeued:
        logging.getLogger(__name__).warning('%d accepted job(s) without a queue entry queued again', requeued)
    reaped = store.reap(url)
    if reaped:
        logging.getLogger(__name__).warning('%d job(s) left running by a dead worker marked failed', reaped)
    queue.app.run_worker(queues=[queue.QUEUE], concurrency=args.concurrency,
                         wait=not args.once, install_signal_handlers=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
