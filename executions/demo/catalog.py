"""What the demo workspace is made of: agents, their versions and schemas, model prices,
and the pools of customers, vendors and products the runs draw from.

Plain data, so that the builders stay about behaviour and this file about content.
"""

from decimal import Decimal

# USD per million tokens (list prices), and the credits we bill per million tokens.
MODEL_PRICES = {
    "gpt-4o": ("openai", Decimal("2.50"), Decimal("10.00"), Decimal("400")),
    "gpt-4o-mini": ("openai", Decimal("0.15"), Decimal("0.60"), Decimal("40")),
    "o3-mini": ("openai", Decimal("1.10"), Decimal("4.40"), Decimal("180")),
    "claude-sonnet-4": ("anthropic", Decimal("3.00"), Decimal("15.00"), Decimal("500")),
    "claude-3-5-haiku": ("anthropic", Decimal("0.80"), Decimal("4.00"), Decimal("120")),
    "gemini-2.0-flash": ("google", Decimal("0.10"), Decimal("0.40"), Decimal("25")),
}


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    _, inp, out, _ = MODEL_PRICES[model]
    cost = (Decimal(prompt_tokens) * inp + Decimal(completion_tokens) * out) / Decimal(1_000_000)
    return cost.quantize(Decimal("0.000001"))


def credits_of(model: str, tokens: int) -> Decimal:
    per_million = MODEL_PRICES[model][3]
    return (Decimal(tokens) * per_million / Decimal(1_000_000)).quantize(Decimal("0.0001"))


MONEY = {"type": "number", "minimum": 0}
DATE = {"type": "string", "format": "date"}
FILE_INPUT = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "uri", "description": "URL of the document"},
        "language": {"type": "string", "enum": ["en", "de", "fr", "es", "nl"]},
        "grounding": {"type": "boolean", "description": "Return bounding boxes"},
    },
}

ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "postal_code": {"type": "string"},
        "country": {"type": "string"},
    },
}

INVOICE_OUTPUT_V1 = {
    "type": "object",
    "required": ["invoice_number", "vendor", "totals"],
    "properties": {
        "invoice_number": {"type": "string"},
        "invoice_date": DATE,
        "vendor": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "address": {"type": "string"}},
        },
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "quantity": {"type": "number"},
                    "amount": MONEY,
                },
            },
        },
        "totals": {
            "type": "object",
            "properties": {"total": MONEY, "currency": {"type": "string"}},
        },
    },
}

INVOICE_OUTPUT_V2 = {
    "type": "object",
    "required": ["invoice_number", "vendor", "line_items", "totals"],
    "properties": {
        "invoice_number": {"type": "string"},
        "purchase_order": {"type": ["string", "null"]},
        "dates": {
            "type": "object",
            "properties": {"issued": DATE, "due": DATE},
        },
        "vendor": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "vat_id": {"type": ["string", "null"]},
                "address": ADDRESS,
            },
        },
        "bill_to": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "address": ADDRESS},
        },
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["description", "amount"],
                "properties": {
                    "description": {"type": "string"},
                    "quantity": {"type": "number"},
                    "unit_price": MONEY,
                    "amount": MONEY,
                },
            },
        },
        "totals": {
            "type": "object",
            "required": ["total"],
            "properties": {
                "subtotal": MONEY,
                "tax": MONEY,
                "tax_rate": {"type": "number"},
                "total": MONEY,
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        },
    },
}

BOX = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "x": {"type": "number"},
        "y": {"type": "number"},
        "width": {"type": "number"},
        "height": {"type": "number"},
        "confidence": {"type": "number"},
    },
}

RECEIPT_OUTPUT = {
    "type": "object",
    "required": ["merchant", "total"],
    "properties": {
        "merchant": {"type": "string"},
        "date": DATE,
        "time": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "price": MONEY},
            },
        },
        "subtotal": MONEY,
        "tax": MONEY,
        "total": MONEY,
        "currency": {"type": "string"},
        "payment_method": {"type": "string"},
        "bounding_boxes": {"type": "array", "items": BOX},
    },
}

BROWSER_INPUT = {
    "type": "object",
    "required": ["url", "goal"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "goal": {"type": "string"},
        "credentials": {"type": "string", "description": "Name of a stored credential"},
        "max_steps": {"type": "integer", "minimum": 1, "maximum": 50},
    },
}
BROWSER_OUTPUT = {
    "type": "object",
    "properties": {
        "extracted": {"type": "object"},
        "downloaded_files": {"type": "array", "items": {"type": "string"}},
        "final_url": {"type": "string"},
    },
}

SUPPORT_INPUT = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "customer_id": {"type": "string"},
        "order_id": {"type": "string"},
        "language": {"type": "string"},
    },
}
SUPPORT_OUTPUT = {
    "type": "object",
    "required": ["reply"],
    "properties": {
        "reply": {"type": "string"},
        "intent": {
            "type": "string",
            "enum": ["order_status", "refund", "address_change", "complaint", "other"],
        },
        "actions": {"type": "array", "items": {"type": "string"}},
        "escalate": {"type": "boolean"},
    },
}

REPORT_INPUT = {
    "type": "object",
    "properties": {
        "period": {"type": "string", "enum": ["yesterday", "last_7_days"]},
        "recipients": {"type": "array", "items": {"type": "string", "format": "email"}},
    },
}
REPORT_OUTPUT = {
    "type": "object",
    "required": ["report"],
    "properties": {
        "report": {"type": "string", "contentMediaType": "text/markdown"},
        "kpis": {
            "type": "object",
            "properties": {
                "revenue": MONEY,
                "orders": {"type": "integer"},
                "average_order_value": MONEY,
                "refund_rate": {"type": "number"},
            },
        },
    },
}

SQL_INPUT = {
    "type": "object",
    "required": ["question"],
    "properties": {
        "question": {"type": "string"},
        "dialect": {"type": "string", "enum": ["postgresql", "bigquery", "snowflake"]},
    },
}
SQL_OUTPUT = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "code": {"type": "string", "contentMediaType": "text/x-sql"},
        "language": {"type": "string"},
        "explanation": {"type": "string"},
        "estimated_rows": {"type": "integer"},
    },
}

TRIAGE_INPUT = {
    "type": "object",
    "required": ["subject", "body"],
    "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
}
TRIAGE_OUTPUT = {
    "type": "object",
    "properties": {
        "category": {"type": "string"},
        "priority": {"type": "string", "enum": ["low", "normal", "urgent"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

WEBHOOK = "https://runtime.demo.runboard.example/hooks/{slug}"

# name -> description, versions: [(version, description, input schema, output schema, config)]
AGENTS = {
    "invoice-extractor": {
        "description": "Extracts vendor, line items, totals and dates from supplier invoices "
        "(PDF or scan).",
        "versions": [
            (
                "v1",
                "First release: flat vendor, single total.",
                FILE_INPUT,
                INVOICE_OUTPUT_V1,
                {
                    "model": "gpt-4o-mini",
                    "temperature": 0,
                    "prompt": "You extract data from invoices. Return JSON matching the "
                    "schema. Use null for fields you cannot read.",
                },
            ),
            (
                "v2",
                "Structured addresses, unit prices, tax and due dates.",
                FILE_INPUT,
                INVOICE_OUTPUT_V2,
                {
                    "model": "gpt-4o",
                    "temperature": 0,
                    "prompt": "You are an accounts-payable assistant. Extract the invoice "
                    "into the JSON schema. Amounts are numbers in the invoice currency; "
                    "dates are ISO 8601. Never invent a value: use null.",
                    "ocr": {"engine": "tesseract-5", "dpi": 300},
                },
            ),
        ],
    },
    "receipt-reader": {
        "description": "Reads photographed receipts, with bounding boxes for every field.",
        "versions": [
            (
                "v1",
                "Vision model with grounding.",
                FILE_INPUT,
                RECEIPT_OUTPUT,
                {
                    "model": "gpt-4o",
                    "prompt": "Read the receipt in the image. Return merchant, date, items "
                    "and totals, and a bounding box for each field you read.",
                    "grounding": True,
                },
            )
        ],
    },
    "web-browser": {
        "description": "Navigates supplier portals like a person would: logs in, finds the "
        "document, downloads it.",
        "versions": [
            (
                "v3",
                "Thought/action loop with screenshots.",
                BROWSER_INPUT,
                BROWSER_OUTPUT,
                {
                    "model": "claude-sonnet-4",
                    "prompt": "You control a browser. Think about the page, then choose one "
                    "action: goto, click, type, select, download or complete.",
                    "viewport": {"width": 960, "height": 600},
                    "max_steps": 25,
                },
            )
        ],
    },
    "support-agent": {
        "description": "Answers customer messages; looks up orders and issues refunds "
        "(refunds over 100 need approval).",
        "versions": [
            (
                "v1",
                "Claude with order tools.",
                SUPPORT_INPUT,
                SUPPORT_OUTPUT,
                {
                    "model": "claude-sonnet-4",
                    "prompt": "You are the support assistant of Northwind Outfitters. Be "
                    "brief and kind. Use tools to look up orders. Ask for approval before "
                    "refunding more than 100.",
                    "tools": ["lookup_order", "track_shipment", "issue_refund", "update_address"],
                    "approval_threshold": 100,
                },
            )
        ],
    },
    "daily-sales-report": {
        "description": "Writes the morning sales report from the warehouse, on weekdays.",
        "versions": [
            (
                "v1",
                "SQL over the warehouse, then a Markdown summary.",
                REPORT_INPUT,
                REPORT_OUTPUT,
                {
                    "model": "gpt-4o-mini",
                    "prompt": "Write a short Markdown report of yesterday's sales for the "
                    "leadership team: headline numbers, a table by region, notable changes.",
                },
            )
        ],
    },
    "sql-writer": {
        "description": "Turns analysts' questions into SQL for the warehouse.",
        "versions": [
            (
                "v1",
                "o3-mini with schema context.",
                SQL_INPUT,
                SQL_OUTPUT,
                {
                    "model": "o3-mini",
                    "prompt": "Write one read-only SQL query that answers the question. "
                    "Explain it in one sentence.",
                },
            )
        ],
    },
    # Deleted after its executions ran: they keep its name, and show "Agent removed".
    "ticket-triage": {
        "description": "Classified inbound tickets (retired, replaced by support-agent).",
        "versions": [
            (
                "v1",
                "Zero-shot classifier.",
                TRIAGE_INPUT,
                TRIAGE_OUTPUT,
                {"model": "gpt-4o-mini", "prompt": "Classify the ticket."},
            )
        ],
    },
}
DELETED_AGENT = "ticket-triage"

CUSTOMERS = [
    "acme-corp",
    "globex",
    "initech",
    "umbrella-health",
    "hooli",
    "stark-industries",
    "wayne-logistics",
    "wonka-foods",
    "tyrell-systems",
    "soylent-co",
    "vandelay-import",
    "pied-piper",
]
ENVIRONMENTS = [("production", 80), ("staging", 15), ("development", 5)]
REGIONS = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2", "eu-central-1"]

VENDORS = [
    ("Brightline Office Supplies", "48 Mercer Street", "London", "EC2A 4NE", "GB", "GBP"),
    ("Nordic Paper AB", "Sveavägen 12", "Stockholm", "111 57", "SE", "EUR"),
    ("Cascade Cloud Hosting", "1200 Pine St", "Seattle", "98101", "US", "USD"),
    ("Rheinmetall Druck GmbH", "Hafenstraße 3", "Köln", "50667", "DE", "EUR"),
    ("Atlas Freight Ltd", "Unit 7, Dock Road", "Felixstowe", "IP11 3QW", "GB", "GBP"),
    ("Lumen Electrical Wholesale", "88 King St W", "Toronto", "M5H 1J9", "CA", "USD"),
    ("Porto Coffee Roasters", "Rua das Flores 27", "Porto", "4050-265", "PT", "EUR"),
    ("Summit IT Services", "2100 Market St", "Denver", "80205", "US", "USD"),
]
INVOICE_ITEMS = [
    ("A4 copy paper, 5 reams", 24.50),
    ("Toner cartridge HP 26X", 139.00),
    ("Managed hosting, monthly", 820.00),
    ("Freight London to Rotterdam", 1240.00),
    ("Pallet handling", 35.00),
    ("Consulting, hours", 120.00),
    ("LED panel 600x600", 42.75),
    ("Cable tray 3 m", 18.90),
    ("Espresso beans 1 kg", 21.00),
    ("Laptop stand", 49.99),
    ("Annual support licence", 1800.00),
    ("Customs clearance fee", 95.00),
]
SHOPS = [
    ("Corner Deli", ["Flat white", "Croissant", "Avocado toast", "Orange juice", "Bagel"]),
    ("City Cabs", ["Fare", "Airport surcharge", "Tip"]),
    ("Hotel Meridian", ["Room, 1 night", "Breakfast", "City tax", "Minibar"]),
    ("Office Depot", ["Printer paper", "Sticky notes", "Whiteboard markers", "Stapler"]),
    ("Pizzeria Roma", ["Margherita", "Diavola", "Tiramisu", "Sparkling water", "Espresso"]),
    ("Metro Fuel", ["Unleaded 42.1 L", "Car wash", "Coffee"]),
]
SUPPORT_MESSAGES = [
    ("order_status", "Hi, where is my order {order}? It was supposed to arrive yesterday."),
    ("refund", "The jacket from order {order} arrived torn. I'd like my money back please."),
    ("refund", "I was charged twice for order {order}. Can you refund one of them?"),
    ("address_change", "Can I still change the delivery address for {order}? I moved."),
    ("complaint", "Third time my parcel ({order}) was left outside in the rain. Not happy."),
    ("order_status", "Has {order} shipped yet? Need it before the weekend."),
    ("other", "Do you ship to Iceland? Asking before I order."),
]
SQL_QUESTIONS = [
    "Top 10 customers by revenue last quarter",
    "Weekly active users per plan since January",
    "Which products had a refund rate above 5% last month?",
    "Average delivery time by carrier and region",
    "Monthly recurring revenue churned in the last 6 months",
    "Orders with more than 3 failed payment attempts",
]
TICKET_SUBJECTS = [
    ("Cannot log in after password reset", "account"),
    ("Invoice shows wrong VAT number", "billing"),
    ("API returns 502 intermittently", "technical"),
    ("Please cancel my subscription", "billing"),
    ("Feature request: CSV export", "feedback"),
    ("Data missing from yesterday's export", "technical"),
]
