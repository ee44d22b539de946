"""Build the otel_stacks virtualenvs that are missing (cached; see stacks.py).

    python tests/otel_stacks/build.py [name ...]

Run by .ci/run before the tests. A built stack costs nothing; a cold build of all of
them takes minutes (pip from PyPI), printed per stack.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stacks import ALL_STACKS, CACHE, NO_DEPS, NODE_STACKS, STACKS, is_built, node, venv_dir


def build(name: str) -> float:
    target = venv_dir(name)
    started = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if name in NODE_STACKS:
        return build_node(name, target, started)
    # The base interpreter, not this venv's: a stack must not see the project's packages.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(target)], check=True)
    pip = [str(target / "bin/pip"), "install", "-qq", "--disable-pip-version-check"]
    pins = [p for p in STACKS[name] if not p.startswith(NO_DEPS)]
    bare = [p.removeprefix(NO_DEPS) for p in STACKS[name] if p.startswith(NO_DEPS)]
    subprocess.run([*pip, *pins], check=True)
    if bare:
        subprocess.run([*pip, "--no-deps", *bare], check=True)
    (target / ".built").write_text("\n".join(STACKS[name]) + "\n")
    return time.monotonic() - started


def build_node(name: str, target: Path, started: float) -> float:
    if not node() or not shutil.which("npm"):
        raise subprocess.CalledProcessError(127, "node and npm (apt-get install nodejs npm)")
    target.mkdir()
    for file in ("package.json", "package-lock.json"):
        shutil.copy(NODE_STACKS[name] / file, target / file)
    # npm ci installs exactly the lock's versions, and no install scripts run.
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        check=True,
    )
    (target / ".built").write_text((NODE_STACKS[name] / "package-lock.json").read_text())
    return time.monotonic() - started


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in ALL_STACKS]
    if unknown:
        print(f"unknown stacks: {', '.join(unknown)} (known: {', '.join(ALL_STACKS)})")
        return 2
    total = time.monotonic()
    failed = []
    for name in names or ALL_STACKS:
        if is_built(name):
            print(f"{name}: cached at {venv_dir(name)}")
            continue
        print(f"{name}: building {venv_dir(name)}", flush=True)
        for stale in CACHE.glob(f"{name}-*"):
            # An older build of this stack (other pins): never used again.
            if stale != venv_dir(name) and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        try:
            print(f"{name}: built in {build(name):.0f} s", flush=True)
        except subprocess.CalledProcessError as exc:
            print(f"{name}: FAILED ({exc})", flush=True)
            failed.append(name)
    print(f"otel stacks done in {time.monotonic() - total:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
