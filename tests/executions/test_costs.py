"""Money: costs to 12 places summed exactly, the instrumentation's own cost first, the
shipped price table (dated and hosted names, cached tokens), workspace prices, and
model_prices_update, which upgrades defaults and keeps what was edited here."""

import json
import secrets
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from agents.model_prices import default_prices, prices_apply_defaults
from agents.models import ModelPrice
from executions.ingest.prices import price_for
from executions.models import Execution, Step
from tests.factories import ApiKeyFactory, UserFactory

from .test_otlp import ids, request, send, span

pytestmark = pytest.mark.django_db


@pytest.fixture
def defaults():
    # Live-server tests flush every table, the migration's rows too: load them here.
    prices_apply_defaults(ModelPrice)


@pytest.fixture
def otlp(workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def chat(trace, parent, model, start, **usage):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
    attrs.update({k.replace("__", "."): v for k, v in usage.items()})
    return span(
        trace,
        secrets.token_bytes(8),
        parent,
        name=f"chat {model}",
        attrs=attrs,
        start=start,
        end=start + 5,
    )


def test_a_two_call_run_costs_exactly_what_the_provider_bills(otlp, workspace, defaults):
    trace, root = ids()
    model = "gpt-4o-mini-2024-07-18"  # dated: priced as gpt-4o-mini, $0.15 / $0.60
    body = request(
        span(
            trace, root, name="agent run", attrs={"gen_ai.operation.name": "invoke_agent"}, end=100
        ),
        chat(
            trace, root, model, 10, gen_ai__usage__input_tokens=70, gen_ai__usage__output_tokens=12
        ),
        chat(
            trace, root, model, 50, gen_ai__usage__input_tokens=83, gen_ai__usage__output_tokens=18
        ),
    )
    assert send(otlp, body).status_code == 200
    execution = Execution.objects.get(workspace=workspace)
    assert execution.cost_usd == Decimal("0.00004095")
    assert sorted(Step.objects.values_list("cost_usd", flat=True)) == [
        Decimal("0.0000177"),
        Decimal("0.00002325"),
    ]
    api = Client(HTTP_AUTHORIZATION=otlp.defaults["HTTP_AUTHORIZATION"])
    answer = api.get(f"/api/v1/executions/{execution.pk}").json()
    assert Decimal(str(answer["cost"])) == Decimal("0.00004095")


def test_the_cost_the_instrumentation_reports_wins_over_the_table(otlp, workspace, defaults):
    trace, root = ids()
    body = request(
        span(
            trace,
            root,
            name="agent run",
            attrs={"gen_ai.operation.name": "invoke_agent", "operation.cost": 9.0},
            end=100,
        ),
        # pydantic-ai (genai-prices) and OpenInference say what they charged.
        chat(trace, root, "gpt-4o", 10, gen_ai__usage__input_tokens=1000, operation__cost=0.0123),
        chat(
            trace,
            root,
            "gpt-4o",
            20,
            llm__token_count__prompt="1000",
            llm__cost__total="0.00000001",
        ),
    )
    send(otlp, body)
    execution = Execution.objects.get(workspace=workspace)
    # The agent span's cost is its calls' summed: not counted a second time.
    assert execution.cost_usd == Decimal("0.01230001")


def test_cached_and_cache_write_tokens_are_priced_as_providers_bill_them(otlp, workspace, defaults):
    trace, root = ids()
    body = request(
        span(trace, root, name="run", attrs={"gen_ai.operation.name": "invoke_agent"}, end=99),
        # OpenAI: 800 of the 1000 prompt tokens came from the cache at half price.
        chat(
            trace,
            root,
            "gpt-4o-mini",
            10,
            gen_ai__usage__input_tokens=1000,
            gen_ai__usage__output_tokens=0,
            llm__token_count__prompt_details__cache_read=800,
        ),
        # Anthropic on Bedrock: reads at 0.1x, 5-minute writes at 1.25x the input price.
        chat(
            trace,
            root,
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            20,
            gen_ai__usage__input_tokens=1000,
            gen_ai__usage__output_tokens=100,
            gen_ai__usage__cache_read_input_tokens=500,
            gen_ai__usage__cache_creation_input_tokens=300,
        ),
    )
    send(otlp, body)
    costs = dict(Step.objects.values_list("model", "cost_usd"))
    assert costs["gpt-4o-mini"] == Decimal("0.00009")  # 200 x 0.15 + 800 x 0.075
    # 200 x 3 + 500 x 0.30 + 300 x 3.75 + 100 x 15, per million
    assert costs["us.anthropic.claude-sonnet-4-20250514-v1:0"] == Decimal("0.003375")


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # an older, dearer snapshot
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("GPT-4o-mini", "gpt-4o-mini"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("models/gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "llama-3.3-70b"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-4x", None),  # a name that merely starts like gpt-4 is not gpt-4
        ("my-own-model", None),
    ],
)
def test_models_are_matched_by_family_and_host_prefix(defaults, model, priced_as):
    price = price_for(model, workspace_id=None)
    assert (price.model if price else None) == priced_as


def test_a_workspaces_own_price_wins_only_in_that_workspace(
    otlp, workspace, other_workspace, defaults
):
    ModelPrice.objects.create(
        workspace=workspace, model="gpt-4o-mini", input_per_million=1, output_per_million=1
    )
    assert price_for("gpt-4o-mini-2024-07-18", workspace_id=workspace.pk).input_per_million == 1
    shared = price_for("gpt-4o-mini", workspace_id=other_workspace.pk)
    assert shared.input_per_million == Decimal("0.15") and shared.workspace_id is None
    trace, _root = ids()
    send(otlp, request(chat(trace, b"", "gpt-4o-mini", 0, gen_ai__usage__input_tokens=10)))
    assert Execution.objects.get(workspace=workspace).cost_usd == Decimal("0.00001")


def test_the_shipped_table_covers_the_widely_used_providers():
    prices = default_prices()
    assert len(prices) >= 80
    assert {"openai", "anthropic", "google", "mistral", "meta", "deepseek"} <= {
        p["provider"] for p in prices
    }
    assert all(p["effective_date"] and p["input_per_million"] is not None for p in prices)


def test_model_prices_update_keeps_edited_and_workspace_prices(tmp_path, workspace):
    ModelPrice.objects.all().delete()
    table = tmp_path / "prices.json"
    rows = [
        {"model": "m-old", "provider": "x", "input": "1", "output": "2", "effective": "2025-01-01"},
        {"model": "m-edited", "provider": "x", "input": "1", "output": "2"},
    ]
    table.write_text(json.dumps({"prices": rows}))
    call_command("model_prices_update", file=table, stdout=StringIO())
    edited = ModelPrice.objects.get(model="m-edited")
    edited.input_per_million, edited.is_default = 7, False  # what admin does on save
    edited.save()
    ModelPrice.objects.create(
        workspace=workspace, model="m-old", input_per_million=5, output_per_million=5
    )

    rows[0]["input"] = "1.5"
    rows[1]["input"] = "1.5"
    rows.append({"model": "m-new", "provider": "y", "input": "0.1", "output": "0.2"})
    table.write_text(json.dumps({"prices": rows}))
    out = StringIO()
    call_command("model_prices_update", file=table, stdout=out)

    assert "1 added, 1 updated, 0 unchanged, 1 edited here and kept" in out.getvalue()
    shared = dict(
        ModelPrice.objects.filter(workspace=None).values_list("model", "input_per_million")
    )
    assert shared == {"m-old": Decimal("1.5"), "m-edited": Decimal("7"), "m-new": Decimal("0.1")}
    assert ModelPrice.objects.get(workspace=workspace).input_per_million == 5


def test_model_prices_update_names_a_bad_file(tmp_path):
    with pytest.raises(CommandError, match="--file"):
        call_command("model_prices_update", file=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"prices": [{"model": "x"}]}')
    with pytest.raises(CommandError, match="not a price table"):
        call_command("model_prices_update", file=tmp_path / "bad.json")


def test_editing_a_default_in_admin_makes_it_staffs_own(client, defaults):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    price = ModelPrice.objects.get(workspace=None, model="gpt-4o-mini")
    assert price.is_default
    response = client.post(
        f"/admin/agents/modelprice/{price.pk}/change/",
        {
            "workspace": "",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "input_per_million": "0.2",
            "output_per_million": "0.6",
            "cached_input_per_million": "0.075",
            "cache_write_per_million": "",
            "credits_per_million": "0",
            "effective_date": "2024-07-18",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    price.refresh_from_db()
    assert price.input_per_million == Decimal("0.2") and not price.is_default
