"""Which requests may read a replica, and the pin after a write (no replica needed:
the router and middleware are plain code; test_replica.py runs them against one)."""

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import RequestFactory

from config import replicas
from config.replicas import PIN_COOKIE, ReplicaMiddleware, ReplicaRouter, replica_safe

factory = RequestFactory()
RUN = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("method", "path", "safe"),
    [
        ("GET", "/executions/", True),
        ("GET", f"/executions/{RUN}/", True),
        ("GET", "/executions/export.csv", True),
        ("GET", "/overview/", True),
        ("GET", "/agents/", True),
        ("GET", f"/executions/{RUN}/feedback/", True),
        # Streams read where steps are written; the API reads its own writes.
        ("GET", f"/executions/{RUN}/stream", False),
        ("GET", "/api/v1/executions", False),
        ("GET", "/admin/", False),
        ("GET", "/accounts/login/", False),
        ("GET", "/no/such/page/", False),
        ("POST", "/executions/", False),
        ("POST", f"/executions/{RUN}/cancel/", False),
    ],
)
def test_which_requests_may_read_a_replica(method, path, safe):
    assert replica_safe(factory.generic(method, path)) is safe


def test_a_pinned_client_reads_the_primary():
    request = factory.get("/executions/")
    request.COOKIES[PIN_COOKIE] = "1"
    assert replica_safe(request) is False


def test_a_write_pins_the_client_for_the_configured_time(settings):
    settings.REPLICA_PIN_SECONDS = 7
    seen = []

    def view(request):
        seen.append(replicas._reading_replica.get())
        return HttpResponse("ok")

    middleware = ReplicaMiddleware(view)
    response = middleware(factory.post("/executions/run/"))
    assert response.cookies[PIN_COOKIE]["max-age"] == 7
    assert response.cookies[PIN_COOKIE]["httponly"]
    read = middleware(factory.get("/executions/"))
    assert PIN_COOKIE not in read.cookies
    # The view saw the flag; it is gone once the request is over.
    assert seen == [False, True]
    assert replicas._reading_replica.get() is False


@pytest.mark.django_db
def test_the_router_keeps_transactions_and_unmarked_reads_on_the_primary():
    router = ReplicaRouter()
    assert router.db_for_read(None) == "default"
    token = replicas._reading_replica.set(True)
    try:
        # No replica configured (or none healthy): the primary.
        assert router.db_for_read(None) == "default"
        with transaction.atomic():
            assert router.db_for_read(None) == "default"
    finally:
        replicas._reading_replica.reset(token)
    assert router.db_for_write(None) == "default"
    assert router.allow_migrate("replica", "executions") is False
    assert router.allow_migrate("default", "executions") is True
