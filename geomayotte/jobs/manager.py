"""pygeoapi process manager: jobs in PostgreSQL, async jobs run by procrastinate workers.

``server.manager.name: geomayotte.jobs.manager.QueueManager`` in pygeoapi-config.yml.
Synchronous executions run in the web worker but are recorded like the others, so
``/jobs/{id}/results`` works for them too.
"""
from __future__ import annotations

import logging

from pygeoapi.process.base import JobNotFoundError, JobResultNotFoundError, ProcessorExecuteError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedResponse

from geomayotte import settings
from geomayotte.jobs import queue, store
from geomayotte.request_context import RequestInfo, current

LOGGER = logging.getLogger(__name__)
_ready: set[str] = set()


def _caller():
    """The partner of the web request being served (jobs are theirs alone); outside a
    request (worker, tools) no owner check."""
    ctx = current.get()
    return store.ANYONE if ctx is None else ctx.principal.partner


class QueueManager(BaseManager):
    def __init__(self, manager_def: dict):
        super().__init__(manager_def)
        self.is_async = True
        self.output_dir = None       # results live in PostgreSQL, never in files
        self.url = manager_def.get('connection') or settings.database_url()
        if self.url not in _ready:
            queue.ensure_schema(self.url)
            _ready.add(self.url)

    # -- storage --------------------------------------------------------------------
    def add_job(self, job_metadata: dict) -> str:
        store.add(self.url, job_metadata['identifier'], job_metadata['process_id'],
                  job_metadata['status'], job_metadata.get('message'), job_metadata.get('progress', 0),
                  owner=_caller())
        return job_metadata['identifier']

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        keep = {k: v for k, v in update_dict.items() if k in ('status', 'message', 'progress')}
        return store.update(self.url, job_id, **keep) if keep else True

    def get_jobs(self, status: JobStatus = None, limit=None, offset=None) -> dict:
        limit = 10 if limit is None else min(int(limit), 1000)
        offset = 0 if offset is None else min(int(offset), 2 ** 62)
        jobs, n = store.listing(self.url, status.value if status else None, limit, offset,
                                owner=_caller())
        return {'jobs': jobs, 'numberMatched': n}

    def get_job(self, job_id: str) -> dict:
        job = store.get(self.url, job_id, owner=_caller())
        if job is None:
            raise JobNotFoundError()
        return job

    def get_job_result(self, job_id: str):
        row = store.result(self.url, job_id, owner=_caller())
        if row is None:
            raise JobNotFoundError()
        if row[1] is None:
            raise JobResultNotFoundError()
        mimetype = row[0] or 'application/json'
        if mimetype == 'application/json':
            # served as stored, byte for byte (pygeoapi would re-sort and re-indent a dict)
            return 'application/json; charset=utf-8', row[1]
        import json
        return mimetype, json.loads(row[1])

    def delete_job(self, job_id: str) -> bool:
        owner = _caller()
        job = store.get(self.url, job_id, owner=owner)
        if job is None:
            raise JobNotFoundError()
        # a queued job is dropped by the task itself (its row is gone); a running one
        # finishes its work but its result is discarded
        return store.delete(self.url, job_id, owner=owner)

    # -- execution --------------------------------------------------------------------
    def _execute_handler_async(self, p, job_id, data_dict, requested_outputs=None,
                               subscriber=None, requested_response=RequestedResponse.raw.value):
        store.update(self.url, job_id, inputs=data_dict, response=requested_response,
                     outputs=requested_outputs, message='queued', progress=0)
        queue.defer(self.url, job_id)
        return 'application/json', None, JobStatus.accepted

    def _execute_handler_sync(self, p, job_id, data_dict, requested_outputs=None,
                              subscriber=None, requested_response=RequestedResponse.raw.value):
        # runs in this web worker, which gunicorn stops after its timeout: the heartbeat is a
        # deadline past which the reaper may call the job dead
        import datetime as dt
        store.update(self.url, job_id, status='running', started=queue._now(), progress=10,
                     message='running', heartbeat=queue._now() + dt.timedelta(seconds=180))
        return run_processor(self.url, job_id, p.metadata['id'], data_dict, requested_response,
                             processor=p, outputs=requested_outputs)


def run_processor(url: str, job_id: str, process_id: str, inputs: dict, response: str,
                  processor=None, outputs=None):
    """Execute a process for a job and record the outcome; returns pygeoapi's triple."""
    from pygeoapi.plugin import load_plugin
    from pygeoapi.util import yaml_load
    if processor is None:
        with open(settings.pygeoapi_config(), encoding='utf-8') as fh:
            config = yaml_load(fh)
        processor = load_plugin('process', config['resources'][process_id]['processor'])
        processor.set_job_id(job_id)
    token = None
    if current.get() is None:   # a job worker: the job runs with its owner's rights
        token = current.set(RequestInfo(url='', principal=_owner_of(url, job_id)))
    try:
        extra = {'outputs': outputs} if processor.supports_outputs else {}
        mimetype, outputs = processor.execute(inputs, **extra)
    except ProcessorExecuteError as err:
        message = f'InvalidParameterValue: {err.message}'
        store.finish_if_running(url, job_id, 'failed', message, mimetype='application/json',
                                result={'code': 'InvalidParameterValue', 'description': err.message})
        return 'application/json', {'code': 'InvalidParameterValue', 'type': 'InvalidParameterValue',
                                    'description': err.message}, JobStatus.failed
    except MemoryError:
        raise
    except Exception as err:
        LOGGER.exception('job %s failed', job_id)
        store.finish_if_running(url, job_id, 'failed', f'internal error: {type(err).__name__}')
        return 'application/json', {'code': 'NoApplicableCode', 'type': 'NoApplicableCode',
                                    'description': 'the process failed (check the server logs)'}, \
            JobStatus.failed
    finally:
        if token is not None:
            current.reset(token)
    if response == RequestedResponse.document.value and mimetype == 'application/json':
        outputs = {'outputs': [outputs]}
    try:
        stored = store.finish_if_running(url, job_id, 'successful', 'Job complete', mimetype=mimetype,
                                         result=outputs)
    except Exception as err:   # a result PostgreSQL refuses must not leave the job running
        LOGGER.exception('result of job %s could not be stored', job_id)
        store.finish_if_running(url, job_id, 'failed', f'the result could not be stored ({type(err).__name__})')
        return 'application/json', {'code': 'NoApplicableCode', 'type': 'NoApplicableCode',
                                    'description': 'the result could not be stored'}, JobStatus.failed
    if not stored:
        LOGGER.info('job %s was dismissed or ended meanwhile: result discarded', job_id)
        return mimetype, outputs, JobStatus.dismissed
    return mimetype, outputs, JobStatus.successful


def _owner_of(url: str, job_id: str):
    """The principal a job runs for: its owner with their grants today (anonymous if none)."""
    from geomayotte.access import policy, store as access_store
    owner = store.owner(url, job_id)
    grants = access_store.partner_grants(url, owner) if owner else None
    return policy.Principal(owner, grants, 'job') if grants is not None else policy.ANONYMOUS
