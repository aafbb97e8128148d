"""CQL2 (as a pygeofilter AST) -> a SQL condition built with psycopg2.sql.

Attributes are checked against the table's catalog description and quoted as
identifiers; every literal is coerced to the attribute's type in Python and bound
as a parameter. Geometry literals arrive already in the column's CRS (pygeoapi
moves them into ``storage_crs``), so the spatial index serves.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from psycopg2 import sql
from pygeofilter import ast, values

from geomayotte import crs as crsmod
from geomayotte.catalog import Column, Table
from geomayotte.errors import InvalidQuery

_COMPARE = {
    ast.ComparisonOp.EQ: '=', ast.ComparisonOp.NE: '<>', ast.ComparisonOp.LT: '<',
    ast.ComparisonOp.LE: '<=', ast.ComparisonOp.GT: '>', ast.ComparisonOp.GE: '>=',
}
_SPATIAL = {
    ast.SpatialComparisonOp.INTERSECTS: 'ST_Intersects', ast.SpatialComparisonOp.DISJOINT: 'ST_Disjoint',
    ast.SpatialComparisonOp.CONTAINS: 'ST_Contains', ast.SpatialComparisonOp.WITHIN: 'ST_Within',
    ast.SpatialComparisonOp.TOUCHES: 'ST_Touches', ast.SpatialComparisonOp.CROSSES: 'ST_Crosses',
    ast.SpatialComparisonOp.OVERLAPS: 'ST_Overlaps', ast.SpatialComparisonOp.EQUALS: 'ST_Equals',
}
_ARITH = {ast.ArithmeticOp.ADD: '+', ast.ArithmeticOp.SUB: '-', ast.ArithmeticOp.MUL: '*',
          ast.ArithmeticOp.DIV: '/'}
_ARRAY = {ast.ArrayComparisonOp.AEQUALS: '=', ast.ArrayComparisonOp.ACONTAINS: '@>',
          ast.ArrayComparisonOp.ACONTAINEDBY: '<@', ast.ArrayComparisonOp.AOVERLAPS: '&&'}
_METRES = {'m': 1.0, 'meter': 1.0, 'meters': 1.0, 'metre': 1.0, 'metres': 1.0,
           'km': 1000.0, 'kilometers': 1000.0, 'kilometres': 1000.0}


def geometry_expression(table: Table) -> sql.Composable:
    """The geometry as predicates see it: invalid ones (kept as received) made valid."""
    geom = sql.Identifier(table.geometry)
    if table.has_validity:
        return sql.SQL('(CASE WHEN geom_valid THEN {g} ELSE ST_MakeValid({g}) END)').format(g=geom)
    return geom


class Translator:
    """``filter_crs``: CRS of envelope literals (geometry literals arrive already moved
    into the storage CRS by pygeoapi). ``json_filter``: the filter came as CQL2 JSON,
    whose ``{"bbox": [minx, miny, maxx, maxy]}`` pygeofilter 0.4 stores positionally
    in ``Envelope(x1, x2, y1, y2)``; CQL2 text ``ENVELOPE(minx maxx miny maxy)`` fills
    the same fields by name."""

    def __init__(self, table: Table, filter_crs: str | None = None, json_filter: bool = False):
        self.table = table
        self.filter_crs = filter_crs or crsmod.CRS84
        self.json_filter = json_filter

    # -- entry point ------------------------------------------------------
    def condition(self, node) -> tuple[sql.Composable, list]:
        params: list = []
        try:
            return self._cond(node, params), params
        except RecursionError:
            raise InvalidQuery('filter: nested too deeply') from None

    # -- conditions -------------------------------------------------------
    def _cond(self, node, params: list) -> sql.Composable:
        if isinstance(node, ast.Not):
            return sql.SQL('(NOT {})').format(self._cond(node.sub_node, params))
        if isinstance(node, ast.Combination):
            word = ' AND ' if node.op == ast.CombinationOp.AND else ' OR '
            return sql.SQL('({})').format(sql.SQL(word).join(
                [self._cond(node.lhs, params), self._cond(node.rhs, params)]))
        if isinstance(node, ast.Comparison):
            for side in (node.lhs, node.rhs):
                col = self._column_of(side)
                if col is not None and col.kind == 'array':
                    raise InvalidQuery(f'{col.name!r} is an array: compare it with A_CONTAINS, '
                                       'A_EQUALS, A_OVERLAPS or A_CONTAINEDBY (CQL2 JSON)')
            lhs, rhs = self._pair(node.lhs, node.rhs, params)
            return sql.SQL('({} {} {})').format(lhs, sql.SQL(_COMPARE[node.op]), rhs)
        if isinstance(node, ast.Between):
            col = self._column_of(node.lhs)
            lhs = self._expr(node.lhs, params)
            low = self._value(node.low, col, params)
            high = self._value(node.high, col, params)
            neg = 'NOT ' if node.not_ else ''
            return sql.SQL('({} ' + neg + 'BETWEEN {} AND {})').format(lhs, low, high)
        if isinstance(node, ast.Like):
            return self._like(node, params)
        if isinstance(node, ast.In):
            col = self._column_of(node.lhs)
            if col is not None and col.kind == 'array':
                raise InvalidQuery(f'{col.name!r} is an array: use A_OVERLAPS (CQL2 JSON)')
            lhs = self._expr(node.lhs, params)
            items = [self._literal(v, col) for v in node.sub_nodes]
            params.append(items)
            text = '(NOT ({} = ANY(%s)))' if node.not_ else '({} = ANY(%s))'
            return sql.SQL(text).format(lhs)
        if isinstance(node, ast.IsNull):
            if isinstance(node.lhs, ast.Attribute) and node.lhs.name in ('geometry', self.table.geometry):
                if not self.table.geometry:
                    return sql.SQL('TRUE' if not node.not_ else 'FALSE')
                return sql.SQL('({} IS {}NULL)').format(sql.Identifier(self.table.geometry),
                                                       sql.SQL('NOT ' if node.not_ else ''))
            return sql.SQL('({} IS {}NULL)').format(self._expr(node.lhs, params),
                                                   sql.SQL('NOT ' if node.not_ else ''))
        if isinstance(node, ast.Exists):
            name = node.lhs.name if isinstance(node.lhs, ast.Attribute) else None
            exists = name in self.table.columns or name in ('geometry', self.table.geometry)
            return sql.SQL('TRUE' if exists != bool(node.not_) else 'FALSE')
        if isinstance(node, ast.Include):
            return sql.SQL('FALSE' if node.not_ else 'TRUE')
        if isinstance(node, ast.TemporalPredicate):
            return self._temporal(node, params)
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self._spatial(_SPATIAL[node.op], node.lhs, node.rhs, params,
                                 use_index=node.op != ast.SpatialComparisonOp.DISJOINT)
        if isinstance(node, ast.Relate):
            if not isinstance(node.pattern, str) or not re.fullmatch(r'[TF012*]{9}', node.pattern):
                raise InvalidQuery(f'RELATE: {node.pattern!r} is not a DE-9IM pattern '
                                   '(9 characters among T F 0 1 2 *)')
            geom, other = self._geoms(node.lhs, node.rhs, params)
            params.append(node.pattern)
            return sql.SQL('ST_Relate({}, {}, %s)').format(geom, other)
        if isinstance(node, ast.SpatialDistancePredicate):
            return self._distance(node, params)
        if isinstance(node, ast.BBox):
            return self._bbox(node, params)
        if isinstance(node, ast.ArrayPredicate):
            col = self._column_of(node.lhs)
            if col is None or col.kind != 'array':
                raise InvalidQuery(f'{node.op.value} needs an array property, got {_name(node.lhs)}')
            items = node.rhs if isinstance(node.rhs, (list, tuple)) else [node.rhs]
            params.append([str(v) for v in items])
            return sql.SQL('({} {} %s::text[])').format(self._expr(node.lhs, params),
                                                        sql.SQL(_ARRAY[node.op]))
        if isinstance(node, bool):
            return sql.SQL('TRUE' if node else 'FALSE')
        if isinstance(node, ast.Attribute):
            col = self._attribute(node)
            if col.kind != 'boolean':
                raise InvalidQuery(f'property {col.name!r} is not a boolean condition')
            return sql.Identifier(col.name)
        raise InvalidQuery(f'unsupported filter expression: {type(node).__name__}')

    # -- expressions ------------------------------------------------------
    def _attribute(self, node: ast.Attribute) -> Column:
        if not isinstance(node.name, str):
            raise InvalidQuery(f'a property name must be a string, not {node.name!r}')
        col = self.table.column(node.name)
        if col is None:
            raise InvalidQuery(f'unknown property {node.name!r} in filter; queryables: '
                               f'{", ".join(self.table.columns)}')
        return col

    def _column_of(self, node) -> Column | None:
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Function) and node.arguments:
            inner = self._column_of(node.arguments[0])
            if inner is not None and node.name.lower() in ('lower', 'upper', 'casei', 'accenti'):
                return Column(inner.name, 'text', 'string', None, 'text')   # compared as text
            return inner
        return None

    def _pair(self, lhs, rhs, params):
        col = self._column_of(lhs) or self._column_of(rhs)
        return self._value(lhs, col, params), self._value(rhs, col, params)

    def _value(self, node, col: Column | None, params: list) -> sql.Composable:
        if isinstance(node, (ast.Attribute, ast.Function, ast.Arithmetic)):
            return self._expr(node, params)
        params.append(self._literal(node, col))
        return sql.Placeholder()

    def _expr(self, node, params: list) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            return sql.Identifier(self._attribute(node).name)
        if isinstance(node, ast.Function):
            name = node.name.lower()
            if name in ('lower', 'casei') and len(node.arguments) == 1:
                return sql.SQL('lower({})').format(self._text(node.arguments[0], params))
            if name == 'accenti' and len(node.arguments) == 1:
                return sql.SQL('unaccent({})').format(self._text(node.arguments[0], params))
            if name == 'upper' and len(node.arguments) == 1:
                return sql.SQL('upper({})').format(self._text(node.arguments[0], params))
            raise InvalidQuery(f'unsupported function {node.name!r} (CASEI, ACCENTI are)')
        if isinstance(node, ast.Arithmetic):
            parts = []
            for side in (node.lhs, node.rhs):
                col = self._column_of(side)
                if col is not None and col.kind not in ('integer', 'number'):
                    raise InvalidQuery(f'arithmetic on non-numeric property {col.name!r}')
                parts.append(self._value(side, None, params) if not isinstance(side, (int, float))
                             else self._number(side, params))
            return sql.SQL('({} {} {})').format(parts[0], sql.SQL(_ARITH[node.op]), parts[1])
        params.append(self._literal(node, None))
        return sql.Placeholder()

    def _number(self, value, params):
        params.append(value)
        return sql.Placeholder()

    def _text(self, node, params) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            col = self._attribute(node)
            if col.kind == 'array':
                raise InvalidQuery(f'{col.name!r} is an array: use A_CONTAINS, A_EQUALS, A_OVERLAPS '
                                   'or A_CONTAINEDBY (CQL2 JSON)')
            ident = sql.Identifier(col.name)
            return ident if col.kind == 'text' else sql.SQL('{}::text').format(ident)
        if isinstance(node, ast.Function):
            return self._expr(node, params)
        if not isinstance(node, str):
            raise InvalidQuery(f'text function applied to {node!r}, which is not text')
        if '\x00' in node:
            raise InvalidQuery('NUL characters are not allowed in filter values')
        params.append(node)
        return sql.SQL('%s::text')

    def _literal(self, value, col: Column | None) -> Any:
        if isinstance(value, ast.Node) or isinstance(value, (values.Geometry, values.Envelope)):
            raise InvalidQuery(f'expected a literal value, got {type(value).__name__}')
        if col is None:
            return value
        return coerce(value, col)

    def _like(self, node: ast.Like, params: list) -> sql.Composable:
        target = self._text(node.lhs, params)
        if isinstance(node.pattern, ast.Function):       # LIKE casei('abc%')
            pattern = self._expr(node.pattern, params)
        elif isinstance(node.pattern, str):
            if '\x00' in node.pattern:
                raise InvalidQuery('NUL characters are not allowed in filter values')
            params.append(node.pattern)
            pattern = sql.Placeholder()
        else:
            raise InvalidQuery('LIKE needs a text pattern')
        op = 'ILIKE' if node.nocase else 'LIKE'
        neg = 'NOT ' if node.not_ else ''
        return sql.SQL('({} ' + neg + op + ' {})').format(target, pattern)

    # -- time -------------------------------------------------------------
    def _temporal(self, node: ast.TemporalPredicate, params: list) -> sql.Composable:
        col = self._column_of(node.lhs)
        if col is None or col.kind not in ('date', 'datetime'):
            raise InvalidQuery(f'{node.op.value} needs a temporal property, '
                               f'got {_name(node.lhs)}')
        lhs = self._expr(node.lhs, params)
        rhs = node.rhs
        if isinstance(rhs, values.Interval):
            start, end = _instant(rhs.start, col), _instant(rhs.end, col)
        else:
            start = end = _instant(rhs, col)
        op = node.op
        T = ast.TemporalComparisonOp
        clauses = []
        if op == T.AFTER:
            if end is None and isinstance(rhs, values.Interval):
                return sql.SQL('FALSE')          # after an interval open to the future
            clauses.append(('>', end))
        elif op == T.BEFORE:
            if start is None and isinstance(rhs, values.Interval):
                return sql.SQL('FALSE')          # before an interval open to the past
            clauses.append(('<', start))
        elif op == T.TEQUALS:
            if start != end:
                raise InvalidQuery('T_EQUALS compares an instant property with an instant')
            clauses.append(('=', start))
        elif op == T.DURING:
            clauses += [('>', start), ('<', end)]
        elif op in (T.DISJOINT,):
            inner = sql.SQL(' AND ').join(self._bound(lhs, o, v, params) for o, v in
                                          (('>=', start), ('<=', end)) if v is not None)
            return sql.SQL('(NOT ({}))').format(inner or sql.SQL('TRUE'))
        elif op in (T.TOVERLAPS, T.BEFORE_OR_DURING, T.DURING_OR_AFTER):
            # pygeofilter parses T_INTERSECTS as TOVERLAPS: for an instant, both mean
            # "lies in the interval"
            if op == T.BEFORE_OR_DURING:
                clauses.append(('<=', end))
            elif op == T.DURING_OR_AFTER:
                clauses.append(('>=', start))
            else:
                clauses += [('>=', start), ('<=', end)]
        else:
            raise InvalidQuery(f'{op.value} is not defined for an instant property such as '
                               f'{col.name!r}')
        parts = [self._bound(lhs, o, v, params) for o, v in clauses if v is not None]
        return sql.SQL('({})').format(sql.SQL(' AND ').join(parts)) if parts else sql.SQL('TRUE')

    @staticmethod
    def _bound(lhs, op, value, params):
        params.append(value)
        return sql.SQL('{} {} %s').format(lhs, sql.SQL(op))

    # -- space ------------------------------------------------------------
    def _envelope(self, minx, miny, maxx, maxy, crs_uri, params: list) -> sql.Composable:
        """A box in ``crs_uri`` as a geometry in the storage CRS (split at the
        antimeridian, clipped to the CRS' domain, see crs.bbox_envelopes)."""
        try:
            box = [float(v) for v in (minx, miny, maxx, maxy)]
        except (TypeError, ValueError):
            raise InvalidQuery('a bbox in a filter needs 4 numbers') from None
        envs = crsmod.bbox_envelopes(box, crs_uri, self.table.srid)
        if not envs:
            params.append(self.table.srid)
            return sql.SQL("ST_GeomFromText('POLYGON EMPTY', %s)")
        parts = []
        for env in envs:
            params.extend([*env, self.table.srid])
            parts.append(sql.SQL('ST_MakeEnvelope(%s, %s, %s, %s, %s)'))
        if len(parts) == 1:
            return parts[0]
        return sql.SQL('ST_Collect(ARRAY[{}])').format(sql.SQL(', ').join(parts))

    def _geom_literal(self, value, params: list) -> sql.Composable:
        if isinstance(value, values.Envelope):
            if self.json_filter:
                box = (value.x1, value.x2, value.y1, value.y2)
            else:
                box = (value.x1, value.y1, value.x2, value.y2)
            return self._envelope(*box, self.filter_crs, params)
        if isinstance(value, ast.Function) and value.name.lower() == 'bbox':
            if len(value.arguments) not in (4, 6):
                raise InvalidQuery('BBOX() needs 4 or 6 numbers')
            a = value.arguments
            box = a if len(a) == 4 else (a[0], a[1], a[3], a[4])
            return self._envelope(*box, self.filter_crs, params)
        if isinstance(value, values.Geometry):
            geo = dict(value.geometry)
            crs_name = geo.pop('crs', {}).get('properties', {}).get('name', '')
            srid = _srid_from_urn(crs_name) or self.table.srid
            params.extend([json.dumps(geo), srid])
            expr = sql.SQL('ST_SetSRID(ST_GeomFromGeoJSON(%s), %s)')
            if srid != self.table.srid:
                params.append(self.table.srid)
                expr = sql.SQL('ST_Transform({}, %s)').format(expr)
            return expr
        raise InvalidQuery(f'expected a geometry literal, got {value!r}')

    def _geom_side(self, node, params) -> tuple[sql.Composable, bool]:
        if isinstance(node, ast.Attribute):
            if not self.table.geometry:
                raise InvalidQuery('this collection has no geometry: spatial predicates do not apply')
            if node.name not in ('geometry', self.table.geometry):
                raise InvalidQuery(f'{node.name!r} is not the geometry of this collection '
                                   f'(use "geometry")')
            return geometry_expression(self.table), True
        return self._geom_literal(node, params), False

    def _geoms(self, lhs, rhs, params):
        a, a_col = self._geom_side(lhs, params)
        b, b_col = self._geom_side(rhs, params)
        if not (a_col or b_col):
            raise InvalidQuery('a spatial predicate needs the geometry property on one side')
        return a, b

    def _spatial(self, func: str, lhs, rhs, params, use_index: bool) -> sql.Composable:
        self._geoms(lhs, rhs, [])      # both sides checked before any SQL is built
        index: sql.Composable | None = None
        both_columns = isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute)
        if use_index and not both_columns:
            # The raw column with && lets the GiST index serve even when the
            # predicate itself reads the repaired geometry of an invalid feature.
            literal_side = rhs if isinstance(lhs, ast.Attribute) else lhs
            lit = self._geom_literal(literal_side, params)
            index = sql.SQL('{} && {}').format(sql.Identifier(self.table.geometry), lit)
        a, b = self._geoms(lhs, rhs, params)
        pred = sql.SQL('{}({}, {})').format(sql.SQL(func), a, b)
        if index is None:
            return pred
        return sql.SQL('({} AND {})').format(index, pred)

    def _bbox(self, node: ast.BBox, params) -> sql.Composable:
        self._geom_side(node.lhs, [])
        crs_uri = node.crs or self.filter_crs
        env_params: list = []
        env = self._envelope(node.minx, node.miny, node.maxx, node.maxy, crs_uri, env_params)
        params.extend(env_params + env_params)
        return sql.SQL('({g} && {e} AND ST_Intersects({v}, {e}))').format(
            g=sql.Identifier(self.table.geometry), e=env, v=geometry_expression(self.table))

    def _distance(self, node: ast.SpatialDistancePredicate, params) -> sql.Composable:
        factor = _METRES.get(str(node.units).lower())
        if factor is None:
            raise InvalidQuery(f'unsupported distance unit {node.units!r} (use meters or km)')
        a, b = self._geoms(node.lhs, node.rhs, params)
        params.append(float(node.distance) * factor)
        func = 'ST_DWithin' if node.op == ast.SpatialDistanceOp.DWITHIN else 'NOT ST_DWithin'
        return sql.SQL('(' + func + '({}, {}, %s))').format(a, b)


def _name(node) -> str:
    return repr(node.name) if isinstance(node, ast.Attribute) else type(node).__name__


def _srid_from_urn(name: str) -> int | None:
    if not name:
        return None
    if name.endswith('CRS84') or name.endswith('CRS84h'):
        return 4326
    tail = name.replace('::', ':').rstrip('/').replace('/', ':').split(':')[-1]
    return int(tail) if tail.isdigit() else None


def _instant(value, col: Column):
    if value is None or value == '..':
        return None
    if isinstance(value, dt.timedelta):
        raise InvalidQuery('durations in intervals are not supported')
    return coerce(value, col)


def coerce(value, col: Column):
    """A filter literal as a value of the column's type, or a 400 naming both."""
    if isinstance(value, (list, tuple, dict)):
        raise InvalidQuery(f'{col.name!r} is compared with a list or object: give a single value')
    if isinstance(value, ast.Node):
        raise InvalidQuery(f'{col.name!r}: expected a value, not an expression')
    if isinstance(value, str) and '\x00' in value:
        raise InvalidQuery(f'value for {col.name!r}: NUL characters are not allowed')
    kind = col.kind
    try:
        if kind == 'text':
            if isinstance(value, (dt.date, dt.datetime, bool)) or value is None:
                raise ValueError
            return str(value)
        if kind == 'integer':
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    return value  # compared as numeric by PostgreSQL
                return int(value)
            return int(value)
        if kind == 'number':
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == 'boolean':
            if isinstance(value, bool):
                return value
            if str(value).lower() in ('true', 'false'):
                return str(value).lower() == 'true'
            raise ValueError
        if kind == 'date':
            if isinstance(value, dt.datetime):
                return value.date() if value.time() == dt.time(0) else value
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value))
        if kind == 'datetime':
            if isinstance(value, dt.datetime):
                return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
            if isinstance(value, dt.date):
                return dt.datetime.combine(value, dt.time(0), dt.timezone.utc)
            parsed = dt.datetime.fromisoformat(str(value).replace('Z', '+00:00'))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
        if kind == 'array':
            return str(value)
    except (TypeError, ValueError, OverflowError):
        pass
    raise InvalidQuery(f'value {value!r} does not fit property {col.name!r} '
                       f'of type {col.json_type}{"/" + col.format if col.format else ""}')
