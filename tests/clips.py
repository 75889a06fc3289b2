"""Small video clips made for the tests (moving shapes, a tone on the audio track)."""

from fractions import Fraction

import numpy as np


def moving_square(t: int, h: int, w: int) -> np.ndarray:
    """Frame ``t`` of a clip: a bright square sliding right over a gradient."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                      np.full_like(x, 90)], axis=-1).astype(np.uint8)
    top, left = h // 4, (2 * t) % max(w - h // 2, 1)
    frame[top:top + h // 2, left:left + h // 2] = (250, 240, 40)
    return frame


def write_clip(path, frames=12, size=(48, 64), rate=15, audio="aac", pix_fmt="yuv420p"):
    """Writes an H.264 clip of ``frames`` frames of ``size`` (h, w) at ``rate`` fps, with a
    440 Hz tone as ``audio`` (None: no audio track); returns the frames written."""
    import av

    h, w = size
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=Fraction(rate))
    video.width, video.height, video.pix_fmt = w, h, pix_fmt
    sound = out.add_stream(audio, rate=16000) if audio else None
    written = []
    for t in range(frames):
        frame = moving_square(t, h, w)
        written.append(frame)
        picture = av.VideoFrame.from_ndarray(frame, "rgb24")
        picture.pts = t
        for packet in video.encode(picture):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if sound is not None:
        seconds = np.arange(16000 * frames // rate) / 16000
        tone = (0.3 * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)[None]
        chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        for packet in sound.encode(chunk):
            out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    out.close()
    return written
