"""The demo workspace that `manage.py seed_demo` builds: see seed.py for the entry point."""

from .seed import DEMO_KEY_NAME, NAME, SLUG, USERS, SeedResult, seed_demo

__all__ = ["DEMO_KEY_NAME", "NAME", "SLUG", "USERS", "SeedResult", "seed_demo"]
