"""After corrections the Output tab and the header's preview show the corrected output,
saying so, with the original one link away."""

import pytest

from tests.executions.detail_html import parse

from ..factories import ExecutionFactory, FieldCorrectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def corrected(agent_version, bob):
    execution = ExecutionFactory(
        agent_version=agent_version, output={"vendor": "ACME", "total": 12.5}, correction_count=1
    )
    FieldCorrectionFactory(
        execution=execution, path="/vendor", value_before="ACME", value_after="ACME Ltd", author=bob
    )
    return execution


def json_text(doc) -> str:
    return doc.one("div", cls="json-box").text


def test_the_output_tab_shows_the_corrected_output_first(alice_client, corrected):
    url = f"{corrected.get_absolute_url()}?tab=output"
    doc = parse(alice_client.get(url).content)
    assert '"ACME Ltd"' in json_text(doc)
    links = {
        a.text.split()[0]: a.attrs["href"]
        for n in doc.select("nav", cls="seg-small")
        for a in n.select("a")
    }
    assert links["Original"].endswith("&show=original")
    original = parse(alice_client.get(links["Original"]).content)
    assert '"ACME"' in json_text(original) and "ACME Ltd" not in json_text(original)
    markdown = parse(alice_client.get(f"{url}&view=markdown&raw=1").content)
    assert "ACME Ltd" in markdown.one("pre", cls="md-raw").text


def test_the_header_preview_is_the_corrected_output(alice_client, corrected):
    doc = parse(alice_client.get(corrected.get_absolute_url()).content)
    card = doc.one("div", cls="summary-output")
    assert "ACME Ltd" in card.text
    assert card.one("span", cls="chip-corrected").text == "corrected"


def test_without_corrections_nothing_changes(alice_client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, output={"vendor": "ACME"})
    doc = parse(alice_client.get(f"{execution.get_absolute_url()}?tab=output").content)
    assert not doc.select("nav", cls="seg-small")
    assert '"ACME"' in json_text(doc)
