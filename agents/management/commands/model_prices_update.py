"""Upgrade the shared model price table to the defaults shipped with this release."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.model_prices import DEFAULTS_PATH, prices_apply_defaults
from agents.models import ModelPrice


class Command(BaseCommand):
    help = (
        "Add the shipped default model prices and update the defaults nobody edited. "
        "Prices edited in admin and workspaces' own prices are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--file",
            type=Path,
            default=DEFAULTS_PATH,
            help="A price table in the format of agents/data/model_prices.json.",
        )

    def handle(self, *args, file: Path, **options):
        try:
            with transaction.atomic():
                result = prices_apply_defaults(ModelPrice, file)
        except FileNotFoundError:
            raise CommandError(f"--file: {file} does not exist.") from None
        except (ValueError, KeyError, ArithmeticError) as exc:
            raise CommandError(f"--file: {file} is not a price table: {exc!r}.") from None
        self.stdout.write(
            f"{result.created} added, {result.updated} updated, {result.unchanged} unchanged, "
            f"{result.kept} edited here and kept."
        )
