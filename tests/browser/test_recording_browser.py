"""The Recording tab in Chromium: the video loads, and seeking fetches by range."""

import pytest
from django.core.files.base import ContentFile

from executions.demo.images import render_screenshot
from executions.demo.video import screencast
from executions.models import ArtifactKind, Status
from tests.factories import ArtifactFactory, ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_recording_plays_and_seeks(page, agent_version):
    shots = [render_screenshot("shop.example", p, None) for p in ("login", "invoices", "dashboard")]
    webm = screencast(shots)
    execution = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    artifact = ArtifactFactory(
        execution=execution,
        kind=ArtifactKind.VIDEO,
        name="session.webm",
        content_type="video/webm",
        file=ContentFile(webm, name="session.webm"),
        size=len(webm),
    )
    statuses = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if f"/artifacts/{artifact.pk}/" in r.url else None,
    )
    page.goto(f"{execution.get_absolute_url()}?tab=recording")
    duration = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const v = document.getElementById('recording-player');
            const done = () => resolve(v.duration);
            if (v.readyState >= 1) done(); else v.addEventListener('loadedmetadata', done);
            v.addEventListener('error', () => reject(String(v.error && v.error.message)));
        })"""
    )
    assert duration > 3  # three shots of 1.5 s
    seeked = page.evaluate(
        """() => new Promise((resolve) => {
            const v = document.getElementById('recording-player');
            v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
            v.currentTime = 3.5;
        })"""
    )
    assert seeked == pytest.approx(3.5, abs=0.6)
    assert 206 in statuses  # the player asked for a range and got it
    assert page.errors == []
