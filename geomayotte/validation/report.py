"""Issues -> the report a partner acts on (JSON), and the whole validation entry point."""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict

import pyproj

from geomayotte.validation import model as modelmod, reader, rules
from geomayotte.validation.catalogue import ERROR, RULES, WARNING

CRS84 = pyproj.CRS('OGC:CRS84')


class _Default(dict):
    def __missing__(self, key):
        return '{' + key + '}'


def _message(code: str, params: dict) -> dict:
    rule = RULES[code]
    fmt = _Default({k: v for k, v in params.items()})
    return {'fr': rule.fr.format_map(fmt), 'en': rule.en.format_map(fmt)}


def _location(point, crs: pyproj.CRS | None, crs_name: str | None) -> dict | None:
    if point is None or crs is None:
        return None
    x, y = float(point[0]), float(point[1])
    lon, lat = rules._transformer(crs, CRS84).transform(x, y)
    digits = 8 if crs.is_geographic else 3
    out = {'submitted': {'crs': crs_name, 'type': 'Point', 'coordinates': [round(x, digits), round(y, digits)]}}
    if math.isfinite(lon) and math.isfinite(lat):
        out['crs84'] = {'type': 'Point', 'coordinates': [round(lon, 8), round(lat, 8)]}
    return out


def build(sub: reader.Submission, model: modelmod.Model, ft: modelmod.FeatureType,
          raw_issues: list, groups: set[str]) -> dict:
    issues = []
    for code, index, params, point in raw_issues:
        rule = RULES[code]
        public = {k: v for k, v in params.items() if k not in ('inside', 'inside_en')}
        issues.append({
            'code': code, 'group': rule.group, 'severity': rule.severity,
            'iso19157': rule.iso19157,
            'featureIndex': index, 'featureId': sub.ids[index] if index is not None else None,
            'message': _message(code, params), 'details': public,
            'location': _location(point, sub.crs, sub.crs_name),
        })
    issues.sort(key=lambda x: (x['featureIndex'] if x['featureIndex'] is not None else -1, x['code']))
    by_sev = Counter(i['severity'] for i in issues)
    by_rule = Counter(i['code'] for i in issues)
    by_iso = defaultdict(lambda: {'errors': 0, 'warnings': 0})
    for i in issues:
        by_iso[i['iso19157']]['errors' if i['severity'] == ERROR else 'warnings'] += 1
    warned = {i['featureIndex'] for i in issues if i['severity'] == WARNING and i['featureIndex'] is not None}
    n = len(sub.ids)
    t = ft.thresholds
    passed = by_sev[ERROR] <= int(t['max_errors']) and (
        n == 0 or len(warned) / n <= float(t['max_warning_ratio']))
    per_feature = defaultdict(list)
    for k, i in enumerate(issues):
        if i['featureIndex'] is not None:
            per_feature[i['featureIndex']].append(k)
    return {
        'model': {'name': model.name, 'version': model.version},
        'featureType': ft.name,
        'checkedAt': dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds'),
        'input': {'source': sub.source, 'crs': sub.crs_name, 'features': n},
        'ruleGroups': sorted(groups),
        'summary': {
            'passed': passed,
            'errors': by_sev[ERROR], 'warnings': by_sev[WARNING],
            'featuresWithErrors': len({i['featureIndex'] for i in issues if i['severity'] == ERROR}),
            'featuresWithWarnings': len(warned),
            'thresholds': {'max_errors': t['max_errors'], 'max_warning_ratio': t['max_warning_ratio']},
            'byRule': {code: {'count': c, 'severity': RULES[code].severity, 'group': RULES[code].group,
                              'iso19157': RULES[code].iso19157, 'title': _message(code, {})}
                       for code, c in sorted(by_rule.items())},
            'byQualityElement': dict(sorted(by_iso.items())),
        },
        'issues': issues,
        'features': [{'index': idx, 'id': sub.ids[idx], 'issues': refs}
                     for idx, refs in sorted(per_feature.items())],
    }


def validate(inputs: dict, url: str) -> dict:
    """Process inputs -> report. Raises reader.InputError for input the report cannot cover."""
    m = modelmod.load()
    ft_name = inputs.get('featureType')
    if not isinstance(ft_name, str) or not ft_name:
        raise reader.InputError('featureType', f'required: one of {sorted(m.feature_types)}')
    if ft_name in m.raster_types:
        return _validate_raster(inputs, m, m.raster_types[ft_name], url)
    if ft_name not in m.feature_types:
        raise reader.InputError('featureType', f'unknown feature type {ft_name!r}; one of '
                                               f'{sorted(m.feature_types) + sorted(m.raster_types)}')
    ft = m.feature_types[ft_name]
    groups = inputs.get('rules', list(modelmod.RULE_GROUPS))
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
        raise reader.InputError('rules', f'a non-empty list among {list(modelmod.RULE_GROUPS)}')
    if not isinstance(inputs.get('repair', False), bool):
        raise reader.InputError('repair', 'true or false')
    unknown = set(groups) - set(modelmod.RULE_GROUPS)
    if unknown:
        raise reader.InputError('rules', f'unknown rule groups {sorted(unknown)}; '
                                         f'known: {list(modelmod.RULE_GROUPS)}')
    declared = inputs.get('crs')
    if declared is not None and not isinstance(declared, str):
        raise reader.InputError('crs', 'a CRS URI or code such as EPSG:4471')
    has_features, has_file = inputs.get('features') is not None, inputs.get('file') is not None
    if has_features == has_file:
        raise reader.InputError('features', 'give exactly one of the inputs "features" and "file"')
    if has_features:
        sub = reader.read_inline(inputs['features'], declared, ft.identifier)
    else:
        layer = inputs.get('layer')
        if layer is not None and not isinstance(layer, str):
            raise reader.InputError('layer', 'a layer name')
        sub = reader.read_file(inputs['file'], declared, ft.identifier, layer)
    groups = set(groups) | {'format'}   # unusable input is always reported
    issues = rules.run(sub, m, ft, url, groups)
    report = build(sub, m, ft, issues, groups)
    if inputs.get('repair'):
        report['repaired'] = repaired(sub)
    return report


def _validate_raster(inputs: dict, m, rtype: dict, url: str) -> dict:
    from geomayotte.validation import raster
    if inputs.get('features') is not None or inputs.get('file') is None:
        raise reader.InputError('file', f'{rtype["name"]} is a raster type: give the GeoTIFF as "file"')
    sub, issues = raster.read_and_check(inputs['file'], rtype, m, url)
    return build(sub, m, raster.fake_feature_type(rtype), issues, {'format', 'territory'})


def repaired(sub: reader.Submission) -> dict:
    """The features with their geometries made valid and repeated vertices removed."""
    import json

    import shapely
    feats = []
    for i, g in enumerate(sub.geometries):
        geom = None
        if g is not None and not shapely.is_empty(g):
            fixed = shapely.remove_repeated_points(shapely.make_valid(g), 0.0)
            geom = json.loads(shapely.to_geojson(fixed))
        feats.append({'type': 'Feature', 'id': sub.ids[i], 'properties': sub.properties[i],
                      'geometry': geom})
    return {'type': 'FeatureCollection', 'features': feats}


def to_html(report: dict, lang: str = 'fr') -> str:
    """The report for people: summary, a map of the issues, the issues by feature."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader('geomayotte.validation', 'templates'),
                             autoescape=True)
    lang = lang if lang in ('fr', 'en') else 'fr'
    points = [{'lon': i['location']['crs84']['coordinates'][0], 'lat': i['location']['crs84']['coordinates'][1],
               'severity': i['severity'], 'label': f"{i['featureId']} {i['code']}: {i['message'][lang]}"}
              for i in report['issues'] if i.get('location') and 'crs84' in i['location']]
    return env.get_template('report.html').render(
        report=report, lang=lang, points=points, t=lambda fr, en: fr if lang == 'fr' else en)
