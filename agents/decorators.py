from functools import wraps

from django.shortcuts import render

from .selectors import NoWorkspace, membership_for_request


def with_workspace(view):
    """Attach request.membership and request.workspace, the scope every selector takes.

    LoginRequiredMiddleware has already sent anonymous users to the login page.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            membership = membership_for_request(request)
        except NoWorkspace:
            return render(request, "agents/no_workspace.html", status=403)
        request.membership = membership
        request.workspace = membership.workspace
        return view(request, *args, **kwargs)

    return wrapper
