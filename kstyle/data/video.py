"""Video files: frames streamed in and out with PyAV, the audio copied as it is.

Frames are decoded one at a time as uint8 RGB arrays and encoded one at a time, so memory
does not grow with the clip's length. The output keeps the input's frame count, frame
rate and picture; a side of odd length is padded by one row or column (repeating the
edge) for the encoder's 4:2:0 chroma, never cropped. The audio stream is copied packet by
packet, without re-encoding, where the output container takes its codec (else it is
re-encoded to AAC, and said). The file is written under a temporary name and renamed
when complete: a killed run leaves no file that looks finished.

Needs the ``video`` extra (``pip install "kstyle[video]"``): PyAV, which brings its own
FFmpeg, and OpenCV (optical flow).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from kstyle.errors import DataError, KstyleError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")

#: What the ``video`` extra installs, by import name.
NEEDS = ("av", "cv2")


def check_installed() -> None:
    """Raises a one-line KstyleError naming the extra when a video package is missing."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        names = {"av": "PyAV", "cv2": "OpenCV"}
        raise KstyleError(f"video needs {', '.join(names[m] for m in missing)}: pip install "
                          "\"kstyle[video]\"")


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def result_suffix(path) -> str:
    """The file type a stylized result of ``path`` is written as: a video's own (an
    ``.avi`` as ``.mp4``), ``.png`` for an image."""
    suffix = Path(path).suffix.lower()
    return ".png" if suffix not in VIDEO_EXTENSIONS else ".mp4" if suffix == ".avi" else suffix


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    """What a clip holds: picture size, frame rate, frame count (from the container;
    an estimate for some formats), and its audio codec (None: no audio)."""

    width: int
    height: int
    rate: Fraction
    frames: int
    audio: str | None


def _open(path):
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"video file {path!r} does not exist")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise DataError(f"video file {path!r}: cannot be read ({e})") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"video file {path!r}: holds no video stream")
    return container


def clip_info(path) -> ClipInfo:
    """The :class:`ClipInfo` of a video file."""
    with _open(path) as container:
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        frames = video.frames or int(round(float(container.duration or 0) / 1e6 * rate))
        audio = container.streams.audio[0].codec_context.name if container.streams.audio \
            else None
        return ClipInfo(video.codec_context.width, video.codec_context.height,
                        Fraction(rate), int(frames), audio)


def read_frames(path) -> Iterator[np.ndarray]:
    """The frames of a video file, one uint8 ``HxWx3`` RGB array at a time.

    Raises:
        DataError: the file cannot be opened or decoded (naming it and the frame).
    """
    import av

    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                index += 1
        except av.error.FFmpegError as e:
            raise DataError(f"video file {os.fspath(path)!r}: frame {index} cannot be "
                            f"decoded ({e})") from None


def even(array: np.ndarray) -> np.ndarray:
    """A frame padded by repeating its last row / column to even sides (4:2:0 encoding)."""
    h, w = array.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return array
    return np.pad(array, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_video(frames: Iterable[np.ndarray], source, dest, *, crf: int = 18,
                log=print) -> Path:
    """Encodes ``frames`` (uint8 RGB, the source's size) to ``dest`` (H.264 in MP4/MOV/MKV,
    VP9 in WebM), at the source's frame rate, with the source's audio copied.

    The file appears under its name only once complete.

    Returns:
        ``dest``.
    """
    import av

    from kstyle.runs import atomic_path

    dest = Path(dest)
    info = clip_info(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, suffix=dest.suffix) as tmp, _open(source) as src:
        out = av.open(os.fspath(tmp), "w", format=_container_format(dest))
        try:
            webm = dest.suffix.lower() == ".webm"
            video = out.add_stream("libvpx-vp9" if webm else "libx264", rate=info.rate)
            video.width, video.height = info.width + info.width % 2, info.height + info.height % 2
            video.pix_fmt = "yuv420p"
            video.options = {"crf": str(crf)} if not webm else {"crf": str(crf + 12), "b": "0"}
            audio_in = src.streams.audio[0] if src.streams.audio else None
            audio_out, encoder = _audio_stream(out, audio_in, dest, log)
            pending = _demux_audio(src, audio_in) if audio_in is not None else iter(())
            next_audio = next(pending, None)
            for i, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(even(np.ascontiguousarray(rgb)), "rgb24")
                frame.pts = i
                frame.time_base = 1 / info.rate
                for packet in video.encode(frame):
                    out.mux(packet)
                # Audio up to this frame's time, interleaved with the video.
                now = (i + 1) / info.rate
                while next_audio is not None and _seconds(next_audio) <= now:
                    _mux_audio(out, next_audio, audio_out, encoder)
                    next_audio = next(pending, None)
            for packet in video.encode():
                out.mux(packet)
            while next_audio is not None:
                _mux_audio(out, next_audio, audio_out, encoder)
                next_audio = next(pending, None)
            if encoder is not None:
                for packet in audio_out.encode():
                    out.mux(packet)
        finally:
            out.close()
    return dest


def _container_format(dest: Path) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
            ".webm": "webm", ".avi": "avi"}.get(dest.suffix.lower(), "mp4")


# Audio codecs each container takes as they are (copied, not re-encoded).
_COPYABLE = {"mp4": {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"},
             "mov": {"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le", "ac3"},
             "matroska": None,  # anything
             "webm": {"opus", "vorbis"},
             "avi": {"mp3", "ac3", "pcm_s16le"}}


def _audio_stream(out, audio_in, dest: Path, log):
    """The output's audio stream: a copy of the input's (``encoder`` None), or, where the
    container does not take its codec, a new AAC / Opus one (``encoder`` the decoder's
    resampler target)."""
    if audio_in is None:
        return None, None
    codec = audio_in.codec_context.name.removesuffix("float")  # mp3float decodes mp3
    allowed = _COPYABLE.get(_container_format(dest))
    if allowed is None or codec in allowed:
        return out.add_stream_from_template(audio_in), None
    target = "libopus" if dest.suffix.lower() == ".webm" else "aac"
    log(f"{dest.name}: the {codec} audio is re-encoded to {target} ({dest.suffix} files "
        "cannot hold it as it is)")
    stream = out.add_stream(target, rate=audio_in.codec_context.sample_rate or 48000)
    return stream, True


def _demux_audio(src, stream):
    for packet in src.demux(stream):
        if packet.dts is not None:
            yield packet


def _seconds(packet) -> float:
    time = packet.pts if packet.pts is not None else packet.dts
    return float(time * packet.time_base)


def _mux_audio(out, packet, audio_out, encoder) -> None:
    if encoder is None:
        packet.stream = audio_out
        out.mux(packet)
        return
    for frame in packet.decode():
        frame.pts = None
        for encoded in audio_out.encode(frame):
            out.mux(encoded)
