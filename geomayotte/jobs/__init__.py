"""Process jobs: kept in PostGIS, run by procrastinate workers outside the web workers.

- store.py    the jobs table (status, progress, inputs, result, heartbeat)
- queue.py    the procrastinate app and the task that runs a job
- manager.py  the pygeoapi process manager on top of both
- worker.py   ``geomayotte-worker``: runs jobs (``make serve`` starts one)
- progress.py how a running process reports its progress
"""
