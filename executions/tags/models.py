import re

from django.conf import settings
from django.db import models
from django.utils import timezone

from agents.models import Workspace
from executions.models import Execution

MAX_TAG_LENGTH = 50
# Lower-case words joined by - _ . : so a tag reads the same in a URL and a chip.
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,49}$")


class ExecutionTag(models.Model):
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    execution = models.ForeignKey(Execution, models.CASCADE, related_name="tags")
    name = models.CharField(max_length=MAX_TAG_LENGTH)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["execution", "name"], name="tag_unique_per_run")
        ]
        # tag= in the table: the runs of a workspace carrying a tag.
        indexes = [models.Index(fields=["workspace", "name", "execution"], name="tag_lookup")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
