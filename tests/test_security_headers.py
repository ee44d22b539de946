import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_pages_send_a_strict_csp(alice_client):
    response = alice_client.get(reverse("agents:list"))
    policy = response["Content-Security-Policy"]
    # Django adds a nonce only to pages that use one; none may allow inline code at large.
    assert re.search(r"script-src 'self'( 'nonce-[^']+')?;", policy)
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert "object-src 'none'" in policy


def test_pages_load_no_asset_from_another_origin(alice_client):
    html = alice_client.get(reverse("agents:list")).content.decode()
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http:", "https:", "//")), url


def test_htmx_requests_carry_the_csrf_token(alice_client):
    html = alice_client.get(reverse("agents:list")).content.decode()
    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[A-Za-z0-9]{32,}\"\}'", html)


def test_logout_is_a_post_form(alice_client):
    html = alice_client.get(reverse("agents:list")).content.decode()
    assert re.search(r'<form method="post" action="/accounts/logout/">', html)
