"""Settings for the scripts in bench/: the production settings, so DEBUG is off and no
query log grows while timing, with bench-only secrets filled in and static files
served without collectstatic's manifest. DATABASE_URL still picks the database."""

import os

os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_COOKIES", "0")

from config.settings import *  # noqa: F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Sessions in a signed cookie: logging a bench client in writes nothing to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
