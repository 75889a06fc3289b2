"""Neural style transfer by optimization (Gatys et al.), on a random-weight VGG19.

No ImageNet weights can be had offline: these tests check the mechanics (losses fall,
colors are kept, sizes and kinds come back) with random VGG19 weights read from a local
file, which also exercises the local-weights path.
"""

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

import kstyle
from kstyle.cli import main
from kstyle.errors import ModelLoadError, StyleOptionError
from kstyle.models.gatys import STYLE_LAYERS, Gatys, pyramid
from kstyle.nets.vgg import VGG19_WEIGHTS_ENV


@pytest.fixture(scope="module")
def vgg_file(random_vgg):
    return str(random_vgg[0] / "vgg19.weights.h5")


@pytest.fixture(scope="module")
def gatys(vgg_file):
    # Random VGG19 features are small: weights that make every term matter here.
    return Gatys.build_from_options(vgg_weights=vgg_file, content_weight=1e3,
                                    style_weight=1e3, tv_weight=1e3)


def smooth_image(height, width, seed, colors=None):
    """A float [-1, 1] image [1, H, W, 3]: colored gradients with a bright disc."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    colors = rng.uniform(-0.6, 0.6, (3, 3)) if colors is None else np.asarray(colors)
    image = colors[0] * x[..., None] + colors[1] * (1 - y[..., None])
    image[(y - 0.5) ** 2 + (x - 0.4) ** 2 < 0.04] = colors[2]
    return tf.constant(np.clip(image, -1, 1)[None], tf.float32)


def stripes(height, width):
    """A high-contrast striped style image in [-1, 1]."""
    x = np.arange(width)[None, :, None] + np.arange(height)[:, None, None]
    image = np.where((x // 3) % 2, 0.9, -0.9) * np.array([1.0, -0.5, 0.2])
    return tf.constant(image[None], tf.float32)


def test_pyramid_halves_to_the_start_size():
    assert pyramid(300, 200, 512) == [(300, 200)]
    assert pyramid(1024, 768, 512) == [(512, 384), (1024, 768)]
    assert pyramid(2000, 1000, 512) == [(500, 250), (1000, 500), (2000, 1000)]
    assert pyramid(2000, 1000, 0) == [(2000, 1000)]


def test_blended_grams_are_the_weighted_mean(gatys):
    a, b = stripes(32, 32), smooth_image(32, 32, 0)
    only_a = gatys.style_grams([a])
    mixed = gatys.style_grams([a, b], blend=[3.0, 1.0])
    only_b = gatys.style_grams([b])
    for layer in STYLE_LAYERS:
        np.testing.assert_allclose(mixed[layer], 0.75 * only_a[layer] + 0.25 * only_b[layer],
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="one non-negative weight per style"):
        gatys.style_grams([a, b], blend=[1.0])


def test_objective_weights_its_terms(gatys):
    content, style = smooth_image(32, 32, 0), stripes(32, 32)
    features = gatys(content)[gatys.content_layer]
    grams = gatys.style_grams([style])
    logs = gatys.objective(smooth_image(32, 32, 1), features, grams)
    expected = (gatys.content_weight * logs["content_loss"]
                + gatys.style_weight * logs["style_loss"] + gatys.tv_weight * logs["tv_loss"])
    assert float(logs["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(logs["content_loss"]) > 0 and float(logs["style_loss"]) > 0
    same = gatys.objective(content, features, grams)
    assert float(same["content_loss"]) == 0.0


def test_a_few_steps_lower_the_total_loss(gatys):
    # The style's long side is the content's, so that the transfer uses it as it is.
    content, style = smooth_image(32, 48, 0), stripes(40, 48)
    features = gatys(content)[gatys.content_layer]
    grams = gatys.style_grams([style])
    before = float(gatys.objective(content, features, grams)["loss"])
    out = gatys.transfer(content, [style], steps=15, start_size=0, verbose=0)
    after = float(gatys.objective(out, features, grams)["loss"])
    assert out.shape == content.shape
    assert float(tf.reduce_min(out)) >= -1.0 and float(tf.reduce_max(out)) <= 1.0
    assert after < 0.9 * before
    # The logs are those of the last step, taken before its update.
    assert after < gatys.last_logs["loss"] < before


def test_coarse_to_fine_runs_each_stage_and_reports_frames(gatys):
    content, style = smooth_image(40, 64, 2), stripes(24, 24)
    frames = []
    out = gatys.transfer(content, [style], steps=4, start_size=32, verbose=0,
                         callback=lambda stage, step, image: frames.append(
                             (stage, step, tuple(image.shape))),
                         callback_every=2)
    assert out.shape == content.shape
    # Stage 1 at 20x32 runs 4 steps, stage 2 at full size 2; a frame every 2 steps and
    # one at each stage's end.
    assert frames == [(1, 2, (1, 20, 32, 3)), (1, 4, (1, 20, 32, 3)), (1, 4, (1, 20, 32, 3)),
                      (2, 6, (1, 40, 64, 3)), (2, 6, (1, 40, 64, 3))]


def test_preserve_color_keeps_the_content_chroma(gatys):
    content = smooth_image(32, 32, 3, colors=[[0.5, -0.2, 0.1], [-0.3, 0.2, 0.4],
                                             [0.2, 0.3, -0.4]])
    style = stripes(32, 32)
    out = gatys.transfer(content, [style], steps=10, start_size=0, preserve_color=True,
                         init="noise", verbose=0)
    yiq_out = tf.image.rgb_to_yiq((out + 1) / 2).numpy()
    yiq_content = tf.image.rgb_to_yiq((content + 1) / 2).numpy()
    # Chroma (I, Q) is the content's; luminance has been changed by the optimization. Where
    # the new luminance with the content's chroma leaves the RGB cube, clipping moves the
    # chroma: a pixel or two of 1,024, by as much as the luminance overshot (up to 2.7e-2
    # with oneDNN on AVX2, 2e-2 on AVX-512), so those are checked to be clipped ones.
    chroma_diff = np.abs(yiq_out[..., 1:] - yiq_content[..., 1:]).max(axis=-1)
    clipped = np.any(np.abs(out) >= 1 - 1e-6, axis=-1)
    assert np.mean(chroma_diff <= 2e-3) > 0.99
    assert np.all(clipped[chroma_diff > 2e-3]), (chroma_diff.max(), clipped.sum())
    assert np.abs(yiq_out[..., 0] - yiq_content[..., 0]).mean() > 0.01
    # Without it, the style's colors come through.
    plain = gatys.transfer(content, [style], steps=10, start_size=0, init="noise", verbose=0)
    chroma_error = np.abs(tf.image.rgb_to_yiq((plain + 1) / 2).numpy()[..., 1:]
                          - yiq_content[..., 1:]).mean()
    assert chroma_error > 0.02


# --------------------------------------------------------------------------- the API


@pytest.fixture
def style_file(tmp_path):
    path = tmp_path / "style.png"
    Image.fromarray(((stripes(30, 30).numpy()[0] + 1) * 127.5).astype(np.uint8)).save(path)
    return path


def options(vgg_file, **extra):
    # size None: the content's own size (the default is 512 px, slow for a test).
    return {"steps": 2, "size": None, "vgg_weights": vgg_file, "verbose": 0, **extra}


def test_stylize_with_a_style_keeps_size_and_kind(vgg_file, style_file, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    out = kstyle.stylize(image, style=style_file, **options(vgg_file))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    gray = kstyle.stylize(image[..., 0], style=Image.open(style_file), **options(vgg_file))
    assert gray.shape == (37, 45) and gray.dtype == np.uint8
    as_float = kstyle.stylize(image / 255.0, style=np.asarray(Image.open(style_file)),
                              **options(vgg_file))
    assert as_float.shape == image.shape and as_float.dtype == np.float32
    pil = kstyle.stylize(Image.fromarray(image), style=style_file, **options(vgg_file))
    assert isinstance(pil, Image.Image) and pil.size == (45, 37)
    src = tmp_path / "photo.jpg"
    Image.fromarray(image).save(src)
    dest = kstyle.stylize(src, style=style_file, **options(vgg_file, size=24))
    assert dest == tmp_path / "photo_kstyle.png"
    assert Image.open(dest).size == (24, 20)


def test_several_styles_and_frames(vgg_file, style_file, tmp_path):
    image = np.full((24, 24, 3), 90, np.uint8)
    out = kstyle.transfer_style(image, [style_file, image], blend=[0.8, 0.2],
                                frames=tmp_path / "frames", save_every=1,
                                **options(vgg_file))
    assert out.shape == (24, 24, 3)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == \
        ["frame_00001.png", "frame_00002.png"]


def test_style_option_errors_name_the_option(vgg_file, style_file, tmp_path, monkeypatch):
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(StyleOptionError, match="blend"):
        kstyle.stylize(image, style=[style_file], blend=[1.0, 2.0], **options(vgg_file))
    with pytest.raises(StyleOptionError, match="init = 'painting'"):
        kstyle.stylize(image, style=style_file, init="painting", **options(vgg_file))
    with pytest.raises(StyleOptionError, match="steps = 0"):
        kstyle.stylize(image, style=style_file, **{**options(vgg_file), "steps": 0})
    with pytest.raises(StyleOptionError, match="block9_conv9"):
        kstyle.stylize(image, style=style_file, content_layer="block9_conv9",
                       **options(vgg_file))
    with pytest.raises(StyleOptionError, match="style_layer_weights has 2 values"):
        kstyle.stylize(image, style=style_file, style_layer_weights=[1.0, 2.0],
                       **options(vgg_file))
    # Neither model nor style: the default published model (here, with nowhere to get it
    # from: no network, an empty mirror).
    monkeypatch.setenv("KSTYLE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("KSTYLE_ZOO_MIRROR", str(tmp_path / "empty_mirror"))
    monkeypatch.delenv("KSTYLE_DEFAULT_MODEL", raising=False)
    with pytest.raises(ModelLoadError, match="mosaic: could not download mosaic.pth"):
        kstyle.stylize(image)
    with pytest.raises(ModelLoadError, match="/nowhere/vgg.h5"):
        kstyle.stylize(image, style=style_file, **{**options(vgg_file),
                                                   "vgg_weights": "/nowhere/vgg.h5"})


def test_cli_style_transfer_writes_the_file_and_frames(vgg_file, style_file, tmp_path,
                                                       monkeypatch, tiny_run):
    src = tmp_path / "photo.png"
    Image.fromarray(np.full((30, 40, 3), 100, np.uint8)).save(src)
    # The weights come from the environment variable, as a user without a Keras cache
    # would set it.
    monkeypatch.setenv(VGG19_WEIGHTS_ENV, vgg_file)
    out = tmp_path / "result.jpg"
    result = CliRunner().invoke(main, ["stylize", str(src), "--style", str(style_file),
                                       "--steps", "2", "--size", "32", "--save-every", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 24)
    assert len(list((tmp_path / "result_frames").glob("frame_*.png"))) == 2
    both = CliRunner().invoke(main, ["stylize", str(src), "--style", str(style_file),
                                     "--model", str(tiny_run)])
    assert both.exit_code == 2 and "takes no --style" in both.output
    steps = CliRunner().invoke(main, ["stylize", str(src), "--steps", "3", "--model",
                                      str(tiny_run)])
    assert steps.exit_code == 2 and "--steps: for --style without --model" in steps.output
    missing = CliRunner().invoke(main, ["stylize", str(src), "--style", str(style_file),
                                        "--steps", "1", "--vgg-weights", "/nowhere/v.h5"])
    assert missing.exit_code == 2 and "/nowhere/v.h5" in missing.output
    assert "Traceback" not in missing.output


def test_the_command_line_and_python_share_one_set_of_style_options(vgg_file):
    import dataclasses

    from kstyle.cli import stylize
    from kstyle.models.gatys_options import GatysOptions

    defaults = dataclasses.asdict(GatysOptions())
    cli = {p.name: p.default for p in stylize.params if p.name in defaults}
    assert cli and cli == {k: v for k, v in defaults.items() if k in cli}
    assert set(defaults) - set(cli) == {"style_layers", "style_layer_weights"}
    with pytest.raises(StyleOptionError, match="unknown style option.*stepz"):
        kstyle.stylize(np.zeros((8, 8, 3), np.uint8), style=np.zeros((8, 8, 3), np.uint8),
                       stepz=3, vgg_weights=vgg_file)
