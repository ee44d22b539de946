import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()


def application(environ, start_response):
    """Django's WSGI handler reads no body without a Content-Length, and OpenTelemetry
    JS's OTLP exporter always sends its bodies chunked. A server that has already
    de-chunked the input says so (wsgi.input_terminated, as gunicorn does): read it to
    its end, at most one byte past the request limit so a large body still answers 413."""
    if (
        environ.get("wsgi.input_terminated")
        and not environ.get("CONTENT_LENGTH")
        and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        from io import BytesIO

        from django.conf import settings

        body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    return django_application(environ, start_response)
