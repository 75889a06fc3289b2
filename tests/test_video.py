"""Stylizing video: any model through the inference contract, steady from frame to frame
(statistics held over the clip, results carried along the optical flow, nothing carried
across a cut), the sound and frame count kept, from the command line and from Python."""

import numpy as np
import pytest
from click.testing import CliRunner
from clips import moving_square, write_clip

pytest.importorskip("av", reason="video needs the video extra (PyAV)")
pytest.importorskip("cv2", reason="video needs the video extra (OpenCV)")

import kstyle  # noqa: E402
from kstyle.cli import main  # noqa: E402
from kstyle.data.video import clip_info, read_frames  # noqa: E402
from kstyle.inference.video import flicker, is_cut, small_gray, steady_frames  # noqa: E402
from kstyle.nets.steady import SteadyTranslator  # noqa: E402


@pytest.fixture(scope="module")
def resnet():
    """A small ResNet translator with instance norm (seeded random weights)."""
    import keras

    from kstyle.nets import resnet_generator

    keras.utils.set_random_seed(3)
    return kstyle.Stylizer.from_network(
        resnet_generator(base_filters=8, num_blocks=1, norm="instance"), {"size_multiple": 4})


def test_held_statistics_start_from_a_scenes_first_frame_and_follow_slowly(resnet):
    network = resnet.inference.network
    steady = SteadyTranslator(network, 4, window=4)
    frames = [moving_square(t, 32, 48) for t in range(3)]
    first = steady(frames[0], new_scene=True)
    # A scene's first frame: its own statistics, as one plain pass gives.
    alone = resnet.inference.run(frames[0])
    assert np.abs(first.astype(int) - alone).max() <= 1
    # A much darker frame: frame by frame gives it its own contrast; held statistics
    # give it the scene's, and the running mean moves a quarter of the way.
    dark = (frames[1] // 3).astype(np.uint8)
    held, own = steady(dark), resnet.inference.run(dark)
    assert np.abs(held.astype(int) - own).mean() > 2
    variances = [f.variance.numpy().copy() for f in steady.fixed]
    steady(dark)
    moved = [f.variance.numpy() for f in steady.fixed]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(variances, moved))
    assert np.abs(steady(dark, new_scene=True).astype(int) - own).max() <= 1


def test_a_cut_is_found_and_nothing_is_carried_across_it(resnet):
    scene_a = [moving_square(t, 32, 48) for t in range(4)]
    scene_b = [(255 - moving_square(t, 32, 48)) // 2 for t in range(4)]
    frames = [*scene_a, *scene_b]
    smalls = [small_gray(f) for f in frames]
    cuts = [i for i in range(len(frames)) if is_cut(smalls[i - 1] if i else None, smalls[i])]
    assert cuts == [0, 4]
    starts = []

    def run(frame, new_scene=False):
        starts.append(new_scene)
        return resnet.inference.run(frame)

    outs = list(steady_frames(run, frames, carry=0.9))
    assert starts == [True, False, False, False, True, False, False, False]
    # The first frame after the cut is its own result: nothing of the last scene.
    assert np.array_equal(outs[4], resnet.inference.run(frames[4]))
    assert not np.array_equal(outs[5], resnet.inference.run(frames[5]))


def test_stylize_a_clip_from_the_command_line_keeps_frames_rate_and_sound(tiny_run,
                                                                           tmp_path):
    import av

    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=10, size=(40, 56), rate=12)
    result = CliRunner().invoke(main, ["stylize", str(clip), "--model", str(tiny_run),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "clip.mp4"
    info, source = clip_info(out), clip_info(clip)
    assert (info.frames, info.rate, info.width, info.height) == (10, 12, 56, 40)
    assert info.audio == source.audio == "aac"

    def audio(path):
        with av.open(str(path)) as container:
            return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]

    assert audio(out) == audio(clip)
    # Not run again over a result that exists, and never over the input.
    again = CliRunner().invoke(main, ["stylize", str(clip), "--model", str(tiny_run),
                                      "--out", str(tmp_path / "out")])
    assert again.exit_code == 2 and "--overwrite" in again.output
    onto = CliRunner().invoke(main, ["stylize", str(clip), "--model", str(tiny_run),
                                     "--out", str(clip)])
    assert onto.exit_code == 2 and "input" in onto.output
    evaluated = CliRunner().invoke(main, ["eval", "--video", str(clip), str(out)])
    assert evaluated.exit_code == 0 and "warping error" in evaluated.output
    no_model = CliRunner().invoke(main, ["stylize", str(clip), "--style", str(clip)])
    assert no_model.exit_code == 2 and "give --model" in no_model.output


def test_a_folder_of_clips_and_photos_is_stylized_whole(tiny_run, tmp_path):
    from PIL import Image

    folder = tmp_path / "media"
    folder.mkdir()
    write_clip(folder / "a.mp4", frames=4, size=(32, 40), rate=10, audio=None)
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(folder / "b.png")
    result = CliRunner().invoke(main, ["stylize", str(folder), "--model", str(tiny_run),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert clip_info(tmp_path / "out" / "a.mp4").frames == 4
    assert Image.open(tmp_path / "out" / "b.png").size == (24, 20)


def test_steadiness_cuts_the_flicker_without_stylizing_less(resnet, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=16, size=(48, 64), rate=15, audio=None)
    steady = kstyle.stylize(str(clip), model=resnet, out=tmp_path / "steady.mp4",
                            progress=False)
    flat = kstyle.stylize(str(clip), model=resnet, out=tmp_path / "flat.mp4",
                          temporal=False, progress=False)
    assert clip_info(steady).frames == clip_info(flat).frames == 16
    on, off = flicker(clip, steady), flicker(clip, flat)
    assert on["pairs"] == off["pairs"] == 15
    assert on["warping_error"] < 0.6 * off["warping_error"]
    assert abs(on["input_distance"] - off["input_distance"]) < 0.1 * off["input_distance"]


def test_a_style_model_holds_its_content_statistics_over_the_clip(tmp_path):
    from kstyle.nets.adain import adain_decoder, adain_encoder, adain_stylizer

    net = adain_stylizer(adain_encoder(), adain_decoder(width=0.125, name="decoder"))
    adain = kstyle.Stylizer.from_network(net, {"kind": "adain"})
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=6, size=(32, 40), rate=10, audio=None)
    style = np.random.default_rng(0).integers(0, 256, (24, 24, 3), np.uint8)
    out = adain(str(clip), out=tmp_path / "out.mp4", style=style, strength=0.8,
                progress=False)
    frames = list(read_frames(out))
    assert len(frames) == 6 and frames[0].shape == (32, 40, 3)
    run = adain.inference.clip(style=[style], strength=0.8)
    first = run(next(read_frames(clip)), new_scene=True)
    alone = adain.stylize_array(next(read_frames(clip)), style=style, strength=0.8)
    assert np.abs(first.astype(int) - alone).max() <= 1
