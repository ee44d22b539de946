"""Real PNGs for the demo: photographed-looking receipts whose bounding boxes match the
text drawn on them, and browser screenshots with the element an action targeted outlined.

Pillow's bundled font is used so the images look the same on every machine.
"""

import io
from functools import cache

from PIL import Image, ImageDraw, ImageFont

RECEIPT_WIDTH = 360
SCREEN_WIDTH, SCREEN_HEIGHT = 960, 600


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # Flat synthetic images compress well even at the fastest level; seeding stays quick.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def render_receipt(receipt: dict, confidences: list[float]) -> tuple[bytes, list[dict]]:
    """The receipt as a PNG, and a bounding box per field read, as fractions of the image.

    `receipt` has merchant, date, time, items [{name, price}], subtotal, tax, total,
    currency, payment_method. Boxes come from where the text was actually drawn.
    """
    lines: list[tuple[str, str, int, str | None]] = []  # (left, right, size, label)
    lines.append((receipt["merchant"].upper(), "", 22, "merchant"))
    lines.append((f"{receipt['date']}  {receipt['time']}", "", 14, "date"))
    lines.append(("-" * 34, "", 14, None))
    for i, item in enumerate(receipt["items"]):
        lines.append((item["name"], f"{item['price']:.2f}", 15, f"items/{i}"))
    lines.append(("-" * 34, "", 14, None))
    lines.append(("Subtotal", f"{receipt['subtotal']:.2f}", 15, "subtotal"))
    lines.append(("Tax", f"{receipt['tax']:.2f}", 15, "tax"))
    lines.append((f"TOTAL {receipt['currency']}", f"{receipt['total']:.2f}", 20, "total"))
    lines.append((receipt["payment_method"], "", 14, "payment_method"))
    lines.append(("Thank you for your visit!", "", 13, None))

    height = 40 + sum(size + 12 for _, _, size, _ in lines) + 30
    image = Image.new("RGB", (RECEIPT_WIDTH, height), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    boxes = []
    y = 30
    confidence = iter(confidences)
    for left, right, size, label in lines:
        font = _font(size)
        if label in {"merchant", "date"} or label is None:
            width = draw.textlength(left, font=font)
            x0 = (RECEIPT_WIDTH - width) / 2
        else:
            x0 = 24
        draw.text((x0, y), left, fill=(30, 30, 30), font=font)
        box = draw.textbbox((x0, y), left, font=font)
        if right:
            xr = RECEIPT_WIDTH - 24 - draw.textlength(right, font=font)
            draw.text((xr, y), right, fill=(30, 30, 30), font=font)
            box = (box[0], box[1], *draw.textbbox((xr, y), right, font=font)[2:])
        if label:
            boxes.append(
                {
                    "label": label,
                    "x": round(box[0] / RECEIPT_WIDTH, 4),
                    "y": round(box[1] / height, 4),
                    "width": round((box[2] - box[0]) / RECEIPT_WIDTH, 4),
                    "height": round((box[3] - box[1]) / height, 4),
                    "confidence": next(confidence, 0.9),
                }
            )
        y += size + 12
    # A torn-paper edge, so it reads as a slip of paper.
    for x in range(0, RECEIPT_WIDTH, 12):
        draw.polygon([(x, height), (x + 6, height - 6), (x + 12, height)], fill=(200, 200, 200))
    return _png(image), boxes


# A page a browser agent can be on: title, and the elements it shows (label, kind).
PAGES = {
    "login": ("Sign in", [("Email", "input"), ("Password", "input"), ("Sign in", "button")]),
    "dashboard": (
        "Dashboard",
        [("Invoices", "link"), ("Orders", "link"), ("Settings", "link"), ("Search", "input")],
    ),
    "invoices": (
        "Invoices",
        [("Filter by date", "input"), ("INV-2291", "row"), ("INV-2290", "row"), ("Next", "link")],
    ),
    "invoice": (
        "Invoice detail",
        [("Amount due", "text"), ("Download PDF", "button"), ("Back", "link")],
    ),
    "captcha": ("Verify you are human", [("I'm not a robot", "input"), ("Continue", "button")]),
}


@cache
def render_screenshot(
    site: str, page: str, target: int | None, typed: tuple[str, ...] = ()
) -> bytes:
    """A browser screenshot of `page` on `site`, with element `target` outlined in red
    and `typed` filled into the page's inputs, in order.

    Cached: a few dozen distinct screens make up every demo run, so each is drawn once.
    """
    title, elements = PAGES[page]
    image = Image.new("RGB", (SCREEN_WIDTH, SCREEN_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    # Browser chrome: tab strip and address bar.
    draw.rectangle([0, 0, SCREEN_WIDTH, 34], fill=(222, 225, 230))
    draw.rounded_rectangle([10, 6, 220, 34], radius=6, fill=(255, 255, 255))
    draw.text((22, 12), f"{title} - {site}"[:34], fill=(40, 40, 40), font=_font(12))
    draw.rectangle([0, 34, SCREEN_WIDTH, 70], fill=(245, 246, 248))
    draw.rounded_rectangle([60, 40, SCREEN_WIDTH - 20, 64], radius=12, fill=(255, 255, 255))
    draw.text((76, 45), f"https://{site}/{page}", fill=(90, 90, 90), font=_font(13))
    # Site header.
    draw.rectangle([0, 70, SCREEN_WIDTH, 120], fill=(33, 62, 110))
    draw.text((24, 84), site.split(".")[0].capitalize(), fill=(255, 255, 255), font=_font(22))
    draw.text((40, 140), title, fill=(20, 20, 20), font=_font(26))
    y = 200
    values = iter(typed)
    for i, (label, kind) in enumerate(elements):
        if kind == "input":
            draw.text((40, y), label, fill=(60, 60, 60), font=_font(14))
            rect = [40, y + 22, 460, y + 56]
            draw.rectangle(rect, outline=(160, 160, 170), width=1)
            draw.text((50, y + 31), next(values, ""), fill=(20, 20, 20), font=_font(15))
            step = 80
        elif kind == "button":
            rect = [40, y, 220, y + 40]
            draw.rounded_rectangle(rect, radius=6, fill=(40, 110, 220))
            draw.text((60, y + 11), label, fill=(255, 255, 255), font=_font(15))
            step = 60
        elif kind == "row":
            rect = [40, y, SCREEN_WIDTH - 40, y + 40]
            draw.rectangle(rect, fill=(248, 249, 251), outline=(230, 230, 235))
            draw.text((56, y + 11), label, fill=(30, 30, 30), font=_font(15))
            draw.text((SCREEN_WIDTH - 200, y + 11), "Unpaid", fill=(180, 90, 0), font=_font(15))
            step = 48
        else:
            rect = [40, y, 40 + 12 + int(draw.textlength(label, font=_font(16))), y + 24]
            colour = (40, 110, 220) if kind == "link" else (30, 30, 30)
            draw.text((46, y + 3), label, fill=colour, font=_font(16))
            step = 40
        if i == target:
            outline = [rect[0] - 4, rect[1] - 4, rect[2] + 4, rect[3] + 4]
            draw.rectangle(outline, outline=(230, 40, 40), width=3)
        y += step
    return _png(image)
