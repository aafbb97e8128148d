"""What pygeoapi 0.24 gets wrong for us, mended in one place.

Each fix replaces a module attribute that pygeoapi's Flask views look up at call
time; ``install()`` applies them once. The README lists them.
"""
from __future__ import annotations

import functools
import json
import re
import logging
import urllib.parse

import pygeoapi.api as core
import pygeoapi.api.coverages as coverages
import pygeoapi.api.itemtypes as itemtypes
import pygeoapi.api.processes as processes
import pygeoapi.crs as pcrs
import pygeoapi.provider.base as pbase
import pyproj
from pygeoapi.process.base import JobNotFoundError, JobResultNotFoundError, ProcessorExecuteError
from pygeoapi.provider.base import ProviderGenericError
from pyproj.exceptions import CRSError

from geomayotte import streaming
from geomayotte.request_context import current

_installed = False
_orig = {}


# -- CRS objects and transformers: pygeoapi rebuilds them on every request ----------------
@functools.lru_cache(maxsize=128)
def _cached_get_crs(uri: str):
    return _orig['get_crs'](uri)


def get_crs(crs):
    return crs if isinstance(crs, pyproj.CRS) else _cached_get_crs(str(crs))


@functools.lru_cache(maxsize=256)
def _cached_spec(storage, crs_list, always_xy, uri):
    definition = {'crs': list(crs_list), 'always_xy': always_xy}
    if storage:
        definition['storage_crs'] = storage
    return _orig['spec'](definition, uri)


def create_crs_transform_spec(provider_def, query_crs_uri=None):
    return _cached_spec(provider_def.get('storage_crs'), tuple(provider_def.get('crs') or ()),
                        provider_def.get('always_xy', False), query_crs_uri)


def transform_bbox(bbox, from_crs, to_crs, always_xy=False):
    if current.get() is not None and not always_xy:
        return list(bbox)   # our provider re-reads the raw bbox (geomayotte.crs.bbox_envelopes)
    return _orig['transform_bbox'](bbox, from_crs, to_crs, always_xy)


# -- CQL2 parsing: the lark parser costs milliseconds; our checks and pygeoapi parse the
# same text, and paging clients send the same filter again and again. The AST is not
# mutated (pygeoapi deep-copies it before moving literals into the storage CRS).
@functools.lru_cache(maxsize=512)
def parse_cql2_text(text: str):
    return _orig['parse_text'](text)


@functools.lru_cache(maxsize=512)
def _parse_cql2_json_text(text: str):
    return _orig['parse_json'](text)


def parse_cql2_json(doc):
    return _parse_cql2_json_text(doc) if isinstance(doc, str) else _orig['parse_json'](doc)


# -- parameters our provider checks itself, with messages that name the problem -------------
def validate_datetime(resource_def, datetime_=None):
    """A datetime outside the temporal extent is an empty result, not an error."""
    return datetime_


def validate_bbox(value=None):
    """Numbers only: order and axis order depend on bbox-crs (EPSG:4326 is lat, lon;
    minx > maxx crosses the antimeridian), which geomayotte.crs checks."""
    if value is None:
        return []
    parts = value.split(',')
    if len(parts) not in (4, 6):
        raise ValueError('bbox should be either 4 values (minx,miny,maxx,maxy) '
                         'or 6 values (minx,miny,minz,maxx,maxy,maxz)')
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError('bbox values must be numbers') from None


# -- logs: a client error is not a server error ---------------------------------------------
class ClientErrorFilter(logging.Filter):
    """pygeoapi logs every handled exception with its traceback at ERROR level; for
    4xx answers keep the message, drop the traceback."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        client = isinstance(exc, (ProcessorExecuteError, JobNotFoundError, JobResultNotFoundError)) or \
            (isinstance(exc, ProviderGenericError) and int(exc.http_status_code) < 500) or \
            (isinstance(exc, (ValueError, CRSError)) and record.funcName == 'get_exception')
        if client:
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, 'INFO'
        return True


# -- conformance: what we really implement ---------------------------------------------------
_CQL2 = 'http://www.opengis.net/spec/cql2/1.0/conf/'
_FEATURES3 = 'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/'
CONFORMANCE = [_FEATURES3 + 'filter', _FEATURES3 + 'features-filter'] + [_CQL2 + c for c in (
    'cql2-json', 'advanced-comparison-operators', 'case-insensitive-comparison',
    'accent-insensitive-comparison', 'basic-spatial-functions', 'basic-spatial-functions-plus',
    'spatial-functions', 'temporal-functions', 'arithmetic', 'property-property')]
# Features Part 4 (geomayotte.writes): create, replace, delete, update, ETag locking
_FEATURES4 = 'http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/'
FEATURES4 = [_FEATURES4 + c for c in ('create-replace-delete', 'update', 'optimistic-locking-etags',
                                      'features')]
# OGC API Records 1.0 (the catalogue): pygeoapi lists draft names only
_RECORDS = 'http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/'
RECORDS_CONFORMANCE = [_RECORDS + c for c in (
    'record-core', 'record-collection', 'record-core-query-parameters', 'record-api',
    'searchable-catalog', 'searchable-catalog-filtering', 'searchable-catalog-sorting')]


# -- items ----------------------------------------------------------------------------------
def _geojson_type(headers, status):
    """GeoJSON answers are application/geo+json (pygeoapi says application/json)."""
    if status == 200 and headers.get('Content-Type', '').startswith('application/json'):
        headers['Content-Type'] = 'application/geo+json'


def get_collection_item(api, request, dataset, identifier):
    headers, status, content = _orig['get_item'](api, request, dataset, identifier)
    if status == 400 and 'Invalid provider type' in str(content):
        return api.get_exception(404, headers, request.format, 'NotFound',
                                 f'collection {dataset!r} has no items (a coverage?)')
    _geojson_type(headers, status)
    return headers, status, content


def _with_filter(href: str, ctx) -> str:
    """A link of a CQL2 JSON search, made a GET that repeats the filter."""
    if not href.startswith(ctx.url):
        return href
    parts = urllib.parse.urlsplit(href)
    params = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
              if k not in ('filter', 'filter-lang')]
    params += [('filter', ctx.filter_body), ('filter-lang', 'cql2-json')]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(params)))


def _mend_links(links: list, ctx) -> list:
    """pygeoapi adds `next` to a full last page and a `prev` that carries our cursor (keep
    the provider's paging links only), and drops the filter of a CQL2 JSON search."""
    if ctx.last_page:
        links = [lk for lk in links if lk.get('rel') not in ('next', 'prev')] + list(ctx.links)
    if ctx.filter_body is not None:
        for link in links:
            link['href'] = _with_filter(link['href'], ctx)
    return links


def _needs_mending(ctx) -> bool:
    return ctx is not None and ctx.last_page is not None and (
        ctx.last_page or ctx.filter_body is not None)


def get_collection_items(api, request, dataset=None):
    providers = api.config['resources'].get(dataset, {}).get('providers') or []
    if providers and request.format not in (None, 'json', 'html', 'jsonld') and \
            not any(p.get('type') == 'feature' for p in providers):
        # records: pygeoapi's CSV writer fails on them (an UnboundLocalError, a 500)
        return api.get_exception(400, request.get_response_headers(**api.api_headers), 'json',
                                 'InvalidParameterValue',
                                 f'f={request.format}: not a format of this collection (json, html or jsonld)')
    headers, status, content = _orig['get_items'](api, request, dataset)
    if status == 400 and 'Invalid provider type' in str(content):
        return api.get_exception(404, headers, request.format, 'NotFound',
                                 f'collection {dataset!r} has no items (a coverage?)')
    _geojson_type(headers, status)
    ctx = current.get()
    if status != 200 or ctx is None or not isinstance(content, str) or not content.startswith('{'):
        return headers, status, content
    if _needs_mending(ctx):
        doc = json.loads(content)
        doc['links'] = _mend_links(doc.get('links', []), ctx)
        content = json.dumps(doc, ensure_ascii=False, default=str)
    if ctx.raw_features is not None:
        content = _EMPTY_FEATURES.sub(lambda m: '"features":' + escape_angles(ctx.raw_features),
                                      content, count=1)
    elif ctx.stream is not None:   # the middleware streams the features in at the mark
        content = _EMPTY_FEATURES.sub(lambda m: streaming.MARK.decode(), content, count=1)
    return headers, status, content


_EMPTY_FEATURES = re.compile(r'"features":\s*\[\]')


def render_j2_template(config, tpl_config, template, data, locale_=None):
    """The HTML items page gets the same mended links as the JSON one."""
    ctx = current.get()
    if template == 'collections/items/index.html' and isinstance(data, dict) and _needs_mending(ctx):
        data['links'] = _mend_links(data.get('links', []), ctx)
    return _orig['render'](config, tpl_config, template, data, locale_)


def _drop_geometry(api, dataset, status, content):
    """No `geometry` property for a collection that has none."""
    if status != 200 or not isinstance(content, str) or not content.startswith('{'):
        return content
    for prov in api.config['resources'].get(dataset, {}).get('providers', []):
        if prov.get('type') == 'feature' and 'storage_crs' not in prov:
            doc = json.loads(content)
            doc.get('properties', {}).pop('geometry', None)
            return json.dumps(doc, ensure_ascii=False)
    return content


def get_collection_queryables(api, request, dataset=None):
    headers, status, content = _orig['get_queryables'](api, request, dataset)
    return headers, status, _drop_geometry(api, dataset, status, content)


def get_collection_schema(api, request, dataset):
    headers, status, content = _orig['get_schema'](api, request, dataset)
    return headers, status, _drop_geometry(api, dataset, status, content)


# -- coverages: pygeoapi answers a malformed bbox with HTTP 500 -------------------------------
def get_collection_coverage(api, request, dataset):
    headers, status, content = _orig['get_coverage'](api, request, dataset)
    if status == 500 and isinstance(content, str) and '"InvalidParameterValue"' in content:
        status = 400
    if status == 400 and 'invalid provider type' in str(content).lower():
        return api.get_exception(404, headers, request.format, 'NotFound',
                                 f'collection {dataset!r} is not a coverage')
    return headers, status, content


# -- JSON output: pygeoapi replaces < and > by &lt; &gt; in every JSON answer, which alters
# partner values ("A<B"); \u003c and \u003e keep the same safety for HTML embedding and the
# values intact.
def to_json(dict_, pretty=False):
    from pygeoapi.util import json_serial
    return escape_angles(json.dumps(dict_, default=json_serial, indent=4 if pretty else None,
                                    separators=(',', ':')))


def escape_angles(text: str) -> str:
    """In JSON text ``<`` and ``>`` can only be inside strings: escaped, the document means
    the same (also applied to the GeoJSON text PostGIS writes)."""
    return text.replace('<', '\\u003c').replace('>', '\\u003e')


# -- jobs: a full last page gets a `next` link too ---------------------------------------
def delete_job(api, request, job_id):
    """The answer is JSON: say so (pygeoapi sent it as text/html)."""
    headers, status, content = _orig['delete_job'](api, request, job_id)
    if isinstance(content, str) and content.lstrip().startswith('{'):
        headers['Content-Type'] = 'application/json'
    return headers, status, _no_such_job(status, content)


def _no_such_job(status, content):
    """A job that does not exist (or is another partner's) is OGC API Processes' no-such-job
    exception on every route (pygeoapi said InvalidParameterValue on GET /jobs/{id})."""
    if status == 404 and isinstance(content, str) and content.startswith('{'):
        doc = json.loads(content)
        if doc.get('code') in ('InvalidParameterValue', 'NotFound'):
            doc['code'] = doc['type'] = 'NoSuchJob'
            doc['description'] = f"job not found: {doc.get('description')}"
            return json.dumps(doc)
    return content


def get_jobs(api, request, job_id=None):
    headers, status, content = _orig['get_jobs'](api, request, job_id)
    content = _no_such_job(status, content)
    if job_id is not None or status != 200 or not isinstance(content, str) or not content.startswith('{'):
        return headers, status, content
    doc = json.loads(content)
    try:
        limit = int(request.params.get('limit') or 10)
        offset = int(request.params.get('offset') or 0)
    except ValueError:
        return headers, status, content
    matched = api.manager.get_jobs(limit=1, offset=0)['numberMatched']
    doc['numberMatched'], doc['numberReturned'] = matched, len(doc.get('jobs', []))
    if offset + limit >= matched:
        doc['links'] = [lk for lk in doc['links'] if lk.get('rel') != 'next']
    return headers, status, json.dumps(doc, ensure_ascii=False, default=str)


def describe_collections(api, request, dataset=None):
    """A coverage-only collection says what it is: ``dataType: coverage`` (OGC API Common
    Part 2) and ``layerDataType: Coverage`` (what GDAL's OAPIF driver reads to leave a
    collection out). Without them, Features clients take the DEM for a feature layer and
    fail on its items (a newcomer's ``ogrinfo OAPIF:…`` printed a 404)."""
    headers, status, content = _orig['describe'](api, request, dataset)
    if status != 200 or not isinstance(content, str) or not content.startswith('{'):
        return headers, status, content
    doc = json.loads(content)
    for entry in [doc] if dataset is not None else doc.get('collections', []):
        res = api.config['resources'].get(entry.get('id'), {})
        kinds = {p.get('type') for p in res.get('providers') or []}
        if 'itemType' not in entry and kinds == {'coverage'}:
            entry['dataType'], entry['layerDataType'] = 'coverage', 'Coverage'
    return headers, status, to_json(doc)


def get_exception(self, status, headers, format_, code, description):
    """pygeoapi's coverage and map answers to an unknown collection are 404s coded
    InvalidParameterValue: the code says NotFound, as the status does."""
    if int(status) == 404 and code == 'InvalidParameterValue':
        code = 'NotFound'
    return _orig['get_exception'](self, status, headers, format_, code, description)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    _orig.update(get_crs=pcrs.get_crs, spec=pcrs.create_crs_transform_spec,
                 transform_bbox=pcrs.transform_bbox, get_items=itemtypes.get_collection_items,
                 get_item=itemtypes.get_collection_item,
                 get_queryables=itemtypes.get_collection_queryables,
                 get_coverage=coverages.get_collection_coverage,
                 get_schema=core.get_collection_schema, render=itemtypes.render_j2_template,
                 get_jobs=processes.get_jobs, delete_job=processes.delete_job, parse_text=itemtypes.parse_cql2_text,
                 parse_json=itemtypes.parse_cql2_json, describe=core.describe_collections,
                 get_exception=core.API.get_exception)
    core.API.get_exception = get_exception
    pcrs.get_crs = pbase.get_crs = get_crs
    pcrs.create_crs_transform_spec = itemtypes.create_crs_transform_spec = create_crs_transform_spec
    itemtypes.transform_bbox = transform_bbox
    itemtypes.validate_datetime = validate_datetime
    itemtypes.validate_bbox = validate_bbox
    itemtypes.get_collection_items = get_collection_items
    itemtypes.get_collection_item = get_collection_item
    itemtypes.get_collection_queryables = get_collection_queryables
    coverages.get_collection_coverage = get_collection_coverage
    core.get_collection_schema = get_collection_schema
    core.describe_collections = describe_collections
    processes.get_jobs = get_jobs
    processes.delete_job = delete_job
    itemtypes.parse_cql2_text = parse_cql2_text
    itemtypes.parse_cql2_json = parse_cql2_json
    import pygeoapi.util as putil
    for module in (putil, core, itemtypes, processes, coverages):
        if hasattr(module, 'to_json'):
            module.to_json = to_json
    itemtypes.render_j2_template = render_j2_template
    itemtypes.CONFORMANCE_CLASSES_FEATURES[:] = [
        c for c in itemtypes.CONFORMANCE_CLASSES_FEATURES
        if 'ogcapi-features-4' not in c      # Part 4: the classes geomayotte.writes implements
    ] + CONFORMANCE + FEATURES4
    itemtypes.CONFORMANCE_CLASSES_RECORDS[:] = [
        c for c in itemtypes.CONFORMANCE_CLASSES_RECORDS if c not in RECORDS_CONFORMANCE
    ] + RECORDS_CONFORMANCE
    for name in ('pygeoapi.api', 'pygeoapi.process.manager.base', 'pygeoapi.process.manager.dummy'):
        logging.getLogger(name).addFilter(ClientErrorFilter())
