"""What a request gets when the server fails: Django's 500 page, except when the
database cannot be reached (or its connection pool stays empty), which answers 503
with Retry-After, in the caller's own format: JSON on the API, a google.rpc.Status on
/v1/traces (OTLP exporters retry 429, 502, 503 and 504 only, honouring Retry-After, so
a 500 there loses their data), a short page elsewhere.

Installed as `handler500` in config/urls.py, so it sees errors raised anywhere, also
in middleware (the session and login checks read the database before any view).
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
MESSAGE = "The database cannot be reached right now; nothing was stored. Retry shortly."

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Runboard is unavailable</title></head>
<body><h1>Runboard is unavailable for a moment</h1>
<p>Its database cannot be reached. Reload the page in a few seconds.</p></body></html>
"""


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether an error means "the database is away", anywhere in its chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def unavailable_response(request) -> HttpResponse:
    path = request.path_info
    if path.startswith("/v1/traces"):
        from executions.ingest.otlp import unavailable

        response = unavailable(request, MESSAGE)
    elif path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request, *args, **kwargs):
    exc = sys.exc_info()[1]
    if database_unavailable(exc):
        logger.warning("Database unavailable, answered 503: %s", exc)
        return unavailable_response(request)
    return defaults.server_error(request, *args, **kwargs)
