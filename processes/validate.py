"""OGC API Processes: validate partner data against the shared reference model.

``POST /processes/validate-reference-model/execution`` with the features (GeoJSON)
or a file (GeoPackage, zipped Shapefile, GeoJSON; base64 qualified value), the
target feature type, and options. The answer is a report (JSON) a partner can act
on: every issue with its rule code, severity, message in French and English,
feature, location (submitted CRS and CRS84) and ISO 19157 quality element.
A rule that fails is part of the report; only input the report cannot cover
(unknown feature type, unreadable file, missing input) is a 400 naming the input.
"""
from __future__ import annotations

import copy
import logging

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from geomayotte import settings
from geomayotte.validation import model as modelmod
from geomayotte.validation.reader import InputError
from geomayotte.validation.report import to_html, validate

LOGGER = logging.getLogger(__name__)


def _metadata() -> dict:
    m = modelmod.load()
    types = sorted(m.feature_types) + sorted(m.raster_types)
    return {
        'version': m.version,
        'id': 'validate-reference-model',
        'title': {'fr': 'Valider des données par rapport au modèle de référence',
                  'en': 'Validate data against the reference model'},
        'description': {
            'fr': "Contrôle un jeu de données d'un partenaire (GeoJSON, GeoPackage, Shapefile zippé) "
                  "par rapport à un type d'objet du modèle de référence partagé de Mayotte : format, "
                  "géométrie, territoire, cohérence avec le référentiel (communes, objets déjà publiés) "
                  "et attributs. Rend un rapport avec, pour chaque anomalie, sa règle, sa gravité, "
                  "l'objet, sa localisation et l'élément de qualité ISO 19157.",
            'en': "Checks a partner's dataset (GeoJSON, GeoPackage, zipped Shapefile) against a "
                  "feature type of Mayotte's shared reference model: format, geometry, territory, "
                  "consistency with the reference data (municipalities, objects already published) "
                  "and attributes. Returns a report giving, for each issue, its rule, severity, "
                  "feature, location and ISO 19157 quality element."},
        'jobControlOptions': ['sync-execute', 'async-execute'],
        'keywords': ['validation', 'qualité', 'ISO 19157', 'modèle de référence'],
        'links': [{'type': 'application/schema+json', 'rel': 'describedby',
                   'title': f'JSON Schema: {name}', 'href': f'/model/feature-types/{name}/schema'}
                  for name in sorted(m.feature_types)] + [{'type': 'application/json', 'rel': 'describedby',
                                         'title': 'Reference model', 'href': '/model'}],
        'inputs': {
            'featureType': {
                'title': 'Feature type', 'description': "Type d'objet du modèle / feature type of the model",
                'schema': {'type': 'string', 'enum': types}, 'minOccurs': 1, 'maxOccurs': 1},
            'features': {
                'title': 'Features (GeoJSON)',
                'description': 'A GeoJSON FeatureCollection (or Feature). Give this or file.',
                'schema': {'type': 'object', 'contentMediaType': 'application/geo+json'},
                'minOccurs': 0, 'maxOccurs': 1},
            'file': {
                'title': 'File',
                'description': 'GeoPackage, zipped Shapefile or GeoJSON (or a GeoTIFF for a raster type), as '
                               '{"value": "<base64>", "mediaType": "..."}. Give this or features.',
                'schema': {'type': 'string', 'contentEncoding': 'base64', 'contentMediaType': [
                    'application/geopackage+sqlite3', 'application/zip', 'application/geo+json',
                    'image/tiff']},
                'minOccurs': 0, 'maxOccurs': 1},
            'crs': {
                'title': 'Declared CRS', 'description': 'CRS of the input when it declares none '
                                                        '(GeoJSON default: CRS84)',
                'schema': {'type': 'string', 'enum': list(m.accepted_crs) + [
                    'http://www.opengis.net/def/crs/EPSG/0/4471',
                    'http://www.opengis.net/def/crs/EPSG/0/4326',
                    'http://www.opengis.net/def/crs/OGC/1.3/CRS84']},
                'minOccurs': 0, 'maxOccurs': 1},
            'layer': {'title': 'Layer', 'description': 'GeoPackage layer (default: the first)',
                      'schema': {'type': 'string'}, 'minOccurs': 0, 'maxOccurs': 1},
            'rules': {
                'title': 'Rule groups', 'description': 'Which rule groups to run (default: all)',
                'schema': {'type': 'array', 'items': {'type': 'string', 'enum': list(modelmod.RULE_GROUPS)}},
                'minOccurs': 0, 'maxOccurs': 1},
            'lang': {'title': 'Language of the HTML report', 'schema': {'type': 'string', 'enum': ['fr', 'en'],
                                                                         'default': 'fr'},
                     'minOccurs': 0, 'maxOccurs': 1},
            'repair': {'title': 'Return repaired features',
                       'description': 'Add the features with geometries made valid to the report',
                       'schema': {'type': 'boolean', 'default': False}, 'minOccurs': 0, 'maxOccurs': 1},
        },
        'outputs': {
            'report': {'title': 'Validation report',
                       'description': 'JSON for machines; text/html (with a map of the issues) for '
                                      'people: request it with outputs.report.format.mediaType',
                       'schema': {'oneOf': [{'type': 'object'}, {'type': 'string'}]}}},
        'example': {'inputs': {'featureType': 'equipement', 'features': {
            'type': 'FeatureCollection', 'features': [{
                'type': 'Feature', 'geometry': {'type': 'Point', 'coordinates': [45.2277, -12.7806]},
                'properties': {'id': 'EQ-1', 'nom': 'Mairie de Mamoudzou', 'categorie': 'administration',
                               'code_insee': '97611'}}]}}},
    }


def _requested_media_type(outputs) -> str:
    """OGC API Processes: {"outputs": {"report": {"format": {"mediaType": "text/html"}}}}."""
    if not outputs:
        return 'application/json'
    if not isinstance(outputs, dict) or set(outputs) - {'report'}:
        raise ProcessorExecuteError(user_msg='outputs: this process has one output, "report"')
    report = outputs.get('report') or {}
    if not isinstance(report, dict):
        raise ProcessorExecuteError(user_msg='outputs.report: an object such as {"format": {"mediaType": "text/html"}}')
    fmt = report.get('format') or {}
    media = fmt.get('mediaType', 'application/json') if isinstance(fmt, dict) else None
    if media not in ('application/json', 'text/html'):
        raise ProcessorExecuteError(user_msg='outputs.report.format.mediaType: application/json or text/html')
    return media


class ValidationProcessor(BaseProcessor):
    def __init__(self, processor_def):
        # pygeoapi appends to the metadata it is given: hand it a fresh copy
        super().__init__(processor_def, copy.deepcopy(_metadata()))
        self.url = processor_def.get('data') or settings.database_url()
        self.supports_outputs = True

    def execute(self, data, outputs=None):
        if not isinstance(data, dict):
            raise ProcessorExecuteError(user_msg='inputs: expected an object')
        media = _requested_media_type(outputs)
        lang = data.get('lang', 'fr')
        if lang not in ('fr', 'en'):
            raise ProcessorExecuteError(user_msg="lang: 'fr' or 'en'")
        inputs = {k: v for k, v in data.items() if k != 'lang'}
        try:
            report = validate(inputs, self.url)
        except InputError as err:
            raise ProcessorExecuteError(user_msg=str(err)) from None
        if media == 'text/html':
            return 'text/html', to_html(report, lang)
        return 'application/json', report

    def __repr__(self):
        return '<ValidationProcessor>'

