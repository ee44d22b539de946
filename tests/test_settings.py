"""Start-up refuses bad configuration with a message that names the setting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


OURS = {
    "DATABASE_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "TIME_ZONE",
    "DJANGO_SETTINGS_MODULE",
    "SECURE_SSL_REDIRECT",
    # Set while the browser tests' Playwright session is open; not ours to pass on.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "SECURE_COOKIES",
    "DATABASE_REPLICA_URL",
}


def start(env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in OURS}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


PROD = {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "runboard.example.com"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_HOSTS": "a.example.com"}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "x" * 60}, "ALLOWED_HOSTS is required"),
        ({**PROD, "DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must be postgres"),
        ({**PROD, "DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({**PROD, "DATABASE_URL": "postgres://127.0.0.1:5432"}, "DATABASE_URL names no database"),
        ({**PROD, "DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({**PROD, "TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE 'Mars/Olympus'"),
        ({**PROD, "SECRET_KEY": "", "SECRET_KEY_FILE": "/nonexistent"}, "SECRET_KEY_FILE"),
        (
            {**PROD, "DATABASE_REPLICA_URL": "postgres://h/db"},
            "DATABASE_REPLICA_URL needs DATABASE_URL on PostgreSQL",
        ),
        (
            {
                **PROD,
                "DATABASE_URL": "postgres://h/db",
                "DATABASE_REPLICA_URL": "postgres://r/db,mysql://u@h/db",
            },
            "DATABASE_REPLICA_URL item 2 must be postgres://",
        ),
        ({**PROD, "REPLICA_MAX_LAG_SECONDS": "soon"}, "REPLICA_MAX_LAG_SECONDS must be a number"),
    ],
)
def test_bad_setting_stops_startup_naming_it(env, message):
    result = start(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_debug_runs_with_no_configuration():
    result = start({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr


def test_deploy_check_is_clean_with_debug_off():
    env = {**PROD, "SECRET_KEY": "k3y-" + "q8Zr1#x" * 10}
    result = start(env, "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
