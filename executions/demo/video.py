"""Screen recordings for the demo's browser agent: its screenshots, in order, encoded
as a short WebM (VP8) video with PyAV, the way a browser agent's session recording
looks. Each screenshot holds for a moment, and a keyframe starts every shot, so the
player can seek to any of them."""

from __future__ import annotations

import io

FPS = 4
SECONDS_PER_SHOT = 1.5
MAX_WIDTH = 960


def screencast(shots: list[bytes]) -> bytes:
    """The PNG `shots` as one WebM video, SECONDS_PER_SHOT each."""
    import av
    from PIL import Image

    if not shots:
        raise ValueError("shots: a recording needs at least one screenshot.")
    frames = [Image.open(io.BytesIO(png)).convert("RGB") for png in shots]
    width, height = frames[0].size
    if width > MAX_WIDTH:
        width, height = MAX_WIDTH, round(height * MAX_WIDTH / width)
    # VP8 in yuv420p needs even dimensions.
    width, height = width - width % 2, height - height % 2
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "300k"}
        repeat = max(1, round(FPS * SECONDS_PER_SHOT))
        for image in frames:
            if image.size != (width, height):
                image = image.resize((width, height))
            frame = av.VideoFrame.from_image(image)
            for n in range(repeat):
                frame.pict_type = av.video.frame.PictureType.I if n == 0 else 0
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
