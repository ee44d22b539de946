"""The real instrumentation stacks the otel_stacks tests run, each in its own virtualenv
(their pins conflict: OpenLLMetry and OpenInference want different semantic-convention
packages), and where each venv lives: ~/.cache/runboard-otel-stacks/<name>-<hash of pins>.

Changing a stack's pins changes its hash, so the next build makes a new venv and an
old one is never half-upgraded. build.py builds them; conftest.py finds them.

The node stacks (NODE_STACKS) are a package.json and package-lock.json under node/,
installed by `npm ci` into ~/.cache/runboard-otel-stacks/<name>-<hash of the lock>;
their scenarios are CommonJS, so NODE_PATH finds the cached node_modules.
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path

CACHE = Path(os.environ.get("RUNBOARD_OTEL_STACKS", Path.home() / ".cache/runboard-otel-stacks"))

# What every stack exports with: the OpenTelemetry SDK's own OTLP/HTTP exporter.
OTEL = ["opentelemetry-sdk==1.45.2", "opentelemetry-exporter-otlp-proto-http==1.45.2"]

# A pin with this prefix is installed after the others, without its dependencies.
NO_DEPS = "--no-deps "

STACKS: dict[str, list[str]] = {
    "openinference-openai": [
        "openai==3.63.0",
        "openinference-instrumentation-openai==0.1.66",
        *OTEL,
    ],
    "openai-v2": [
        "openai==3.63.0",
        "opentelemetry-instrumentation-openai-v2==2.4b0",
        # 2.4b0 imports util.genai.instruments, which 1.2b0 moved; openai 3 brings httpx2.
        "opentelemetry-util-genai==1.1b0",
        "httpx==0.29.0",
        *OTEL,
    ],
    # traceloop-sdk 0.62.4 cannot be resolved from PyPI as published (it wants
    # opentelemetry-instrumentation-logging, whose only release pins an older
    # opentelemetry-instrumentation): its own dependencies are pinned here and it and
    # the two contrib packages it imports are installed without theirs.
    "openllmetry": [
        "openai==3.63.0",
        "opentelemetry-instrumentation-openai==0.62.4",
        *OTEL,
        "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
        "opentelemetry-semantic-conventions-ai==0.5.1",
        "aiohttp==3.14.5",
        "colorama==0.4.6",
        "cuid==0.4",
        "Deprecated==1.3.1",
        "Jinja2==3.1.6",
        "tenacity==9.2.1",
        "httpx==0.29.0",
        f"{NO_DEPS}traceloop-sdk==0.62.4",
        f"{NO_DEPS}opentelemetry-instrumentation-logging==0.59b0",
        f"{NO_DEPS}opentelemetry-instrumentation-threading==0.66b1",
    ],
    "pydantic-ai": [
        "pydantic-ai-slim[openai]==2.78.0",
        *OTEL,
    ],
    "langchain-openinference": [
        "langchain==1.5.2",
        "langchain-openai==1.8.1",
        "langgraph==1.2.24",
        "openinference-instrumentation-langchain==0.1.80",
        *OTEL,
    ],
    "anthropic-openinference": [
        "anthropic==2.17.0",
        "openinference-instrumentation-anthropic==3.1.0",
        *OTEL,
    ],
    "openai-agents": [
        "openai-agents==0.24.0",
        "openinference-instrumentation-openai-agents==2.6.0",
        *OTEL,
    ],
    "llama-index": [
        "llama-index-core==0.14.25",
        "llama-index-llms-openai==0.8.3",
        "openinference-instrumentation-llama-index==4.6.1",
        *OTEL,
    ],
    "smolagents": [
        "smolagents[openai]==1.26.0",
        "openinference-instrumentation-smolagents==0.1.43",
        *OTEL,
    ],
    # Strands exports with the OpenTelemetry SDK itself and pins its threading
    # instrumentation to 0.66b1, which wants the 1.45.1 SDK; openai 3 is not allowed yet.
    "strands": [
        "strands-agents[openai]==1.62.0",
        "openai==2.54.0",
        "opentelemetry-sdk==1.45.1",
        "opentelemetry-exporter-otlp-proto-http==1.45.1",
    ],
}


# name -> the folder holding its package.json and package-lock.json (exact pins).
NODE_STACKS: dict[str, Path] = {"vercel-ai": Path(__file__).resolve().parent / "node"}
ALL_STACKS = [*STACKS, *NODE_STACKS]


def pins_hash(pins: list[str]) -> str:
    text = "\n".join([f"python{sys.version_info[0]}.{sys.version_info[1]}", *sorted(pins)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def node() -> str | None:
    return shutil.which("node")


def lock_hash(folder: Path) -> str:
    text = (folder / "package.json").read_text() + (folder / "package-lock.json").read_text()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def venv_dir(name: str) -> Path:
    """Where a stack is installed: a venv, or for a node stack its node_modules' folder."""
    if name in NODE_STACKS:
        return CACHE / f"{name}-{lock_hash(NODE_STACKS[name])}"
    return CACHE / f"{name}-{pins_hash(STACKS[name])}"


def python(name: str) -> Path:
    return venv_dir(name) / "bin" / "python"


def command(name: str) -> list[str]:
    """What runs a scenario of this stack (its script's path follows)."""
    if name in NODE_STACKS:
        return [node() or "node"]
    return [str(python(name))]


def env(name: str) -> dict[str, str]:
    """What a stack's scenario needs in its environment beyond the usual."""
    if name in NODE_STACKS:
        return {"NODE_PATH": str(venv_dir(name) / "node_modules")}
    return {}


def is_built(name: str) -> bool:
    # The marker is written last: a build that died part way is not taken for built.
    return (venv_dir(name) / ".built").exists()
