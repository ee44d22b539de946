from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

COOKIE = "tz"


class TimezoneMiddleware:
    """Show times in the browser's own time zone.

    static/js/app.js writes the IANA name from Intl.DateTimeFormat into a cookie,
    URL-encoded (Europe%2FBerlin: a cookie value may not hold every character), so
    it is decoded here; an unknown or missing value falls back to settings.TIME_ZONE.
    The page says which zone it shows (base.html).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = unquote(request.COOKIES.get(COOKIE, "")).strip()
        try:
            timezone.activate(ZoneInfo(name)) if name else timezone.deactivate()
        except (ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)
