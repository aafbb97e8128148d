"""Source values -> typed Python values, for the quirks the real files carry."""
from __future__ import annotations

import datetime as dt
import math

_DATE_FORMATS = ('%Y-%m-%d', '%d/%m/%Y', '%Y-%m-%dT%H:%M:%S', '%Y/%m/%d')
_TS_FORMATS = ('%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S', '%Y-%m-%dT%H:%M:%S%z',
               '%Y-%m-%d %H:%M:%S%z', '%d/%m/%Y %H:%M:%S', '%Y-%m-%d')


class ValueProblem(ValueError):
    pass


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == '')


def convert(value, type_: str):
    """Convert one source value to the column type; ``None`` stays ``None``."""
    if _blank(value):
        return None
    try:
        if type_ == 'text':
            return str(value)
        if type_ in ('integer', 'bigint'):
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueProblem(f'{value!r} is not a whole number')
                return int(value)
            return int(str(value).strip())
        if type_ == 'double':
            out = float(value)
            if math.isnan(out) or math.isinf(out):
                return None
            return out
        if type_ == 'date':
            if isinstance(value, (dt.date, dt.datetime)):
                return value if not isinstance(value, dt.datetime) else value.date()
            return _parse(str(value).strip(), _DATE_FORMATS).date()
        if type_ == 'timestamptz':
            if isinstance(value, dt.datetime):
                ts = value
            else:
                ts = _parse(str(value).strip(), _TS_FORMATS)
            # Sources without a zone designator are UTC (EMSC catalogue).
            return ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
        if type_ == 'epoch':
            return dt.datetime.fromtimestamp(int(str(value).strip()), tz=dt.timezone.utc)
        if type_ == 'text[]':
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            return str(value).split()
    except ValueProblem:
        raise
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueProblem(f'{value!r} is not a valid {type_}: {err}') from None
    raise ValueProblem(f'unknown type {type_}')


def _parse(text: str, formats) -> dt.datetime:
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueProblem(f'{text!r} matches none of the date formats {formats}')
