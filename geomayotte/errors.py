"""Domain errors, and the one place that maps them to HTTP (through pygeoapi's provider errors).

Code below the provider raises these; the provider turns them into pygeoapi
exceptions, which pygeoapi renders as an OGC exception document with the status.
"""
from __future__ import annotations

from http import HTTPStatus

from pygeoapi.provider.base import (ProviderGenericError, ProviderInvalidQueryError,
                                    ProviderItemNotFoundError, ProviderQueryError)


class GeoMayotteError(Exception):
    """Base of every error the platform raises on purpose."""


class InvalidQuery(GeoMayotteError):
    """The client asked something malformed or impossible: 400."""


class NotFound(GeoMayotteError):
    """No such item: 404."""


class UnavailableError(GeoMayotteError):
    """The database could not be reached: 503."""


class InvalidParameter(ProviderInvalidQueryError):
    """400 with the OGC exception code pygeoapi itself uses for bad parameters."""
    ogc_exception_code = 'InvalidParameterValue'


class ServiceUnavailable(ProviderGenericError):
    ogc_exception_code = 'ServiceUnavailable'
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_msg = 'database unavailable, try again later'


def to_provider_error(err: Exception) -> ProviderGenericError:
    """The pygeoapi exception (status + OGC code) for one of our errors."""
    if isinstance(err, InvalidQuery):
        return InvalidParameter(user_msg=str(err))
    if isinstance(err, NotFound):
        return ProviderItemNotFoundError(user_msg=str(err))
    if isinstance(err, UnavailableError):
        return ServiceUnavailable(user_msg=str(err))
    return ProviderQueryError(user_msg='query error (check logs)')


__all__ = ['GeoMayotteError', 'InvalidQuery', 'NotFound', 'UnavailableError', 'to_provider_error']
