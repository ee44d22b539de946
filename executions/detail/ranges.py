"""HTTP range requests (RFC 9110 section 14) for artifact files, so a browser's video
player can seek in a recording without downloading all of it first.

One range per request (`bytes=a-b`, `bytes=a-`, `bytes=-n`), which is what media
players send; a request for several ranges gets the whole file with 200, as the
RFC allows. A range that starts past the end is answered 416 with the size.
"""

from __future__ import annotations

import re

from django.http import FileResponse, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.I)
CHUNK = 64 * 1024


class Unsatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions, inclusive; None to serve the whole file.

    Raises Unsatisfiable for a range that selects no byte of a file of `size` bytes."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header)
    if not match:
        return None  # not a byte range we understand: the whole file, as if unasked
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    if end < start:
        return None  # an invalid range is ignored (RFC 9110 14.1.1)
    return start, min(end, size - 1)


def _chunks(handle, start: int, length: int):
    try:
        handle.seek(start)
        left = length
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        handle.close()


def ranged_response(request, handle, *, size: int, **file_response_kwargs) -> HttpResponse:
    """A FileResponse for `handle`, or its 206 part when the request asks for a range."""
    try:
        wanted = parse_range(request.headers.get("Range", ""), size)
    except Unsatisfiable:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if wanted is None:
        response = FileResponse(handle, **file_response_kwargs)
        response["Accept-Ranges"] = "bytes"
        return response
    start, end = wanted
    length = end - start + 1
    # FileResponse works out the headers (type, disposition); the body is the slice.
    whole = FileResponse(handle, **file_response_kwargs)
    response = StreamingHttpResponse(_chunks(handle, start, length), status=206)
    for name in ("Content-Type", "Content-Disposition"):
        if name in whole:
            response[name] = whole[name]
    response["Content-Length"] = str(length)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response
