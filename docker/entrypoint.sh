#!/bin/sh
# Wait for PostGIS, load the real data (idempotent), then either serve with gunicorn
# (default) or, with the argument "worker", run process jobs from the queue.
set -eu
: "${DATABASE_URL:?DATABASE_URL must point to a PostGIS database}"
echo "waiting for $DATABASE_URL"
until pg_isready -d "$DATABASE_URL" -q; do sleep 1; done
if [ "${GEOMAYOTTE_SKIP_LOAD:-0}" != "1" ]; then
  geomayotte-load --quiet
fi
if [ "${1:-serve}" = "worker" ]; then
  exec geomayotte-worker
fi
python -m geomayotte.openapi --output "$PYGEOAPI_OPENAPI"
exec gunicorn geomayotte.app:application --bind "0.0.0.0:${PORT}" \
  --workers "${WORKERS}" --threads "${THREADS}" --worker-class geomayotte.gunicorn_worker.ThreadWorker \
  --timeout 120 --limit-request-line 8190 --access-logfile -
