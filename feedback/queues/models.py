from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from agents.models import Membership, Workspace
from executions.models import Execution

MAX_REVIEWERS_PER_ITEM = 10
# Long enough that a reviewer without JavaScript (no renewal ping) can finish a run;
# each save renews it anyway.
DEFAULT_LOCK_SECONDS = 30 * 60


class Queue(models.Model):
    """A list of runs to review with one rubric.

    The rubric is `fields` (JSON Pointers of the output to check; empty: every leaf
    of the output) and `questions`: [{"key", "label", "kind": choice|number|text,
    "choices": [...]}] asked about the run as a whole.
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    assignees = models.ManyToManyField(Membership, blank=True, related_name="review_queues")
    reviewers_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_REVIEWERS_PER_ITEM)]
    )
    lock_seconds = models.PositiveIntegerField(
        default=DEFAULT_LOCK_SECONDS,
        validators=[MinValueValidator(60), MaxValueValidator(24 * 3600)],
        help_text="How long a claim holds an item without being renewed.",
    )
    fields = models.JSONField(default=list, blank=True)
    questions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="queue_unique_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def lock_timeout(self) -> timedelta:
        return timedelta(seconds=self.lock_seconds)


class QueueItem(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"  # still wants reviews
        DONE = "done", "Done"  # every review in, reviewers agree (or one reviewer)
        DISPUTED = "disputed", "Disputed"  # reviews in, some field disagrees
        RESOLVED = "resolved", "Resolved"  # a queue admin picked the final values

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    queue = models.ForeignKey(Queue, models.CASCADE, related_name="items")
    execution = models.ForeignKey(Execution, models.CASCADE, related_name="queue_items")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    # Submitted (not skipped) reviews, kept here so claiming need not count them.
    reviews_done = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The queue admin's pick for each disputed field, as in Review.fields.
    resolution = models.JSONField(default=dict, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "execution"], name="queue_item_unique_run")
        ]
        # Claim next: the open items of one queue in the order they came.
        indexes = [models.Index(fields=["queue", "state", "id"], name="queue_item_claim")]
        ordering = ["queue", "id"]

    def __str__(self) -> str:
        return f"{self.execution_id} in {self.queue_id}"


class Review(models.Model):
    """One reviewer's work on one item: a claim (a lock until `expires_at`) until it is
    submitted or skipped.

    `fields`: {pointer: {"verdict": "ok" | "corrected", "value": <json>}}; `answers`:
    {question key: answer}.
    """

    class Verdict(models.TextChoices):
        OK = "ok", "Correct"
        CORRECTED = "corrected", "Corrected"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    skipped = models.BooleanField(default=False)
    answers = models.JSONField(default=dict, blank=True)
    fields = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="review_unique_reviewer")
        ]
        indexes = [
            models.Index(fields=["reviewer", "submitted_at"], name="review_reviewer_open"),
        ]
        ordering = ["item", "started_at"]

    def __str__(self) -> str:
        return f"{self.reviewer_id} on item {self.item_id}"

    @property
    def is_open(self) -> bool:
        return self.submitted_at is None

    def holds_lock(self, now=None) -> bool:
        return self.submitted_at is None and self.expires_at > (now or timezone.now())
