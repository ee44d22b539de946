from django.conf import settings
from django.core.management.base import BaseCommand

from executions.demo.seed import DEMO_KEY_NAME, SLUG, seed_demo


class Command(BaseCommand):
    help = (
        "Build the demo workspace (slug 'demo') with users demo/demo, reviewer/reviewer and "
        "operator/operator. Deterministic and idempotent: a second run adds nothing."
    )

    def handle(self, *args, **options):
        result = seed_demo()
        if result.created_anything:
            made = ", ".join(f"{what} {n:,}" for what, n in result.created.items() if n)
            self.stdout.write(f"Seeded the '{SLUG}' workspace. Created: {made}.")
        if result.api_key:
            # Shown once: only its hash is stored.
            self.stdout.write(f"API key '{DEMO_KEY_NAME}' (shown once): {result.api_key}")
        url = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
        self.stdout.write(self.style.SUCCESS(f"Log in at {url}/ as demo / demo"))
