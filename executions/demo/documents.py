"""Builders for the document agents: invoice-extractor and receipt-reader.

Each takes `subject`, a Random that decides the document (so a rerun of the same
document reads the same invoice), and `rng`, which decides how this run went.
"""

import json
from datetime import date, timedelta
from random import Random

from .catalog import INVOICE_ITEMS, SHOPS, VENDORS
from .drafts import ArtifactDraft, Draft
from .images import render_receipt

FILES = "https://files.demo.runboard.example"
TAX_RATES = {"GB": 0.20, "SE": 0.25, "DE": 0.19, "US": 0.0, "CA": 0.13, "PT": 0.23}


def _money(value: float) -> float:
    return round(value + 1e-9, 2)


def _invoice(subject: Random, today: date) -> dict:
    name, street, city, postal, country, currency = subject.choice(VENDORS)
    issued = today - timedelta(days=subject.randint(1, 40))
    items = []
    for description, price in subject.sample(INVOICE_ITEMS, subject.randint(1, 5)):
        quantity = subject.choice([1, 1, 1, 2, 3, 5, 10, 12])
        unit = _money(price * subject.uniform(0.9, 1.1))
        items.append(
            {
                "description": description,
                "quantity": quantity,
                "unit_price": unit,
                "amount": _money(unit * quantity),
            }
        )
    subtotal = _money(sum(i["amount"] for i in items))
    rate = TAX_RATES[country]
    tax = _money(subtotal * rate)
    return {
        "invoice_number": f"INV-{subject.randint(1000, 99999)}",
        "purchase_order": subject.choice([None, f"PO-{subject.randint(10000, 99999)}"]),
        "dates": {
            "issued": issued.isoformat(),
            "due": (issued + timedelta(days=subject.choice([14, 30, 30, 45]))).isoformat(),
        },
        "vendor": {
            "name": name,
            "vat_id": f"{country}{subject.randint(100000000, 999999999)}" if rate else None,
            "address": {
                "street": street,
                "city": city,
                "postal_code": postal,
                "country": country,
            },
        },
        "bill_to": {
            "name": "Northwind Outfitters Ltd",
            "address": {
                "street": "1 Canal Wharf",
                "city": "Leeds",
                "postal_code": "LS11 5PS",
                "country": "GB",
            },
        },
        "line_items": items,
        "totals": {
            "subtotal": subtotal,
            "tax": tax,
            "tax_rate": rate,
            "total": _money(subtotal + tax),
            "currency": currency,
        },
    }


def _as_v1(invoice: dict) -> dict:
    vendor = invoice["vendor"]
    address = vendor["address"]
    return {
        "invoice_number": invoice["invoice_number"],
        "invoice_date": invoice["dates"]["issued"],
        "vendor": {
            "name": vendor["name"],
            "address": f"{address['street']}, {address['postal_code']} {address['city']}",
        },
        "line_items": [
            {"description": i["description"], "quantity": i["quantity"], "amount": i["amount"]}
            for i in invoice["line_items"]
        ],
        "totals": {"total": invoice["totals"]["total"], "currency": invoice["totals"]["currency"]},
    }


def invoice_extractor(rng: Random, subject: Random, *, version: str, today: date) -> Draft:
    invoice = _invoice(subject, today)
    output = invoice if version == "v2" else _as_v1(invoice)
    vendor_slug = invoice["vendor"]["name"].lower().split()[0]
    url = f"{FILES}/invoices/{vendor_slug}/{invoice['invoice_number']}.pdf"
    pages = subject.choice([1, 1, 2, 3])
    model = "gpt-4o" if version == "v2" else "gpt-4o-mini"
    total = invoice["totals"]
    draft = Draft(
        input={"file": url, "language": "en", "grounding": False},
        output=output,
        summary=(
            f"{invoice['vendor']['name']} {invoice['invoice_number']}: "
            f"{total['currency']} {total['total']:,.2f}, {len(invoice['line_items'])} line "
            f"item{'s' if len(invoice['line_items']) != 1 else ''}"
        ),
    )
    load = draft.step("block", "Load document", 0)
    download = draft.tool_call(
        rng,
        "download_file",
        {"url": url},
        {"bytes": rng.randint(40_000, 900_000), "content_type": "application/pdf", "pages": pages},
        (120, 900),
        parent=load,
    )
    ocr = draft.tool_call(
        rng,
        "ocr",
        {"engine": "tesseract-5", "dpi": 300, "pages": pages},
        {
            "characters": rng.randint(900, 2400) * pages,
            "mean_confidence": round(rng.uniform(0.86, 0.99), 3),
        },
        (800, 2600 * pages),
        parent=load,
    )
    extract = draft.model_call(
        rng,
        model=model,
        name=f"extract invoice ({model})",
        prompt=[
            {"role": "system", "content": "You extract data from invoices. Return JSON."},
            {
                "role": "user",
                "content": f"OCR text of {url.rsplit('/', 1)[1]} ({pages} page(s)):\n"
                f"{invoice['vendor']['name']}\nInvoice {invoice['invoice_number']}\n…",
            },
        ],
        response={"role": "assistant", "content": json.dumps(output)[:400] + "…"},
        prompt_tokens=(1200 * pages, 2200 * pages),
        completion_tokens=(180, 650),
    )
    validate = draft.step(
        "guardrail",
        "validate output against schema",
        rng.randint(3, 25),
        input={"schema": f"invoice-extractor:{version}"},
        output={"valid": True, "errors": []},
    )
    if version == "v2":
        draft.tool_call(
            rng,
            "match_purchase_order",
            {"purchase_order": invoice["purchase_order"], "vendor": invoice["vendor"]["name"]},
            {"matched": invoice["purchase_order"] is not None, "erp": "netsuite"},
            (150, 700),
        )
    draft.fail(
        download,
        f"HTTPError: 403 Forbidden while fetching {url} (signed URL expired at "
        f"{today.isoformat()}T06:00:00Z)",
        "The document link had expired before the agent fetched it; upload it again.",
    )
    draft.fail(
        ocr,
        f"OCRError: page {pages} is blank or unreadable (mean confidence 0.12)",
        "The scan is unreadable: the last page came out blank.",
    )
    draft.fail(
        extract,
        f"RateLimitError: 429 Too Many Requests: rate limit reached for {model} in "
        "organization org-demo on tokens per min (TPM): limit 30000, used 29412, "
        "requested 4211. Please try again in 8.4s.",
        "The model provider rate-limited us; a rerun usually succeeds.",
    )
    draft.fail(
        validate,
        "ValidationError: /totals/total: 'see attached' is not of type 'number'",
        "The model returned a total that is not a number.",
    )
    return draft


def _receipt(subject: Random, today: date) -> dict:
    shop, menu = subject.choice(SHOPS)
    items = [
        {"name": name, "price": _money(subject.uniform(1.8, 38.0))}
        for name in subject.sample(menu, subject.randint(1, min(4, len(menu))))
    ]
    subtotal = _money(sum(i["price"] for i in items))
    tax = _money(subtotal * 0.08)
    day = today - timedelta(days=subject.randint(0, 30))
    return {
        "merchant": shop,
        "date": day.isoformat(),
        "time": f"{subject.randint(7, 22):02d}:{subject.randint(0, 59):02d}",
        "items": items,
        "subtotal": subtotal,
        "tax": tax,
        "total": _money(subtotal + tax),
        "currency": subject.choice(["USD", "USD", "EUR", "GBP"]),
        "payment_method": subject.choice(
            ["VISA **** 4242", "MASTERCARD **** 5454", "AMEX **** 0005", "CASH"]
        ),
    }


def receipt_reader(rng: Random, subject: Random, *, version: str, today: date) -> Draft:
    receipt = _receipt(subject, today)
    image_name = f"IMG_{subject.randint(1000, 9999)}.png"
    confidences = [round(rng.uniform(0.78, 0.995), 3) for _ in range(12)]
    # The boxes are wherever the text lands on the image, so the output needs the
    # rendering; drafts are only built for runs about to be inserted, so this is paid once.
    png, boxes = render_receipt(receipt, confidences)
    output = {**receipt, "bounding_boxes": boxes}
    url = f"{FILES}/receipts/{image_name}"
    draft = Draft(
        input={"file": url, "grounding": True},
        output=output,
        summary=f"{receipt['merchant']}, {receipt['currency']} {receipt['total']:.2f}",
    )
    draft.artifacts.append(
        ArtifactDraft(
            kind="image",
            name=image_name,
            content_type="image/png",
            render=lambda: png,
            bounding_boxes=boxes,
        )
    )
    download = draft.tool_call(
        rng,
        "download_file",
        {"url": url},
        {"bytes": len(png), "content_type": "image/png"},
        (80, 500),
    )
    read = draft.model_call(
        rng,
        model="gpt-4o",
        name="read receipt (gpt-4o vision)",
        prompt=[
            {"role": "system", "content": "Read the receipt. Return JSON with bounding boxes."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
                    {"type": "text", "text": "Read this receipt."},
                ],
            },
        ],
        response={"role": "assistant", "content": json.dumps(receipt)[:300] + "…"},
        prompt_tokens=(1100, 1900),
        completion_tokens=(150, 420),
    )
    draft.tool_call(
        rng,
        "ground_fields",
        {"fields": [b["label"] for b in boxes]},
        {"boxes": len(boxes), "mean_confidence": round(sum(confidences) / len(confidences), 3)},
        (200, 900),
    )
    check = draft.step(
        "guardrail",
        "totals add up",
        rng.randint(1, 8),
        input={"subtotal": receipt["subtotal"], "tax": receipt["tax"], "total": receipt["total"]},
        output={"ok": True},
    )
    draft.fail(
        download,
        "UnidentifiedImageError: cannot identify image file (HEIC is not supported; "
        "convert to PNG or JPEG)",
        "The photo was uploaded as HEIC, which the reader cannot open.",
    )
    draft.fail(
        read,
        "BadRequestError: 400 image too blurry to read any text (detail=high)",
        "The photo is too blurry to read.",
    )
    wrong = _money(receipt["total"] + 1.0)
    draft.fail(
        check,
        f"GuardrailViolation: subtotal {receipt['subtotal']:.2f} + tax {receipt['tax']:.2f} "
        f"!= total {wrong:.2f}",
        "The amounts read do not add up, so the result was not trusted.",
    )
    return draft
