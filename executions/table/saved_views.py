"""Writes of saved table views: a name for a query string, shared in the workspace."""

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import RestrictedError

from agents.models import Membership, Workspace
from executions.models import SavedView

NAME_MAX = 200
QUERY_MAX = 4000


def saved_view_save(*, workspace: Workspace, owner, name: str, query: str) -> SavedView:
    """Save the table's current query under a name, or update the owner's view of
    that name. A name another member already uses is refused, not overwritten."""
    try:
        # Form fields' validators refuse a NUL, which PostgreSQL text cannot hold.
        name = forms.CharField(required=False).clean(name or "")
        forms.CharField(required=False).clean(query or "")
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None
    if not name:
        raise ValidationError({"name": "Give the view a name."})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"Keep the name under {NAME_MAX} characters."})
    if len(query) > QUERY_MAX:
        raise ValidationError({"name": "These filters are too long to save as a view."})
    with transaction.atomic():
        existing = (
            SavedView.objects.select_for_update()
            .filter(workspace=workspace, name=name)
            .select_related("owner")
            .first()
        )
        if existing is not None:
            if existing.owner_id != owner.pk:
                raise ValidationError(
                    {
                        "name": f"“{name}” is already a view saved by "
                        f"{existing.owner.get_username()}; pick another name."
                    }
                )
            existing.query = query
            existing.save(update_fields=["query"])
            return existing
        try:
            with transaction.atomic():
                return SavedView.objects.create(
                    workspace=workspace, owner=owner, name=name, query=query
                )
        except IntegrityError:
            # Another request saved the same name between our check and insert.
            raise ValidationError({"name": f"“{name}” was just saved by someone else."}) from None


def saved_view_delete(*, view: SavedView, membership: Membership) -> None:
    """Its owner or a workspace admin may delete a view."""
    if view.workspace_id != membership.workspace_id:
        raise PermissionDenied("This view belongs to another workspace.")
    if view.owner_id != membership.user_id and membership.role != "admin":
        raise PermissionDenied("Only the person who saved this view, or an admin, can delete it.")
    try:
        view.delete()
    except RestrictedError as exc:
        # An alert rule scoped by the view (AlertRule.saved_view is RESTRICT): deleting
        # the view would leave the rule watching every run of the workspace.
        used_by = sorted(str(o) for o in exc.restricted_objects)
        raise PermissionDenied(
            f"This view scopes {', '.join(f'“{n}”' for n in used_by[:3])}"
            f"{' and others' if len(used_by) > 3 else ''}: change or delete "
            f"{'it' if len(used_by) == 1 else 'them'} first (Alerts)."
        ) from None
