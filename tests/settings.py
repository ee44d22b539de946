"""Settings for the test suite: production settings with test-only secrets filled in.

DATABASE_URL still picks the database, so the same suite runs on SQLite and PostgreSQL.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_COOKIES", "0")

from config.settings import *  # noqa: F403

# Tests render {% static %} without running collectstatic first.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = BASE_DIR / ".test-media"  # noqa: F405
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file rather than Django's shared-cache in-memory database: live servers, the demo
    # runtime and worker threads then wait on the busy timeout like production SQLite
    # does, instead of failing at once with "database table is locked".
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"runboard-test-{os.getpid()}.sqlite3")
    }
