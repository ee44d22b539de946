import hashlib
import json
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from .validation import validate_webhook_url


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Retention (executions/retention.py): ended runs older than this many days are
    # deleted daily; empty keeps them forever. An agent's own retention_days wins.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    # Runs with corrections, notes or a pin are kept past retention unless unticked.
    retention_keep_marked = models.BooleanField(default=True)
    # When the scheduler next applies retention here (claimed by compare-and-set).
    retention_next_at = models.DateTimeField(null=True, blank=True, editable=False)
    # How many alert rules fire now (kept by executions/alerts/evaluate.py), so the nav
    # badge costs no query on every page.
    alerts_firing = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="membership_unique_user")
        ]
        ordering = ["workspace__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    # Which roles may do what lives here, next to the roles themselves.
    @property
    def can_operate(self) -> bool:
        return self.role in {Role.OPERATOR, Role.ADMIN}

    @property
    def can_review(self) -> bool:
        return self.role in {Role.REVIEWER, Role.ADMIN}


class Agent(models.Model):
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Overrides the workspace's retention_days for this agent's runs when set.
    retention_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="agent_unique_name"),
            models.UniqueConstraint(fields=["workspace", "slug"], name="agent_unique_slug"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:200] or "agent"
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("agents:detail", args=[self.slug])


class AgentVersion(models.Model):
    agent = models.ForeignKey(Agent, models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    input_schema = models.JSONField(null=True, blank=True, help_text="JSON Schema of the input")
    output_schema = models.JSONField(null=True, blank=True, help_text="JSON Schema of the output")
    config = models.JSONField(default=dict, blank=True, help_text="Prompt, model and settings")
    webhook_url = models.URLField(max_length=500, blank=True, validators=[validate_webhook_url])
    webhook_secret = models.CharField(max_length=200, blank=True)
    time_limit_seconds = models.PositiveIntegerField(default=600)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="agentversion_unique")
        ]
        ordering = ["agent__name", "-created_at"]

    def __str__(self) -> str:
        return self.full_name

    def clean(self):
        # A budget in the config (executions/budgets) is checked when it is saved, so a
        # typo does not silently leave every run of the version without its limits.
        from executions.budgets import BudgetInvalid, parse

        if isinstance(self.config, dict) and "budget" in self.config:
            try:
                parse(self.config["budget"], root="budget")
            except BudgetInvalid as exc:
                raise ValidationError({"config": f"{exc.field}: {exc.message}"}) from None

    @property
    def full_name(self) -> str:
        return f"{self.agent.name}:{self.version}"

    @property
    def config_json(self) -> str:
        """The config as people read it on the agent page."""
        return json.dumps(self.config or {}, indent=2, ensure_ascii=False)


def _hash_key(raw: str) -> str:
    # Keys are 256-bit random tokens, so a fast unsalted hash is enough: there is
    # nothing to brute-force, and lookups stay a single indexed equality.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    PREFIX = "rb_"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters, shown")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def generate(cls) -> tuple[str, str, str]:
        """A new raw key, its display prefix and its hash. The raw key is shown once."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        return raw, raw[:10], _hash_key(raw)

    @classmethod
    def hash(cls, raw: str) -> str:
        return _hash_key(raw)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Schedule(models.Model):
    class MissedRuns(models.TextChoices):
        # What happens to runs that fell due while the scheduler was down.
        RUN_ONCE = "run_once", "Run once for all missed runs"
        SKIP = "skip", "Skip missed runs"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="schedules")
    agent_version = models.ForeignKey(AgentVersion, models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200)
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. 0 7 * * 1-5")
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    missed_runs = models.CharField(
        max_length=16, choices=MissedRuns.choices, default=MissedRuns.RUN_ONCE
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(cron="") | models.Q(interval_seconds__isnull=False),
                name="schedule_has_cron_or_interval",
            )
        ]
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="schedule_due_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        return f"every {self.interval_seconds} s"


class ModelPrice(models.Model):
    """USD per million tokens for one model, used when a span reports tokens but no cost.

    Rows without a workspace are the shared table: Runboard's defaults
    (agents/data/model_prices.json, `is_default`) and staff's additions. A row with a
    workspace is that workspace's own price and wins over the shared one.
    `model_prices_update` rewrites only unedited default rows.
    """

    workspace = models.ForeignKey(
        Workspace,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="model_prices",
        help_text="Empty: the shared price, for every workspace without its own.",
    )
    model = models.CharField(
        max_length=200,
        help_text="Also prices dated and provider-prefixed names: gpt-4o prices "
        "gpt-4o-2024-08-06 and openai/gpt-4o.",
    )
    provider = models.CharField(max_length=100, blank=True)
    input_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Input tokens read from the provider's prompt cache; empty: the input price.",
    )
    cache_write_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Input tokens written to the prompt cache (Anthropic); empty: the input price.",
    )
    credits_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    effective_date = models.DateField(
        null=True, blank=True, help_text="The day the provider began charging this price."
    )
    is_default = models.BooleanField(
        default=False,
        help_text="Shipped with Runboard and not edited here: model_prices_update may "
        "replace it with a newer default.",
    )

    class Meta:
        ordering = ["model"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(workspace__isnull=True),
                name="model_price_shared_unique",
            ),
            models.UniqueConstraint(
                fields=["workspace", "model"],
                condition=models.Q(workspace__isnull=False),
                name="model_price_workspace_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.model

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Decimal:
        """The exact cost in USD (no rounding), as providers bill it.

        Prompt tokens include the cached ones (OpenAI reports them so, and the GenAI
        conventions ask instrumentations to): those read from the cache are billed at
        the cached price, those written to it at the cache-write price, the rest at
        the input price. Reasoning tokens are part of the completion tokens.
        """
        cache_read = min(max(cache_read_tokens, 0), prompt_tokens)
        cache_write = min(max(cache_write_tokens, 0), prompt_tokens - cache_read)
        uncached = prompt_tokens - cache_read - cache_write
        cached_price = self.cached_input_per_million
        write_price = self.cache_write_per_million
        total = (
            Decimal(uncached) * self.input_per_million
            + Decimal(cache_read)
            * (cached_price if cached_price is not None else self.input_per_million)
            + Decimal(cache_write)
            * (write_price if write_price is not None else self.input_per_million)
            + Decimal(completion_tokens) * self.output_per_million
        )
        return total / Decimal(1_000_000)
