"""Run a real instrumentation stack's scenario against a live test server.

Each stack lives in its own cached venv (stacks.py, built by build.py). A test whose
stack is not built here is skipped with the reason; in CI (CI=true) it is an error,
since .ci/run builds them all first.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ApiKeyFactory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stacks import is_built, python, venv_dir

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@pytest.fixture
def key(workspace):
    return ApiKeyFactory.create_with_raw(workspace=workspace)[1]


@pytest.fixture
def run_stack(live_server, key):
    """run_stack(stack, script, case) runs one scenario and returns what it printed."""

    def run(stack: str, script: str, case: str) -> str:
        if not is_built(stack):
            message = (
                f"the {stack} stack is not built ({venv_dir(stack)}): "
                "python tests/otel_stacks/build.py"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
        env["PYTHONPATH"] = str(SCENARIOS)
        done = subprocess.run(
            [str(python(stack)), str(SCENARIOS / script), case, live_server.url, key],
            cwd=SCENARIOS,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return done.stdout

    return run
