"""Real pieces for the scale tests and benches: private PostgreSQL clusters (a primary
and a streaming standby made with pg_basebackup), Runboard web processes (uvicorn
subprocesses with their own environment) and HAProxy in front of several of them.

Everything runs on loopback, on free ports, with data under /tmp, and stops itself.
PostgreSQL refuses to run as root, so as root the clusters run as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/N/bin)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, seconds: float = 30, process=None, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process exited ({process.returncode}) before listening:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


class Cluster:
    """One PostgreSQL cluster of our own: initdb (or a base backup), on its own port."""

    def __init__(self, datadir: Path, port: int | None = None):
        self.bindir = pg_bindir()
        self.datadir = datadir
        self.port = port or free_port()
        self.log = datadir.parent / f"{datadir.name}.log"

    def _run(self, *args: str) -> None:
        subprocess.run(_as_postgres(list(args)), check=True, capture_output=True, text=True)

    def init(self) -> Cluster:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        # Settings for a throwaway test cluster: durability off, few connections,
        # streaming replication on.
        with open(self.datadir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 50\nshared_buffers = 32MB\nwal_level = replica\n"
                "max_wal_senders = 4\nhot_standby = on\nwal_keep_size = 64MB\n"
            )
        return self

    def start(self) -> Cluster:
        # The socket beside the data directory: pg_basebackup would warn about it inside.
        opts = f"-p {self.port} -k {self.datadir.parent} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_postgres(
                [
                    *(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log)),
                    *("-o", opts, "-w", "-t", "60", "start"),
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        return self

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]
            ),
            capture_output=True,
        )

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def sql(self, query: str, *params, dbname: str = "postgres"):
        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as db:
            cursor = db.execute(query, params or None)
            return cursor.fetchall() if cursor.description else None


class ReplicatedPair:
    """A primary and a hot standby streaming from it (pg_basebackup -R)."""

    def __init__(self, dbname: str = "runboard"):
        self.workdir = _workdir("rb_scale_")
        self.dbname = dbname
        self.primary = Cluster(self.workdir / "primary")
        self.standby = Cluster(self.workdir / "standby")

    def start(self) -> ReplicatedPair:
        self.primary.init().start()
        self.primary.sql(f"CREATE DATABASE {self.dbname}")
        subprocess.run(
            _as_postgres(
                [
                    str(self.primary.bindir / "pg_basebackup"),
                    *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
                    *("-D", str(self.standby.datadir), "-R", "-X", "stream", "--no-sync"),
                    # At once, not spread over checkpoint_timeout (a minute and more).
                    "--checkpoint=fast",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        self.standby.start()
        return self

    def stop(self) -> None:
        self.standby.stop()
        self.primary.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def wait_replayed(self, seconds: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            replayed = self.standby.sql(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", str(target)
            )[0][0]
            if replayed:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the standby did not replay up to {target} in {seconds} s")

    def pause_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_resume()")


def app_env(database_url: str, **extra: str) -> dict:
    """The environment of a Runboard process on `database_url` (production settings,
    DEBUG off, test secrets)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DEBUG="0",
        SECRET_KEY="scale-tests-not-a-secret",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


SETUP = """
from agents.models import ApiKey, Membership, Role, Workspace
from django.contrib.auth import get_user_model
ws = Workspace.objects.create(name="Scale", slug="scale")
user = get_user_model().objects.create_user("scale", password="scale-password-1")
Membership.objects.create(user=user, workspace=ws, role=Role.ADMIN)
raw, prefix, hashed = ApiKey.generate()
ApiKey.objects.create(workspace=ws, name="scale tests", prefix=prefix, hashed_key=hashed)
print(raw)
"""
USERNAME, PASSWORD = "scale", "scale-password-1"


def prepare(env: dict) -> str:
    """Migrate the database `env` points at, add a workspace, its admin `scale` and an
    API key; returns the key."""
    manage(env, "migrate", "--no-input", "-v", "0")
    return manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]


class WebProcess:
    """One Runboard web process: uvicorn serving config.asgi on its own port."""

    def __init__(self, env: dict, port: int | None = None, workers: int = 1):
        self.env, self.port, self.workers = env, port or free_port(), workers
        self.log = Path(tempfile.mkstemp(prefix="rb_web_", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebProcess:
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "config.asgi:application"),
                    *("--host", "127.0.0.1", "--port", str(self.port)),
                    *("--workers", str(self.workers), "--log-level", "warning", "--no-access-log"),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, process=self.process, log=self.log)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


class HAProxy:
    """HAProxy (Debian's package) balancing round-robin over web processes, no
    stickiness: each request may land on any of them."""

    BINARY = shutil.which("haproxy") or "/usr/sbin/haproxy"

    def __init__(self, backends: list[int], port: int | None = None):
        self.backends, self.port = backends, port or free_port()
        self.config = Path(tempfile.mkstemp(prefix="rb_haproxy_", suffix=".cfg")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HAProxy:
        servers = "\n".join(
            f"    server web{i} 127.0.0.1:{port}" for i, port in enumerate(self.backends)
        )
        self.config.write_text(
            "global\n    maxconn 4096\n"
            "defaults\n    mode http\n    timeout connect 5s\n    timeout client 120s\n"
            "    timeout server 120s\n    option http-server-close\n"
            f"frontend web\n    bind 127.0.0.1:{self.port}\n    default_backend runboard\n"
            "backend runboard\n    balance roundrobin\n"
            "    http-response set-header X-Served-By %s\n"
            f"{servers}\n"
        )
        self.process = subprocess.Popen(
            [self.BINARY, "-db", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.config.unlink(missing_ok=True)


class Browser:
    """A requests session that logs in the way a person does (login form, CSRF)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        return self.session.get(self.base_url + path, **kwargs)

    def post(self, path: str, data=None, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        headers = {
            "X-CSRFToken": self.session.cookies.get("csrftoken", ""),
            **kwargs.pop("headers", {}),
        }
        headers.setdefault("Referer", self.base_url + path)
        return self.session.post(self.base_url + path, data=data, headers=headers, **kwargs)

    def login(self, username: str = USERNAME, password: str = PASSWORD):
        self.get("/accounts/login/")
        response = self.post(
            "/accounts/login/",
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.session.cookies.get("csrftoken", ""),
            },
        )
        if response.status_code != 302:
            raise RuntimeError(f"login answered {response.status_code}: {response.text[:500]}")
        return response


def create_execution(base_url: str, key: str, agent: str = "scale-agent:v1") -> str:
    """A run recorded through the API (a write on the primary); its id."""
    response = requests.post(
        f"{base_url}/api/v1/executions",
        json={"agent": agent, "input": {"n": 1}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"execute answered {response.status_code}: {response.text[:500]}")
    return response.json()["execution_id"]
