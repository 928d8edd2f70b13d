"""The service's errors: each carries the stable `detail` phrase the API returns and a message."""
from ..core.errors import CentaurError


class InputError(CentaurError):
    """A request whose input cannot be used (answered 422): `detail` is the stable phrase."""

    def __init__(self, detail, message):
        super().__init__(message)
        self.detail, self.message = detail, message


class ServiceError(Exception):
    """Any other refusal, with its HTTP status and headers (413, 415, 401, 404, 503, 504, ...)."""

    def __init__(self, status, detail, message, headers=None):
        super().__init__(message)
        self.status, self.detail, self.message, self.headers = status, detail, message, headers
