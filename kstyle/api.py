"""The Python API: ``kstyle.load(run)`` and ``kstyle.stylize(img, model=run)``.

Images cross this boundary as the caller gives them: a ``numpy`` array (uint8 ``HxWx3``,
``HxW`` gray, ``HxWx4`` RGBA; or float in [0, 1]), a ``PIL.Image``, or a file path. Each
comes back as the same kind. Inside, models see float32 in [-1, 1].

Every model, whatever its kind and wherever it was loaded from (a run folder, a
``.keras`` file, a SavedModel, a LiteRT or ONNX file), is a :class:`Stylizer`: its kind's
inference declaration (``kstyle.models.signature``) says what it takes, and a backend
runs its endpoints. Gatys' optimization (:func:`transfer_style`) needs no trained model.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from kstyle import runs
from kstyle.data import images as kimages
from kstyle.data.images import map_image, unpack_image  # noqa: F401 (part of the API)
from kstyle.errors import ModelLoadError, StyleOptionError
from kstyle.inference.stylizer import Stylizer, load

#: The name :class:`Stylizer` had before every kind shared it.
Translator = Stylizer

_said_default = False


def _default_model() -> str:
    """The published model ``stylize`` uses when given no model and no style; says once
    which it is."""
    global _said_default
    from kstyle.inference import zoo

    name = zoo.default_model()
    if not _said_default:
        _said_default = True
        print(f"kstyle: no model or style given: stylizing with the published model "
              f"{name!r} (set ${zoo.DEFAULT_ENV} to another; 'kstyle models' lists them)",
              file=sys.stderr)
    return name


#: Options of a video input (see ``kstyle.inference.video.stylize_video``).
VIDEO_OPTIONS = {"temporal", "carry", "window", "progress"}


def stylize(image, model: str | os.PathLike | Stylizer | None = None, out=None,
            direction=None, *, style=None, tile: int | None = None, **options):
    """Stylizes an image: with a trained model, a style image (Gatys et al.), or both.

    Give ``model`` (a published model's name, a run folder, ``.keras`` file, exported
    file or :class:`Stylizer`: one forward pass), or ``style`` alone (one or more style
    images: the content image is optimized to match their style, see
    :func:`transfer_style` for the options), or
    both for a model that takes a style (an ``adain`` run: one forward pass in the style
    of any image). Other keyword inputs are those the model takes (``stylizer.inputs``:
    for an adain run ``strength``, ``blend``, ``preserve_color``, ``style_size``).

    Args:
        image: ``numpy`` array, ``PIL.Image`` or path (or a list of them); a video
            file (``.mp4``, ``.mov``, ``.mkv``, ``.webm``) with a model: stylized frame
            by frame, steady (``temporal=False`` turns that off; ``carry``, ``window``:
            see ``kstyle.inference.video.stylize_video``), its sound kept.
        model: a published model's name (``kstyle models``), run folder, ``.keras``
            file, exported file, or a loaded :class:`Stylizer`. Given neither ``model``
            nor ``style``: the published model ``$KSTYLE_DEFAULT_MODEL``, else
            ``"mosaic"`` (downloaded on first use).
        out: for path inputs, output file (one input) or folder (a list).
        direction: ``"a2b"`` or ``"b2a"`` for two-way models (see :func:`load`).
        tile: with ``model``, tile side for large images (see :func:`load`).
        style: a style image (array, PIL image, path) or a list of them.
        **options: with ``style`` alone, the options of :func:`transfer_style`
            (``steps``, ``size``, ``blend``, ``preserve_color``, ...); with ``model``, its
            inputs.

    Returns:
        The stylized image(s), as the same kind as the input(s); for a path, the path
        of the written file.

    Raises:
        ValueError: an input the model does not take (``style`` included), or one it
            needs (StyleOptionError).
        ModelLoadError: a published model that could not be downloaded (the message
            says the ways out).

    Example:
        >>> out = kstyle.stylize(np.asarray(photo))        # the default published model
        >>> out = kstyle.stylize("photo.jpg", model="style_vangogh")
        >>> kstyle.stylize("clip.mp4", model="mosaic", out="clip_mosaic.mp4")
        >>> out = kstyle.stylize(np.asarray(photo), model="saved_models/quickstart")
        >>> out = kstyle.stylize("photo.jpg", model="saved_models/adain",
        ...                      style="the_scream.jpg", strength=0.8)
        >>> pil = kstyle.stylize(PIL.Image.open("photo.jpg"), style="starry_night.jpg",
        ...                      steps=200, size=512)
    """
    if model is None and style is None:
        model = _default_model()
    if model is None:
        function = functools.partial(transfer_style, style=style, **options)
    else:
        stylizer = model if isinstance(model, Stylizer) else load(model, direction, tile)
        inputs = {**options, **({} if style is None else {"style": style})}
        unknown = sorted(set(inputs) - set(stylizer.inputs) - VIDEO_OPTIONS)
        if unknown:
            from kstyle.models.gatys_options import GatysOptions

            optimization = {f.name for f in dataclasses.fields(GatysOptions)} - {"blend"}
            hint = ("; style= without model= optimizes the image" if "style" in unknown
                    else "; those are options of optimization (style= without model=)"
                    if optimization & set(unknown) else "")
            raise StyleOptionError(
                f"{model} takes no {', '.join(unknown)} (it takes: "
                f"{', '.join(stylizer.inputs) or 'the image alone'}){hint}")
        function = functools.partial(stylizer, **inputs)
    if isinstance(image, list | tuple):
        paths = [item for item in image if isinstance(item, str | os.PathLike)]
        if out is not None and paths:  # one distinct file per input, never over an input
            from kstyle.data.outputs import plan

            named = iter(plan(paths, out, overwrite=True)[0])
        return [function(item, out=next(named) if out is not None and
                         isinstance(item, str | os.PathLike) else None) for item in image]
    return function(image, out=out)


@functools.lru_cache(maxsize=2)
def _gatys_features(layers: tuple[str, ...], weights: str, weights_env: str | None):
    # Building VGG19 and reading its 80 MB of weights takes seconds: keep the last two.
    from kstyle.nets.vgg import vgg19_features

    return vgg19_features(layers, weights=weights, name="gatys_features")


def transfer_style(image, style, out=None, *, blend=None, frames=None, verbose: int = 1,
                   **options):
    """Neural style transfer by optimization (Gatys et al.) of one content image.

    The image is optimized, starting from the content, so that its VGG19 features at
    ``content_layer`` match the content's and the Gram matrices of its features at
    ``style_layers`` match the style's. Large images are done coarse to fine.

    Args:
        image: the content image: ``numpy`` array, ``PIL.Image`` or path.
        style: a style image (array, PIL image or path), or a list of them.
        out: for a path input, the file to write (default ``<stem>_kstyle.png``).
        blend: with several styles, the weight of each (default equal).
        frames: a folder for intermediate images (``frame_00050.png`` ...), one per
            stage or every ``save_every`` steps.
        verbose: 1 prints a progress bar per stage.
        **options: the fields of :class:`kstyle.models.gatys_options.GatysOptions`, each
            at its default unless given (``kstyle stylize --help`` lists them): ``steps``
            (300), ``size`` (long side of the result, 512; 0 or None: the content's own),
            ``init``, ``style_scale``, ``preserve_color``, ``content_weight`` (alpha),
            ``style_weight`` (beta), ``tv_weight``, ``content_layer``, ``style_layers``,
            ``style_layer_weights``, ``lr``, ``start_size``, ``save_every``,
            ``vgg_weights`` (``"imagenet"``: Keras' cache, downloaded on first use, or the
            file named by ``$KSTYLE_VGG19_WEIGHTS``; or the path of a VGG19 weights file),
            ``jit_compile``, ``seed``.

    Returns:
        The stylized image, as the content's kind (array, PIL image, or written path).

    Raises:
        kstyle.errors.StyleOptionError: an option out of range or unknown, named.
        kstyle.errors.ModelLoadError: no VGG19 weights could be had; the message says
            what to download and where to put it.
        kstyle.errors.DataError: an unreadable image.

    Example:
        >>> out = kstyle.transfer_style("tubingen.jpg", "starry_night.jpg", size=512,
        ...                             out="tubingen_starry.png")
    """
    from kstyle.models.gatys import Gatys
    from kstyle.models.gatys_options import GatysOptions
    from kstyle.nets.vgg import VGG19_WEIGHTS_ENV

    try:
        o = GatysOptions(**options)
    except TypeError:
        known = [f.name for f in dataclasses.fields(GatysOptions)]
        unknown = sorted(set(options) - set(known))
        raise StyleOptionError(f"unknown style option(s) {', '.join(unknown)}; known: "
                               f"{', '.join(known)}") from None
    styles = list(style) if isinstance(style, list | tuple) else [style]
    _check_style_options(o, styles, blend)
    style_arrays = [unpack_image(s)[0] for s in styles]
    style_layers = tuple(o.style_layers)
    try:
        features = _gatys_features((o.content_layer, *style_layers), os.fspath(o.vgg_weights),
                                   os.environ.get(VGG19_WEIGHTS_ENV))
    except ValueError as e:  # an unknown layer name
        if isinstance(e, ModelLoadError):
            raise
        raise StyleOptionError(str(e)) from None
    try:
        gatys = Gatys.from_options(o, features=features)
    except ValueError as e:  # style_layer_weights of the wrong length
        raise StyleOptionError(str(e)) from None

    def save_frame(stage, step, image):
        path = Path(frames) / f"frame_{step:05d}.png"
        with runs.atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(kimages.to_uint8(image).numpy()[0]).save(tmp, format="PNG")

    def run(content: np.ndarray) -> np.ndarray:
        content = kimages.to_float(content[None])
        if o.size:
            content = kimages.resize_long_side(content, o.size)
        result = gatys.transfer(
            content, [kimages.to_float(s[None]) for s in style_arrays], blend=blend,
            steps=o.steps, init=o.init, style_scale=o.style_scale,
            preserve_color=o.preserve_color, start_size=o.start_size, lr=o.lr, seed=o.seed,
            jit_compile=o.jit_compile, verbose=verbose,
            callback=save_frame if frames else None, callback_every=o.save_every)
        return kimages.to_uint8(result).numpy()[0]

    return map_image(run, image, out)


def _check_style_options(options, styles, blend):
    from kstyle.models.options import style_problems

    problems = style_problems(styles, blend) + options.problems()
    if problems:
        raise StyleOptionError("; ".join(problems))
