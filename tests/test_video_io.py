"""Video files in and out: frames streamed, frame count and rate kept, the audio copied as
it is, odd sizes padded (never cropped), and no finished-looking file from a killed run."""

import numpy as np
import pytest
from clips import write_clip

av = pytest.importorskip("av", reason="video needs the video extra (PyAV)")

from kstyle.data.video import clip_info, read_frames, write_video  # noqa: E402
from kstyle.errors import DataError, KstyleError  # noqa: E402


def audio_of(path):
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [bytes(p) for p in container.demux(stream) if p.size]
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray().ravel()
                                  for f in container.decode(container.streams.audio[0])])
    return stream.codec_context.name, packets, samples


def test_frames_rate_and_audio_survive_a_round_trip(tmp_path):
    source = tmp_path / "clip.mp4"
    written = write_clip(source, frames=12, size=(48, 64), rate=15)
    info = clip_info(source)
    assert (info.width, info.height, info.rate, info.frames, info.audio) == (64, 48, 15, 12,
                                                                            "aac")
    frames = list(read_frames(source))
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    assert np.abs(frames[5].astype(int) - written[5]).mean() < 6  # lossy H.264
    out = write_video((255 - f for f in read_frames(source)), source, tmp_path / "out.mp4")
    again = clip_info(out)
    assert (again.width, again.height, again.rate, again.frames) == (64, 48, 15, 12)
    assert np.abs(next(read_frames(out)).astype(int) - (255 - frames[0])).mean() < 6
    codec, packets, samples = audio_of(source)
    assert audio_of(out)[0] == codec and audio_of(out)[1] == packets
    assert np.array_equal(audio_of(out)[2], samples)


def test_an_odd_size_is_padded_for_the_encoder_never_cropped(tmp_path):
    source = tmp_path / "odd.mp4"
    write_clip(source, frames=6, size=(29, 37), pix_fmt="yuv444p", audio=None)
    frames = list(read_frames(source))
    assert frames[0].shape == (29, 37, 3)
    out = write_video(frames, source, tmp_path / "out.mp4")
    info = clip_info(out)
    assert (info.width, info.height, info.frames, info.audio) == (38, 30, 6, None)
    first = next(read_frames(out))
    # The picture is all there; the added column and row repeat its edge.
    assert np.abs(first[:29, :37].astype(int) - frames[0]).mean() < 8
    assert np.abs(first[:29, 37].astype(int) - first[:29, 36]).mean() < 8


def test_a_killed_write_leaves_no_file_and_bad_files_are_named(tmp_path):
    source = tmp_path / "clip.mp4"
    write_clip(source, frames=8)

    def dies():
        yield from list(read_frames(source))[:3]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(dies(), source, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(DataError, match="notes.mp4'.*cannot be read"):
        clip_info(tmp_path / "notes.mp4")
    with pytest.raises(DataError, match="does not exist"):
        list(read_frames(tmp_path / "nowhere.mp4"))


def test_a_missing_extra_is_named(monkeypatch):
    import importlib.util

    from kstyle.data.video import check_installed

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cv2" else real(name, *a))
    with pytest.raises(KstyleError, match=r'video needs OpenCV: pip install "kstyle\[video\]"'):
        check_installed()
