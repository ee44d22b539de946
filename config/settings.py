"""Runboard settings, read from the environment.

One flat file, as in healthchecks: every knob is an environment variable with a
safe production default. DEBUG is off unless asked for, and with DEBUG off the
settings that must not be guessed (SECRET_KEY, ALLOWED_HOSTS) are required.
"""

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}.")


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from None


def envfloat(name: str, default: str) -> float:
    value = os.environ.get(name, default)
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 <= number < float("inf"):
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {value!r}.")
    return number


def envsecret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker and k8s secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points to {path!r}: {exc.strerror}.") from None
    return os.environ.get(name, default)


DEBUG = envbool("DEBUG", "0")

SECRET_KEY = envsecret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: set SECRET_KEY (or SECRET_KEY_FILE) "
            "to a long random string."
        )
    SECRET_KEY = "django-insecure-runboard-development-only"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is required when DEBUG is off: a comma-separated list of host names."
        )
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "django_tables2",
    "django_htmx",
    "django_tasks_db",
    "agents",
    "executions",
    "feedback",
    "feedback.queues",
    "executions.tags",
    "executions.automation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every URL needs a login unless its view says otherwise (the API and OTLP
    # doors use API keys instead, and mark themselves with login_not_required).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "agents.middleware.TimezoneMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "agents.context_processors.workspace",
            ],
        },
    },
]


def database_from_env() -> dict:
    """SQLite by default (nothing to install); PostgreSQL when DATABASE_URL is set."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        path = os.environ.get("SQLITE_PATH", str(BASE_DIR / "runboard.sqlite3"))
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # WAL lets the dashboard read while ingestion writes; IMMEDIATE avoids
            # "database is locked" when two writers upgrade their locks at once.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=envint("DB_CONN_MAX_AGE", "60"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL ({exc}).") from None
    engine = config.get("ENGINE", "")
    if engine not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be postgres://... or sqlite://..., got engine {engine!r}."
        )
    if engine == "django.db.backends.postgresql" and not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://host:5432/NAME).")
    config["CONN_HEALTH_CHECKS"] = True
    if engine == "django.db.backends.postgresql" and envbool("DB_POOL", "1"):
        # Under ASGI every request and every stream poll runs in a thread of its own, and
        # persistent connections are per thread: they pile up until PostgreSQL refuses
        # everyone. A pool per process bounds them (docs/scaling.md, "Connection
        # budget"); Django requires CONN_MAX_AGE 0 with it.
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": envint("DB_POOL_MIN_SIZE", "1"),
            "max_size": envint("DB_POOL_MAX_SIZE", "8"),
            # A request waits this long for a free connection, then answers 503.
            "timeout": envint("DB_POOL_TIMEOUT", "3"),
            # Connections idle this long (beyond min_size) are closed.
            "max_idle": envint("DB_POOL_MAX_IDLE", "60"),
        }
    return config


DATABASES = {"default": database_from_env()}


def replicas_from_env() -> dict:
    """DATABASE_REPLICA_URL: one or more streaming replicas (comma-separated) that may
    answer the dashboard's reads (config/replicas.py says which)."""
    urls = [u.strip() for u in os.environ.get("DATABASE_REPLICA_URL", "").split(",") if u.strip()]
    if urls and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL on PostgreSQL.")
    replicas = {}
    for number, url in enumerate(urls, start=1):
        try:
            config = dj_database_url.parse(url, conn_max_age=envint("DB_CONN_MAX_AGE", "60"))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URL item {number} is not a database URL ({exc})."
            ) from None
        if config.get("ENGINE") != "django.db.backends.postgresql" or not config.get("NAME"):
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URL item {number} must be postgres://host:port/NAME."
            )
        config["CONN_HEALTH_CHECKS"] = True
        # Connections to a replica are bounded like the primary's: its own pool per process.
        config["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
        if "pool" in DATABASES["default"].get("OPTIONS", {}):
            pool = dict(DATABASES["default"]["OPTIONS"]["pool"])
            config.setdefault("OPTIONS", {})["pool"] = pool
        # Tests read the replica as the primary itself: no second test database.
        config["TEST"] = {"MIRROR": "default"}
        replicas[f"replica{number}" if len(urls) > 1 else "replica"] = config
    return replicas


DATABASES.update(replicas_from_env())
REPLICA_PIN_SECONDS = envint("REPLICA_PIN_SECONDS", "10")
REPLICA_CHECK_SECONDS = envfloat("REPLICA_CHECK_SECONDS", "2")
REPLICA_MAX_LAG_SECONDS = envfloat("REPLICA_MAX_LAG_SECONDS", "5")
if len(DATABASES) > 1:
    DATABASE_ROUTERS = ["config.replicas.ReplicaRouter"]
    # Before anything that reads (sessions, auth): it decides where reads go.
    MIDDLEWARE.insert(1, "config.replicas.ReplicaMiddleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/executions/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE {TIME_ZONE!r} is not an IANA time zone.") from None
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Open server-sent event streams, per person (the live run page) and per API key, in
# each web process; one more answers 429 (docs/scaling.md, "Connection budget").
MAX_STREAMS_PER_USER = envint("MAX_STREAMS_PER_USER", "10")
MAX_STREAMS_PER_KEY = envint("MAX_STREAMS_PER_KEY", "20")
# On PostgreSQL under ASGI, live streams sleep until a NOTIFY says their run changed
# (executions/notify.py); 0 makes them poll every 0.5 s as on SQLite.
RUNBOARD_NOTIFY = envbool("RUNBOARD_NOTIFY", "1")

# Webhooks go only to public addresses (executions/control/outbound.py). Hosts or
# networks listed here may be reached anyway: "127.0.0.1,10.0.0.0/8,runtime.internal".
# Empty in production unless set; `make run` allows the demo runtime on loopback.
WEBHOOK_ALLOWED_TARGETS = [
    t.strip() for t in os.environ.get("WEBHOOK_ALLOWED_TARGETS", "").split(",") if t.strip()
]

# Email, for alert notifications, through Django 6.1's MAILERS (EMAIL_BACKEND and the
# other EMAIL_* settings are deprecated). SMTP unless EMAIL_BACKEND names another
# backend, e.g. django.core.mail.backends.console.EmailBackend for a demo.
EMAIL_BACKEND_PATH = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
MAILERS = {"default": {"BACKEND": EMAIL_BACKEND_PATH}}
if EMAIL_BACKEND_PATH.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": envint("EMAIL_PORT", "25"),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": envsecret("EMAIL_HOST_PASSWORD"),
        "use_tls": envbool("EMAIL_USE_TLS", "0"),
        "timeout": envint("EMAIL_TIMEOUT", "10"),
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "runboard@localhost")

# Request limits: a body over DATA_UPLOAD_MAX_MEMORY_SIZE answers 413 with a message.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("MAX_REQUEST_BYTES", str(20 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# A reviewer's JSON form posts one field per leaf of an output: big outputs have thousands.
DATA_UPLOAD_MAX_NUMBER_FIELDS = envint("MAX_FORM_FIELDS", "20000")
RUNBOARD_MAX_JSON_DEPTH = envint("MAX_JSON_DEPTH", "64")

# Content-Security-Policy with nonces: no inline script or style without one.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "media-src": [CSP.SELF, "blob:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the <body hx-headers>, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "1")
    SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "1")
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "1")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DJANGO_TABLES2_TEMPLATE = "django_tables2/table.html"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
