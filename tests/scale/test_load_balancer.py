"""Two Runboard web processes behind a real HAProxy (round robin, no stickiness, a new
backend connection per request): sessions, CSRF, live streams and uploads work
whichever process answers. Each response names its process (X-Served-By)."""

import queue
import threading

import pytest
import requests

from .conftest import need_haproxy
from .stack import Browser, HAProxy, WebProcess, app_env, create_execution

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def balanced(replicated):
    need_haproxy()
    pair, key = replicated
    env = app_env(pair.primary.url(pair.dbname))
    webs = [WebProcess(env), WebProcess(env)]
    proxy = None
    try:
        for web in webs:
            web.start()
        proxy = HAProxy([web.port for web in webs]).start()
        yield proxy, key
    finally:
        if proxy:
            proxy.stop()
        for web in webs:
            web.stop()


def served_by(responses) -> set[str]:
    return {r.headers["X-Served-By"] for r in responses}


def test_a_session_and_its_csrf_token_work_on_every_process(balanced):
    proxy, _ = balanced
    browser = Browser(proxy.url)
    browser.login()
    pages = [browser.get("/executions/") for _ in range(4)]
    assert [p.status_code for p in pages] == [200] * 4
    assert served_by(pages) == {"web0", "web1"}

    # The token came from whichever process served the login page; the posts go round.
    keys = [browser.post("/workspace/api-keys/", {"name": f"lb key {i}"}) for i in range(2)]
    assert [k.status_code for k in keys] == [200, 200]
    assert served_by(keys) == {"web0", "web1"}
    # Without the token every process refuses.
    bare = requests.Session()
    bare.cookies.update(browser.session.cookies)
    refused = [
        bare.post(f"{proxy.url}/workspace/api-keys/", {"name": "x"}, timeout=30) for _ in range(2)
    ]
    assert [r.status_code for r in refused] == [403, 403]
    assert served_by(refused) == {"web0", "web1"}


def test_a_stream_on_one_process_hears_steps_recorded_on_another(balanced):
    proxy, key = balanced
    browser = Browser(proxy.url)
    browser.login()
    run = create_execution(proxy.url, key)
    stream = browser.session.get(f"{proxy.url}/executions/{run}/stream", stream=True, timeout=30)
    assert stream.status_code == 200
    stream_server = stream.headers["X-Served-By"]
    lines: queue.Queue = queue.Queue()

    def read():
        try:
            for line in stream.iter_lines(decode_unicode=True):
                lines.put(line)
        except Exception:
            pass  # the test closes the stream under the reader when it is done

    threading.Thread(target=read, daemon=True).start()
    try:
        # Record steps until one was answered by the other process (round robin: the
        # first or second request).
        posted_on = set()
        for sequence in range(1, 3):
            answer = requests.post(
                f"{proxy.url}/api/v1/executions/{run}/steps",
                json={"steps": [{"sequence": sequence, "kind": "tool_call", "name": "lb-step"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert answer.status_code in (200, 201), answer.text[:300]
            posted_on.add(answer.headers["X-Served-By"])
        assert posted_on - {stream_server}
        seen = []
        while not any("lb-step" in line for line in seen):
            seen.append(lines.get(timeout=20))
        assert "event: step" in seen
    finally:
        stream.close()


def test_an_upload_to_one_process_downloads_from_every_process(balanced):
    proxy, key = balanced
    browser = Browser(proxy.url)
    browser.login()
    run = create_execution(proxy.url, key)
    content = b"%PDF-1.4 load balanced upload\n" * 100
    upload = requests.post(
        f"{proxy.url}/api/v1/executions/{run}/artifacts",
        files={"file": ("invoice.pdf", content, "application/pdf")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert upload.status_code == 201, upload.text[:300]
    artifact = upload.json()["id"]
    downloads = [browser.get(f"/executions/artifacts/{artifact}/") for _ in range(2)]
    assert [d.status_code for d in downloads] == [200, 200]
    assert [d.content for d in downloads] == [content, content]
    assert served_by(downloads) == {"web0", "web1"}
