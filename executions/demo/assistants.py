"""Builders for the conversational and tool-using agents: web-browser, support-agent,
daily-sales-report, sql-writer and the retired ticket-triage."""

from datetime import date, timedelta
from random import Random

from .catalog import CUSTOMERS, REGIONS, SQL_QUESTIONS, SUPPORT_MESSAGES, TICKET_SUBJECTS
from .drafts import ArtifactDraft, Draft
from .images import render_screenshot

SITES = ["portal.brightline.example", "suppliers.nordicpaper.example", "billing.cascade.example"]


def web_browser(rng: Random, subject: Random, *, version: str, today: date) -> Draft:
    site = subject.choice(SITES)
    invoice = f"INV-{subject.randint(2200, 2299)}"
    amount = round(subject.uniform(80, 4200), 2)
    draft = Draft(
        input={
            "url": f"https://{site}/login",
            "goal": "Download the newest unpaid invoice and report the amount due.",
            "credentials": f"{site.split('.')[1]}-ap",
            "max_steps": 25,
        },
        output={
            "extracted": {"invoice_number": invoice, "amount_due": amount, "currency": "EUR"},
            "downloaded_files": [f"{invoice}.pdf"],
            "final_url": f"https://{site}/invoices/{invoice}",
        },
        summary=f"Downloaded {invoice} from {site}: amount due EUR {amount:,.2f}",
    )

    def thought(parent: str, title: str, text: str, page: str) -> str:
        # Titled by what the agent decided, so the timeline reads as a story.
        return draft.model_call(
            rng,
            model="claude-sonnet-4",
            name=title,
            kind="thought",
            parent=parent,
            prompt=[
                {"role": "system", "content": "You control a browser. Think, then act."},
                {"role": "user", "content": f"Screenshot of https://{site}/{page} attached."},
            ],
            response={"thought": text},
            prompt_tokens=(1500, 2600),
            completion_tokens=(40, 140),
        )

    typed: list[str] = []

    def action(parent: str, verb: str, element: str, page: str, target, **extra) -> str:
        if verb == "type":
            typed.append(extra["text"])
        elif page != "login":
            typed.clear()
        return draft.step(
            "action",
            f"{verb} {element}",
            rng.randint(300, 2500),
            parent=parent,
            input={"action": verb, "element": element, **extra},
            output={"ok": True, "url": f"https://{site}/{page}"},
            screenshot=(site, page, target, tuple(typed)),
            attributes={"browser.url": f"https://{site}/{page}"},
        )

    login = draft.step("block", "Log in", 0, input={"block_type": "login"})
    thought(
        login,
        "Sign in with the stored login",
        "A sign-in form with email and password. I'll use the stored login.",
        "login",
    )
    action(login, "type", "Email", "login", 0, text="ap@northwind.example")
    action(login, "type", "Password", "login", 1, text="********")
    sign_in = action(login, "click", "Sign in", "login", 2)
    find = draft.step("block", "Find the invoice", 0, input={"block_type": "navigation"})
    thought(find, "Open Invoices", "Logged in. The navigation has an Invoices link.", "dashboard")
    action(find, "click", "Invoices", "dashboard", 0)
    pick = thought(
        find,
        f"Pick {invoice}, the newest unpaid",
        f"Sorted by date, {invoice} is the newest unpaid one.",
        "invoices",
    )
    action(find, "click", invoice, "invoices", 1)
    fetch = draft.step("block", "Download and extract", 0, input={"block_type": "extraction"})
    action(fetch, "extract", "Amount due", "invoice", 0, schema={"amount_due": "number"})
    download = action(fetch, "download", "Download PDF", "invoice", 1)
    action(fetch, "complete", "goal reached", "invoice", None)

    draft.fail(
        sign_in,
        f"CaptchaDetected: https://{site}/login shows a CAPTCHA after sign-in; the agent "
        "cannot solve it.",
        "The portal asked for a CAPTCHA. Log in once by hand to clear it, then rerun.",
        screenshot=(site, "captcha", 0, ()),
    )
    draft.fail(
        pick,
        f"NoMatchingElement: no unpaid invoice listed on https://{site}/invoices",
        "There was no unpaid invoice to download.",
    )
    draft.fail(
        download,
        "TimeoutError: element 'Download PDF' was not clickable after 30000 ms",
        "The portal's download button never became clickable.",
    )
    for step in draft.steps:
        if step.screenshot:
            shot = step.screenshot
            draft.artifacts.append(
                ArtifactDraft(
                    kind="screenshot",
                    name=f"step-{step.key[1:]}-{shot[1]}.png",
                    content_type="image/png",
                    render=lambda shot=shot: render_screenshot(*shot),
                    step=step.key,
                )
            )
    return draft


REPLIES = {
    "order_status": "Your order {order} is with {carrier} and should arrive by {eta}. "
    "Tracking: **{tracking}**.",
    "refund": "I'm sorry about that. I've refunded **{amount} EUR** for order {order}; it "
    "will show on your card in 3 to 5 working days.",
    "address_change": "Done: order {order} will now go to your new address.",
    "complaint": "I'm sorry, that's not good enough. I've flagged {order} for a signature "
    "on delivery and passed your message to the carrier team.",
    "other": "Yes, we ship to Iceland: delivery takes 5 to 8 working days.",
}


def support_agent(
    rng: Random, subject: Random, *, version: str, today: date, approval: bool = False
) -> Draft:
    """A support conversation; with `approval`, one that asks for a refund over the limit."""
    intent, template = subject.choice(SUPPORT_MESSAGES)
    order = f"NW-{subject.randint(10000, 99999)}"
    amount = subject.choice([24.9, 59.0, 129.9, 189.0, 249.5])
    if approval:
        intent, template = SUPPORT_MESSAGES[1]
        amount = max(amount, 129.9)
    message = template.format(order=order)
    carrier = subject.choice(["DHL", "UPS", "DPD", "Royal Mail"])
    tracking = f"{carrier[:2].upper()}{subject.randint(10**9, 10**10 - 1)}"
    eta = (today + timedelta(days=subject.randint(1, 3))).isoformat()
    reply = REPLIES[intent].format(
        order=order, amount=amount, carrier=carrier, eta=eta, tracking=tracking
    )
    actions = []
    draft = Draft(
        input={
            "message": message,
            "customer_id": f"cus_{subject.randint(10**7, 10**8):x}",
            "order_id": order,
            "language": "en",
        },
        output=None,
        summary=f"{intent.replace('_', ' ')}: {order}",
        session_id=f"conv_{subject.randint(0, 90):04d}",
    )
    system = {"role": "system", "content": "You are the support assistant of Northwind."}
    user = {"role": "user", "content": message}
    first = draft.model_call(
        rng,
        model="claude-sonnet-4",
        name="chat claude-sonnet-4",
        prompt=[system, user],
        response={
            "role": "assistant",
            "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": order}}],
        },
        prompt_tokens=(900, 1500),
        completion_tokens=(30, 90),
    )
    lookup = draft.tool_call(
        rng,
        "lookup_order",
        {"order_id": order},
        {"order_id": order, "status": "shipped", "carrier": carrier, "total": amount, "items": 2},
        (60, 900),
    )
    if intent == "order_status":
        draft.tool_call(
            rng,
            "track_shipment",
            {"carrier": carrier, "tracking_number": tracking},
            {"last_event": "Arrived at local depot", "eta": eta},
            (200, 1400),
        )
        actions.append("track_shipment")
    elif intent == "address_change":
        draft.tool_call(
            rng,
            "update_address",
            {"order_id": order, "address": {"city": "Leeds", "postal_code": "LS6 2AA"}},
            {"updated": True},
            (100, 600),
        )
        actions.append("update_address")
    elif intent == "refund":
        if amount > 100:
            request = {
                "action": "issue_refund",
                "order_id": order,
                "amount": amount,
                "currency": "EUR",
                "reason": message,
                "policy": "Refunds over 100 EUR need a person's approval.",
            }
            draft.approval_step = draft.step(
                "approval", "approve refund", rng.randint(60_000, 1_800_000), input=request
            )
            draft.approval_request = request
        draft.tool_call(
            rng,
            "issue_refund",
            {"order_id": order, "amount": amount, "currency": "EUR"},
            {"refund_id": f"re_{rng.randint(10**9, 10**10):x}", "status": "succeeded"},
            (300, 1500),
        )
        actions.append("issue_refund")
    final = draft.model_call(
        rng,
        model="claude-sonnet-4",
        name="chat claude-sonnet-4",
        prompt=[system, user, {"role": "tool", "content": "…tool results…"}],
        response={"role": "assistant", "content": reply},
        prompt_tokens=(1400, 2400),
        completion_tokens=(60, 220),
    )
    guard = draft.step(
        "guardrail",
        "pii filter",
        rng.randint(5, 40),
        input={"text": reply[:80] + "…"},
        output={"blocked": False, "findings": []},
    )
    draft.output = {
        "reply": reply,
        "intent": intent,
        "actions": actions,
        "escalate": intent == "complaint",
    }
    draft.fail(
        lookup,
        "OrderServiceError: 504 Gateway Timeout from orders.internal after 10002 ms",
        "The order service did not answer in time.",
    )
    draft.fail(
        first,
        "anthropic.APIStatusError: Error code: 529 - {'type': 'error', 'error': "
        "{'type': 'overloaded_error', 'message': 'Overloaded'}}",
        "The model provider was overloaded.",
    )
    draft.fail(
        final if rng.random() < 0.5 else guard,
        "GuardrailViolation: the reply contained a full card number (PCI)",
        "The reply was blocked because it quoted a card number.",
    )
    return draft


REPORT_SQL = (
    "SELECT region, count(*) AS orders, sum(amount) AS revenue,\n"
    "       avg(amount) AS aov, avg(refunded::int) AS refund_rate\n"
    "FROM analytics.orders\nWHERE ordered_at::date = current_date - 1\nGROUP BY region\n"
    "ORDER BY revenue DESC"
)


def daily_sales_report(rng: Random, subject: Random, *, version: str, today: date) -> Draft:
    rows = []
    for region in REGIONS:
        orders = subject.randint(120, 900)
        rows.append((region, orders, round(orders * subject.uniform(38, 95), 2)))
    revenue = round(sum(r[2] for r in rows), 2)
    orders = sum(r[1] for r in rows)
    refund_rate = round(subject.uniform(0.01, 0.06), 4)
    best = max(rows, key=lambda r: r[2])
    table = "\n".join(f"| {r[0]} | {r[1]:,} | {r[2]:,.2f} |" for r in rows)
    day = (today - timedelta(days=1)).strftime("%A %d %B %Y")
    report = (
        f"# Sales report: {day}\n\n"
        f"**Revenue** {revenue:,.2f} EUR from **{orders:,} orders** "
        f"(average order {revenue / orders:,.2f} EUR).\n\n"
        f"| Region | Orders | Revenue (EUR) |\n|---|---:|---:|\n{table}\n\n"
        "## Notable\n\n"
        f"- **{best[0]}** led the day with {best[2]:,.2f} EUR.\n"
        f"- Refund rate {refund_rate:.1%}"
        + (" — above the 5% alert threshold." if refund_rate > 0.05 else ", within target.")
        + "\n- Data from `analytics.orders`, refreshed at 06:40 UTC.\n"
    )
    draft = Draft(
        input={"period": "yesterday", "recipients": ["leadership@northwind.example"]},
        output={
            "report": report,
            "kpis": {
                "revenue": revenue,
                "orders": orders,
                "average_order_value": round(revenue / orders, 2),
                "refund_rate": refund_rate,
            },
        },
        summary=f"Sales {day}: {revenue:,.0f} EUR, {orders:,} orders",
    )
    query = draft.tool_call(
        rng,
        "query_warehouse",
        {"sql": REPORT_SQL, "warehouse": "snowflake"},
        {"rows": len(rows), "columns": ["region", "orders", "revenue", "aov", "refund_rate"]},
        (2000, 14000),
    )
    draft.model_call(
        rng,
        model="gpt-4o-mini",
        name="write report",
        prompt=[
            {"role": "system", "content": "Write a short Markdown sales report."},
            {"role": "user", "content": f"Rows: {rows}"},
        ],
        response={"role": "assistant", "content": report},
        prompt_tokens=(700, 1100),
        completion_tokens=(250, 480),
    )
    draft.tool_call(
        rng,
        "send_email",
        {"to": ["leadership@northwind.example"], "subject": f"Sales report {day}"},
        {"message_id": f"<{rng.randint(10**8, 10**9)}@mail.northwind.example>"},
        (150, 800),
    )
    draft.fail(
        query,
        "snowflake.connector.errors.ProgrammingError: 002003 (42S02): SQL compilation "
        "error: Object 'ANALYTICS.ORDERS' does not exist or not authorized.",
        "The warehouse table was being rebuilt when the report ran.",
    )
    return draft


SQL_ANSWERS = [
    "SELECT c.name, sum(o.amount) AS revenue\nFROM orders o\nJOIN customers c ON c.id = "
    "o.customer_id\nWHERE o.ordered_at >= date_trunc('quarter', now()) - interval '3 months'\n"
    "  AND o.ordered_at < date_trunc('quarter', now())\nGROUP BY c.name\nORDER BY revenue DESC"
    "\nLIMIT 10;",
    "SELECT date_trunc('week', e.at) AS week, u.plan, count(DISTINCT e.user_id) AS wau\n"
    "FROM events e\nJOIN users u ON u.id = e.user_id\nWHERE e.at >= date '2025-01-01'\n"
    "GROUP BY 1, 2\nORDER BY 1, 2;",
    "SELECT p.sku, avg((r.id IS NOT NULL)::int) AS refund_rate\nFROM order_items i\n"
    "JOIN products p ON p.id = i.product_id\nLEFT JOIN refunds r ON r.order_item_id = i.id\n"
    "WHERE i.created_at >= date_trunc('month', now()) - interval '1 month'\nGROUP BY p.sku\n"
    "HAVING avg((r.id IS NOT NULL)::int) > 0.05;",
]


def sql_writer(rng: Random, subject: Random, *, version: str, today: date) -> Draft:
    question = subject.choice(SQL_QUESTIONS)
    code = subject.choice(SQL_ANSWERS)
    estimated = subject.randint(10, 50_000)
    draft = Draft(
        input={"question": question, "dialect": "postgresql"},
        output={
            "code": code,
            "language": "sql",
            "explanation": "Joins the fact table to its dimension and aggregates per group.",
            "estimated_rows": estimated,
        },
        summary=question,
    )
    write = draft.model_call(
        rng,
        model="o3-mini",
        name="write query (o3-mini)",
        prompt=[
            {"role": "system", "content": "Write one read-only PostgreSQL query."},
            {"role": "user", "content": question},
        ],
        response={"role": "assistant", "content": f"```sql\n{code}\n```"},
        prompt_tokens=(2200, 4200),
        completion_tokens=(400, 1800),
    )
    draft.step(
        "guardrail",
        "read-only check",
        rng.randint(2, 12),
        input={"sql": code},
        output={"read_only": True},
    )
    explain = draft.tool_call(
        rng,
        "explain_query",
        {"sql": code},
        {"plan": "HashAggregate -> Hash Join -> Seq Scan on orders", "estimated_rows": estimated},
        (80, 1200),
    )
    draft.artifacts.append(
        ArtifactDraft(
            kind="code",
            name="query.sql",
            content_type="text/x-sql",
            render=lambda: (code + "\n").encode(),
        )
    )
    draft.fail(
        write,
        "openai.BadRequestError: 400 This model's maximum context length is 200000 tokens; "
        "your messages resulted in 214877 tokens.",
        "The warehouse schema sent as context was too large for the model.",
    )
    draft.fail(
        explain,
        "psycopg.errors.UndefinedColumn: column o.ordered_at does not exist\nLINE 4: WHERE "
        "o.ordered_at >= date_trunc('quarter', now()) ...",
        "The generated query used a column that does not exist.",
    )
    return draft


def ticket_triage(rng: Random, subject: Random, *, version: str, today: date) -> Draft:
    title, category = subject.choice(TICKET_SUBJECTS)
    customer = subject.choice(CUSTOMERS)
    priority = subject.choice(["low", "normal", "normal", "urgent"])
    draft = Draft(
        input={"subject": title, "body": f"Hello, {title.lower()}. Regards, {customer}"},
        output={
            "category": category,
            "priority": priority,
            "confidence": round(rng.uniform(0.6, 0.99), 2),
        },
        summary=f"{title} → {category}",
    )
    call = draft.model_call(
        rng,
        model="gpt-4o-mini",
        name="classify",
        prompt=[
            {"role": "system", "content": "Classify the ticket."},
            {"role": "user", "content": title},
        ],
        response={"role": "assistant", "content": category},
        prompt_tokens=(200, 420),
        completion_tokens=(5, 30),
    )
    draft.fail(call, "openai.APITimeoutError: Request timed out.", "The model did not answer.")
    return draft
