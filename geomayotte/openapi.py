"""Generate the OpenAPI document from ``pygeoapi-config.yml`` and validate it.

``python -m geomayotte.openapi [--output FILE]`` writes the document (default
``openapi/openapi.yml``, the committed copy) and validates it twice: against the
OpenAPI 3.0 JSON schema (pygeoapi's check) and with openapi-spec-validator, whose
``$ref`` to OGC schemas are resolved against the offline copies in
``../shared/ogc-schemas`` when present (the hosts are not reachable here).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import yaml

from geomayotte import commands, settings

SCHEMA_HOSTS = re.compile(r'https://(schemas\.opengis\.net|raw\.githubusercontent\.com)/')


def generate(config: Path, output: Path) -> None:
    from pygeoapi.openapi import generate_openapi_document
    output.parent.mkdir(parents=True, exist_ok=True)
    doc = add_dcat(add_writes(mend(yaml.safe_load(generate_openapi_document(config, 'yaml')))))
    output.write_text(yaml.safe_dump(doc, default_flow_style=False, allow_unicode=True),
                      encoding='utf-8')


def mend(doc: dict) -> dict:
    """Fix what pygeoapi 0.24 gets wrong: item responses without the required description."""
    for path in doc.get('paths', {}).values():
        for op in path.values():
            if not isinstance(op, dict):
                continue
            for status, resp in (op.get('responses') or {}).items():
                if isinstance(resp, dict) and '$ref' not in resp and 'description' not in resp:
                    resp['description'] = 'A feature' if status == '200' else 'Response'
    return doc


def _responses(*codes) -> dict:
    text = {'200': 'Written; the new ETag in the header, the accepted warnings in the body',
            '201': 'Created (Location and ETag for one feature)', '204': 'Deleted',
            '400': 'Not GeoJSON, unknown properties, a Content-Crs not accepted',
            '401': 'No valid partner credential', '403': 'The partner may not write this collection',
            '404': 'No such feature or collection', '409': 'The identifier exists already',
            '412': 'If-Match: the feature has changed since (or If-None-Match names it)',
            '415': 'Unsupported media type',
            '422': 'The reference model finds errors: nothing written, the report in the body'}
    return {c: {'description': text[c]} for c in codes}


def add_writes(doc: dict) -> dict:
    """Features Part 4 (geomayotte.writes) on the collections a feature type of the reference
    model describes; their history; the bearer credentials."""
    from geomayotte.validation import model as modelmod
    writable = sorted({ft.platform_collection for ft in modelmod.load().feature_types.values()
                       if ft.platform_collection})
    doc.setdefault('components', {}).setdefault('securitySchemes', {})['bearer'] = {
        'type': 'http', 'scheme': 'bearer',
        'description': 'a partner API key (gmk_...) or an OpenID Connect access token'}
    secured = [{'bearer': []}]
    crs_header = {'name': 'Content-Crs', 'in': 'header', 'required': False, 'schema': {'type': 'string'},
                  'description': 'CRS of the geometry: <http://www.opengis.net/def/crs/OGC/1.3/CRS84> '
                                 '(default), <.../EPSG/0/4326> (lat/lon) or <.../EPSG/0/4471>'}
    if_match = {'name': 'If-Match', 'in': 'header', 'required': False, 'schema': {'type': 'string'},
                'description': 'the ETag read: a stale write is refused (412)'}
    if_none = {'name': 'If-None-Match', 'in': 'header', 'required': False, 'schema': {'type': 'string'},
               'description': 'ETags (or *): a read naming the feature\'s answers 304 Not Modified, '
                              'a write naming it is refused (412)'}
    fid = {'name': 'featureId', 'in': 'path', 'required': True, 'schema': {'type': 'string'}}
    for path, ops in doc.get('paths', {}).items():   # conditional reads (geomayotte.fastpath)
        if path.startswith('/collections/') and path.endswith('/items/{featureId}') and 'get' in ops:
            ops['get'].setdefault('parameters', []).append(if_none)
            ops['get'].setdefault('responses', {})['304'] = {
                'description': 'Not modified: the feature still has the ETag given in If-None-Match'}
    geojson = {'application/geo+json': {'schema': {'type': 'object'}}}
    for rid in writable:
        items, item = f'/collections/{rid}/items', f'/collections/{rid}/items/{{featureId}}'
        if items not in doc.get('paths', {}):
            continue
        doc['paths'][items]['post'] = {
            'summary': 'Create features (a Feature, or a FeatureCollection written whole or not at all)',
            'operationId': f'create{rid.capitalize()}Features', 'tags': [rid], 'security': secured,
            'parameters': [crs_header], 'requestBody': {'required': True, 'content': geojson},
            'responses': _responses('201', '400', '401', '403', '404', '409', '415', '422')}
        ops = doc['paths'].setdefault(item, {})
        ops['put'] = {'summary': 'Replace a feature', 'operationId': f'replace{rid.capitalize()}Feature',
                      'tags': [rid], 'security': secured, 'parameters': [fid, crs_header, if_match, if_none],
                      'requestBody': {'required': True, 'content': geojson},
                      'responses': _responses('200', '400', '401', '403', '404', '412', '415', '422')}
        ops['patch'] = {'summary': 'Update a feature (JSON merge patch, RFC 7396)',
                        'operationId': f'update{rid.capitalize()}Feature', 'tags': [rid],
                        'security': secured, 'parameters': [fid, crs_header, if_match, if_none],
                        'requestBody': {'required': True, 'content': {
                            'application/merge-patch+json': {'schema': {'type': 'object'}}}},
                        'responses': _responses('200', '400', '401', '403', '404', '412', '415', '422')}
        ops['delete'] = {'summary': 'Delete a feature (kept in its history)',
                         'operationId': f'delete{rid.capitalize()}Feature', 'tags': [rid],
                         'security': secured, 'parameters': [fid, if_match, if_none],
                         'responses': _responses('204', '401', '403', '404', '412')}
        doc['paths'][f'{item}/history'] = {'get': {
            'summary': 'Every change of the feature: partner, time, operation, before and after',
            'operationId': f'get{rid.capitalize()}FeatureHistory', 'tags': [rid], 'parameters': [fid],
            'responses': {'200': {'description': 'The changes, oldest first',
                                  'content': {'application/json': {'schema': {'type': 'object'}}}},
                          '404': {'description': 'No such collection'}}}}
    return doc


def add_dcat(doc: dict) -> dict:
    """The catalogue's DCAT-AP view (geomayotte.catalogue.dcat), served beside pygeoapi."""
    from geomayotte.catalogue import dcat
    if '/collections/catalogue' not in doc.get('paths', {}):
        return doc
    formats = sorted({mime for _, mime in dcat.FORMATS.values()})
    doc['paths'][dcat.PATH] = {'get': {
        'summary': 'The catalogue as DCAT-AP (for DCAT harvesters such as data.gouv.fr)',
        'description': 'dcat:Catalog, a dcat:Dataset per dataset record with its distributions '
                       '(downloads and API access), dcat:DataService for the API; paged with '
                       'Hydra (hydra:PartialCollectionView: first, last, next, previous, '
                       'totalItems). Partners see the datasets their credential opens.',
        'operationId': 'getCatalogueDcat', 'tags': ['catalogue'],
        'parameters': [
            {'name': 'f', 'in': 'query', 'required': False, 'description':
             'format (else by Accept, JSON-LD by default)',
             'schema': {'type': 'string', 'enum': sorted(dcat.FORMATS)}},
            {'name': 'limit', 'in': 'query', 'required': False, 'schema': {
                'type': 'integer', 'minimum': 1, 'maximum': dcat.MAX_LIMIT, 'default': dcat.DEFAULT_LIMIT}},
            {'name': 'offset', 'in': 'query', 'required': False,
             'schema': {'type': 'integer', 'minimum': 0, 'default': 0}}],
        'responses': {
            '200': {'description': 'A page of the DCAT-AP catalogue',
                    'content': {m: {'schema': {'type': 'string'}} for m in formats}},
            '400': {'description': 'An unknown parameter or format, a limit or offset out of range',
                    'content': {'application/json': {'schema': {'type': 'object'}}}}}}}
    return doc


def local_schemas_dir() -> Path | None:
    cand = Path(os.environ.get('GEOMAYOTTE_OGC_SCHEMAS',
                               settings.PROJECT_DIR.parent / 'shared' / 'ogc-schemas'))
    return cand if cand.is_dir() else None


def localised(text: str, schemas: Path) -> str:
    return SCHEMA_HOSTS.sub(lambda m: f'file://{schemas}/{m.group(1)}/', text)


def bundle(doc: dict, missing: set[str]) -> dict:
    """Inline every ``$ref`` that leaves the main document (file:// after localising).

    Targets missing from the offline copies become permissive stubs, named in
    ``missing``, so that the rest of the document is still checked.
    """
    cache: dict[str, object] = {}

    def load(path: str):
        if path not in cache:
            p = Path(path)
            cache[path] = yaml.safe_load(p.read_text(encoding='utf-8')) if p.exists() else None
        return cache[path]

    def stub(frag: str, where: str):
        """A permissive object of the kind expected where the $ref stood."""
        if where == 'parameters' or '/parameters/' in frag:
            return {'name': frag.rsplit('/', 1)[-1] or 'stub', 'in': 'query', 'schema': {'type': 'string'}}
        if where == 'responses' or '/responses/' in frag:
            return {'description': 'stub for a schema not available offline'}
        if where == 'requestBody' or '/requestBodies/' in frag:
            return {'content': {'application/json': {'schema': {'type': 'object'}}}}
        return {'type': 'object'}

    def resolve(ref: str, current: str | None, depth: int, where: str = ''):
        target, _, frag = ref.partition('#')
        if target.startswith('file://'):
            target = target[7:]
        elif target == '':
            if current is None:
                return None            # internal to the main document: keep the $ref
            target = current
        elif current is not None and not target.startswith(('http://', 'https://')):
            target = str((Path(current).parent / target).resolve())
        else:
            missing.add(target)
            return stub(frag, where)
        node = load(target)
        if node is None:
            missing.add(target.rsplit('/', 1)[-1])
            return stub(frag, where)
        for part in [p for p in frag.split('/') if p]:
            node = node.get(part.replace('~1', '/').replace('~0', '~'), {}) \
                if isinstance(node, dict) else {}
        return walk(node, target, depth + 1, where)

    def walk(node, current, depth=0, where=''):
        if depth > 40:
            return {'type': 'object'}
        if isinstance(node, dict):
            if set(node) == {'$ref'} and isinstance(node['$ref'], str):
                out = resolve(node['$ref'], current, depth, where)
                return node if out is None else out
            return {k: walk(v, current, depth, k if k in ('parameters', 'requestBody') else
                            ('responses' if where == 'responses_map' else
                             'responses_map' if k == 'responses' else ''))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, current, depth, where) for v in node]
        return node

    return walk(doc, None)


def validate(path: Path) -> list[str]:
    """Problems found (empty when valid)."""
    from pygeoapi.openapi import validate_openapi_document
    problems = []
    text = path.read_text(encoding='utf-8')
    doc = yaml.safe_load(text)
    try:
        validate_openapi_document(doc)
    except Exception as err:  # jsonschema.ValidationError and friends
        problems.append(f'OpenAPI 3.0 schema: {str(err).splitlines()[0]}')
    schemas = local_schemas_dir()
    if schemas is None:
        problems.append('OGC schema copies not found (set GEOMAYOTTE_OGC_SCHEMAS): '
                        '$ref resolution not checked')
        return problems
    from openapi_spec_validator import validate as spec_validate
    missing: set[str] = set()
    local = bundle(yaml.safe_load(localised(text, schemas)), missing)
    if missing:
        problems.append(f'OGC schema copies missing offline, stubbed for the check: {sorted(missing)}')
    try:
        spec_validate(local, base_uri=f'file://{path.resolve()}')
    except Exception as err:
        problems.append(f'openapi-spec-validator: {str(err).splitlines()[0]}')
    return problems


@commands.friendly('geomayotte.openapi')
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m geomayotte.openapi', description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', type=Path, default=settings.pygeoapi_config(),
                        help='pygeoapi configuration (default $PYGEOAPI_CONFIG or '
                             'pygeoapi-config.yml)')
    parser.add_argument('--output', type=Path, default=settings.PROJECT_DIR / 'openapi' / 'openapi.yml',
                        help='where to write the document (default openapi/openapi.yml); its '
                             'server URL is $GEOMAYOTTE_BASE_URL (default http://127.0.0.1:5000)')
    parser.add_argument('--validate-only', action='store_true',
                        help='do not generate: only validate the --output file')
    args = parser.parse_args(argv)
    os.environ.setdefault('DATABASE_URL', settings.database_url())
    os.environ.setdefault('GEOMAYOTTE_DATA_DIR', str(settings.data_dir()))
    os.environ.setdefault('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000')
    if not args.validate_only:
        generate(args.config, args.output)
    problems = validate(args.output)
    for p in problems:
        print(f'{args.output}: {p}', file=sys.stderr)
    if any(not p.startswith(('OGC schema copies')) for p in problems):
        return 1
    print(f'{args.output}: {"valid" if args.validate_only else "generated and valid"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
