"""The Recording tab: the run's video, served with HTTP range requests so the player
seeks; "No recording available" otherwise; the demo's recordings are real videos."""

import io

import pytest
from django.core.files.base import ContentFile

from executions.demo.images import render_screenshot
from executions.demo.video import screencast
from executions.models import Artifact, ArtifactKind, Status
from tests.factories import ArtifactFactory, ExecutionFactory

from .detail_html import parse

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def webm() -> bytes:
    shots = [render_screenshot("shop.example", page, None) for page in ("login", "invoices")]
    return screencast(shots)


@pytest.fixture
def recorded(agent_version, webm):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    artifact = ArtifactFactory(
        execution=execution,
        kind=ArtifactKind.VIDEO,
        name="session.webm",
        content_type="video/webm",
        file=ContentFile(webm, name="session.webm"),
        size=len(webm),
    )
    return execution, artifact


def test_the_screencast_is_a_real_seekable_video(webm):
    import av

    with av.open(io.BytesIO(webm)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8"
        frames = list(container.decode(video=0))
    # Each screenshot holds for a moment and starts with a keyframe, to seek to.
    assert len(frames) >= 6
    assert sum(1 for f in frames if f.key_frame) == 2


def test_the_recording_tab_plays_the_runs_video(alice_client, recorded):
    execution, artifact = recorded
    doc = parse(alice_client.get(f"{execution.get_absolute_url()}?tab=recording").content)
    video = doc.one("video", id="recording-player")
    assert video.attrs["src"] == f"/executions/artifacts/{artifact.pk}/"
    assert "controls" in video.attrs


def test_without_a_video_it_says_so(alice_client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    ArtifactFactory(execution=execution)  # a screenshot is no recording
    doc = parse(alice_client.get(f"{execution.get_absolute_url()}?tab=recording").content)
    assert not doc.select("video")
    assert doc.one("p", id="no-recording").text.startswith("No recording available")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_range_request_gets_that_part(alice_client, recorded, webm):
    _, artifact = recorded
    url = f"/executions/artifacts/{artifact.pk}/"
    whole = alice_client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert body(whole) == webm

    part = alice_client.get(url, HTTP_RANGE="bytes=100-299")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-299/{len(webm)}"
    assert part["Content-Length"] == "200" and part["Content-Type"] == "video/webm"
    assert body(part) == webm[100:300]

    tail = alice_client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and body(tail) == webm[-10:]
    rest = alice_client.get(url, HTTP_RANGE=f"bytes={len(webm) - 5}-")
    assert body(rest) == webm[-5:]
    # Past the end: 416 with the size; several ranges: the whole file.
    beyond = alice_client.get(url, HTTP_RANGE=f"bytes={len(webm)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(webm)}"
    several = alice_client.get(url, HTTP_RANGE="bytes=0-1,5-6")
    assert several.status_code == 200 and body(several) == webm


def test_ranges_are_for_members_only(charlie_client, recorded):
    _, artifact = recorded
    response = charlie_client.get(f"/executions/artifacts/{artifact.pk}/", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 404


def test_the_demo_browser_agent_ships_recordings(db):
    from executions.demo.seed import seed_demo

    seed_demo()
    videos = Artifact.objects.filter(kind=ArtifactKind.VIDEO, content_type="video/webm")
    assert videos.exists()
    assert set(videos.values_list("execution__agent_name", flat=True)) == {"web-browser"}
    for video in videos:
        assert video.size > 1000 and video.file.read(4) == b"\x1a\x45\xdf\xa3"  # EBML: WebM
