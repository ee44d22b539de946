def workspace(request):
    """The current workspace and the user's others, for the header's switcher."""
    current = getattr(request, "workspace", None)
    if current is None or not request.user.is_authenticated:
        return {}
    from .selectors import workspace_list_for_user

    return {
        "current_workspace": current,
        "current_membership": getattr(request, "membership", None),
        "user_workspaces": workspace_list_for_user(user=request.user),
    }
