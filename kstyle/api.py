"""The Python API: ``kstyle.load(run)`` and ``kstyle.stylize(img, model=run)``.

Images cross this boundary as the caller gives them: a ``numpy`` array (uint8 ``HxWx3``,
``HxW`` gray, ``HxWx4`` RGBA; or float in [0, 1]), a ``PIL.Image``, or a file path. Each
comes back as the same kind. Inside, models see float32 in [-1, 1].

A little over 400 lines: the two entry points (a trained model, Gatys' optimization) share
the image conversions and the file-or-folder handling, and are read together.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

import kstyle.nets  # noqa: F401  (registers kstyle's layers, needed to load networks)
from kstyle import runs
from kstyle.arbitrary import ArbitraryStylizer, style_problems
from kstyle.data import derive as kderive
from kstyle.data import images as kimages
from kstyle.errors import DataError, ModelLoadError, StyleOptionError
from kstyle.serving import Uint8Translator


class Translator:
    """A trained image-to-image network, ready for images of any size.

    Images are padded (by mirroring) to the network's size multiple, translated, and
    cropped back, so the output has the input's size; all of it runs in one graph,
    :class:`kstyle.serving.Uint8Translator`, the same that ``kstyle export`` writes.

    Args:
        model: a Keras model mapping ``[N, H, W, 3]`` in [-1, 1] to the same.
        info: the run's ``run.json`` (``size_multiple``, ``input_transform``, ...).

    Example:
        >>> translator = kstyle.load("saved_models/quickstart")
        >>> out = translator(np.zeros((300, 200, 3), np.uint8))
        >>> out.shape
        (300, 200, 3)
    """

    #: Images with more pixels than this are translated in tiles when ``tile`` is None.
    TILE_ABOVE = 2048 * 2048

    def __init__(self, model: keras.Model | None, info: dict | None = None, *, run=None,
                 tile: int | None = None):
        self.model = model
        self.info = dict(info or {})
        self.tile = tile
        self._tiled = None
        self.input_transform = self.info.get("input_transform", "none")
        if run is not None:
            self.size_multiple = int(self.info.get("size_multiple") or 1)
            self._run = run
            return
        self.size_multiple = int(self.info.get("size_multiple") or infer_size_multiple(model))
        self.serving = Uint8Translator(model, self.size_multiple, self.input_transform)
        self._run = tf.function(lambda images: self.serving(images), reduce_retracing=True)

    @classmethod
    def from_function(cls, run, info: dict | None = None) -> Translator:
        """A translator around ``run``: uint8 ``[1, H, W, 3]`` -> uint8 of the same shape."""
        return cls(None, info, run=run)

    def translate_array(self, image: np.ndarray) -> np.ndarray:
        """Translates one uint8 ``HxWx3`` array; returns uint8 of the same shape.

        Large images (more than ``TILE_ABOVE`` pixels, or any image when ``tile`` is set)
        go through :class:`kstyle.tiling.TiledTranslator`: overlapping tiles with
        feathered seams and instance-norm statistics of the whole image.
        """
        h, w = image.shape[:2]
        tiled = self.tile if self.tile is not None else (512 if h * w > self.TILE_ABOVE else 0)
        if tiled and self.model is not None and max(h, w) > tiled:
            if self._tiled is None or self._tiled.tile < tiled:
                from kstyle.tiling import TiledTranslator

                self._tiled = TiledTranslator(self.model, self.size_multiple,
                                              self.input_transform, tile=tiled,
                                              overlap=min(64, tiled // 4))
            return self._tiled(image)
        return np.asarray(self._run(np.ascontiguousarray(image[None])))[0]

    def __call__(self, image, out: str | os.PathLike | None = None):
        """Translates one image (array, PIL image or path); returns the same kind.

        Args:
            image: the image.
            out: for a path input, where to write the result (default: ``<stem>_kstyle.png``
                beside the input). Ignored otherwise.
        """
        return map_image(self.translate_array, image, out)


def map_image(function, image, out: str | os.PathLike | None = None):
    """Applies ``function`` (uint8 ``HxWx3`` -> uint8 ``hxwx3``) to an image of any kind.

    Args:
        function: works on uint8 RGB arrays.
        image: a ``numpy`` array (uint8 ``HxW``, ``HxWx3`` or ``HxWx4``, or float in
            [0, 1]), a ``PIL.Image``, or a path.
        out: for a path input, the file to write (default: ``<stem>_kstyle.png`` beside
            the input). Ignored otherwise.

    Returns:
        The result as the input's kind: an array of the same dtype (gray stays gray,
        alpha is dropped), a PIL image, or the path of the written file.

    Raises:
        DataError: an unreadable file or an array that is not an image.
    """
    rgb, give_back = unpack_image(image)
    return give_back(function(rgb), out)


def unpack_image(image):
    """Reads any image as uint8 RGB.

    Returns:
        ``(rgb, give_back)``: the uint8 ``HxWx3`` array, and ``give_back(result, out)``
        that turns a uint8 RGB result into the input's kind (see :func:`map_image`).
    """
    if isinstance(image, str | os.PathLike):
        src = Path(image)

        def to_file(result, out=None):
            dest = Path(out) if out else src.with_name(f"{src.stem}_kstyle.png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with runs.atomic_path(dest, suffix=dest.suffix) as tmp:
                Image.fromarray(result).save(tmp, format=_pil_format(dest))
            return dest

        return kimages.read_image(src), to_file
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB")), lambda result, out=None: Image.fromarray(result)
    array = np.asarray(image)
    is_float = np.issubdtype(array.dtype, np.floating)
    if is_float:
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    if array.dtype != np.uint8:
        raise DataError(
            f"expected a uint8 image array (or float in [0, 1]), got dtype {array.dtype}")
    gray = array.ndim == 2
    if gray:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise DataError(
            f"expected an image array of shape HxW, HxWx3 or HxWx4, got {array.shape}")

    def to_array(result, out=None):
        if gray:
            result = result.mean(axis=-1).round().astype(np.uint8)
        return result.astype(np.float32) / 255.0 if is_float else result

    return np.ascontiguousarray(array[..., :3]), to_array


def infer_size_multiple(model: keras.Model) -> int:
    """The side multiple a network needs: the product of its strided convolutions' strides.

    Used for a bare ``.keras`` file with no ``run.json`` beside it: 2**8 = 256 for an
    8-level U-Net, 4 for a ResNet generator.
    """
    multiple = 1
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(
                layer, keras.layers.Conv2DTranspose):
            multiple *= int(layer.strides[0])
        else:
            multiple *= infer_size_multiple(layer)
    return multiple


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}.get(ext, "PNG")


def load(model: str | os.PathLike, direction: str | None = None,
         tile: int | None = None) -> Translator | ArbitraryStylizer:
    """Loads a trained translator from a run folder, a ``.keras`` file or an export.

    Args:
        model: a run folder written by ``kstyle fit`` (``saved_models/<name>``), a
            ``.keras`` file of a translator network, or a file written by ``kstyle
            export``: a ``.tflite`` file (run with LiteRT), an ``.onnx`` file (run with
            ONNX Runtime) or a SavedModel folder.
        direction: for models that translate both ways (CycleGAN, CDAE), ``"a2b"`` (default) or
            ``"b2a"``.
        tile: translate in tiles of this side (pixels): None tiles images above
            ``Translator.TILE_ABOVE`` pixels at 512, 0 never tiles (see ``kstyle.tiling``).

    Returns:
        A :class:`Translator`; for a run of model kind ``adain``, a
        :class:`kstyle.arbitrary.ArbitraryStylizer` (called with ``style=``).

    Raises:
        ModelLoadError: the folder holds no translator, or the file cannot be loaded.
    """
    if tile is not None and tile < 0:
        raise ValueError(f"tile must be 0 (never tile) or a side in pixels, got {tile}")
    path = Path(model)
    if path.suffix in (".tflite", ".onnx") or (path / "saved_model.pb").is_file():
        return _load_exported(path)
    if path.is_dir():
        info = runs.read_run_info(path)
        files = info.get("translators", {runs.DEFAULT_DIRECTION: runs.TRANSLATOR_FILE})
        direction = direction or runs.DEFAULT_DIRECTION
        if direction not in files:
            raise ModelLoadError(
                f"{path}: no {direction!r} translator; this run has: {', '.join(files)}")
        file = path / files[direction]
        if not file.is_file():
            raise ModelLoadError(
                f"{path}: no {runs.TRANSLATOR_FILE} in this folder; expected a run folder "
                "written by 'kstyle fit' (it appears after the first epoch)")
    elif path.is_file():
        info = runs.read_run_info(path.parent) if path.suffix == ".keras" else {}
        file = path
        by_file = {name: d for d, name in info.get("translators", {}).items()}
        direction = by_file.get(path.name, runs.DEFAULT_DIRECTION)
    else:
        raise ModelLoadError(f"{path}: no such run folder or model file")
    # Each direction reads its own kind of input: a colorizer's b2a translator reads color.
    transforms = info.get("input_transforms", {})
    if direction in transforms:
        info = {**info, "input_transform": transforms[direction]}
    if file.suffix != ".keras":
        raise ModelLoadError(f"{file}: expected a .keras model file or a run folder")
    transform = info.get("input_transform", "none")
    if transform != "none" and transform not in kderive.DERIVATIONS:
        raise runs.damaged(file.parent / runs.RUN_FILE,
                           f"input_transform = {transform!r} is not one of: none, "
                           + ", ".join(kderive.DERIVATIONS))
    if not zipfile.is_zipfile(file):  # cut short, or not a .keras file at all
        raise runs.damaged(file, f"not a complete .keras file ({file.stat().st_size:,} "
                                 "bytes)")
    try:
        net = keras.saving.load_model(file, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises many types for a bad file.
        raise ModelLoadError(f"{file}: could not load the model ({type(e).__name__}: {e}). "
                             f"{runs.rewrite_hint(file.parent)}") from None
    if len(net.inputs) == 2:  # content and style: an arbitrary-style (AdaIN) stylizer
        return ArbitraryStylizer(net, info, tile=tile)
    return Translator(net, info, tile=tile)


def _load_exported(path: Path) -> Translator | ArbitraryStylizer:
    from kstyle.arbitrary import ExportedArbitraryStylizer
    from kstyle.serving import (
        arbitrary_runners,
        exported_info,
        litert_runner,
        onnx_runner,
        saved_model_runner,
    )

    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.suffix == ".onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise ModelLoadError(f"{path}: running .onnx files needs onnxruntime; install it "
                             "with: pip install 'kstyle[onnx]'")
    runners = {".tflite": litert_runner, ".onnx": onnx_runner}
    try:
        info = exported_info(path)
        if info.get("kind") == "adain":  # content and style in: the stylize endpoints
            return ExportedArbitraryStylizer(*arbitrary_runners(path), info)
        run, info = runners.get(path.suffix, saved_model_runner)(path)
    except Exception as e:  # LiteRT and TensorFlow raise many types for a bad file.
        raise ModelLoadError(f"{path}: could not load the exported model "
                             f"({type(e).__name__}: {e})") from None
    return Translator.from_function(run, info)


def stylize(image, model: str | os.PathLike | Translator | ArbitraryStylizer | None = None,
            out=None,
            direction=None, *, style=None, tile: int | None = None, **style_options):
    """Stylizes an image: with a trained model, a style image (Gatys et al.), or both.

    Give ``model`` (a run folder, ``.keras`` file or :class:`Translator`: one forward
    pass), or ``style`` (one or more style images: the content image is optimized to
    match their style, see :func:`transfer_style` for the options), or both for an
    arbitrary-style (``adain``) run: one forward pass in the style of any image, with the
    options ``strength`` (0..1), ``blend``, ``preserve_color`` and ``style_size`` of
    :meth:`kstyle.arbitrary.ArbitraryStylizer.stylize_array`.

    Args:
        image: ``numpy`` array, ``PIL.Image`` or path (or a list of them).
        model: run folder, ``.keras`` file, or a loaded :class:`Translator`.
        out: for path inputs, output file (one input) or folder (a list).
        direction: ``"a2b"`` or ``"b2a"`` for two-way models (see :func:`load`).
        tile: with ``model``, tile side for large images (see :func:`load`).
        style: a style image (array, PIL image, path) or a list of them.
        **style_options: with ``style`` alone, the options of :func:`transfer_style`
            (``steps``, ``size``, ``blend``, ``preserve_color``, ...); with an adain
            ``model``, those above.

    Returns:
        The stylized image(s), as the same kind as the input(s); for a path, the path
        of the written file.

    Raises:
        ValueError: neither ``model`` nor ``style``; both, for a model that takes no style;
            options the model does not take.

    Example:
        >>> out = kstyle.stylize(np.asarray(photo), model="saved_models/quickstart")
        >>> out = kstyle.stylize("photo.jpg", model="saved_models/adain",
        ...                      style="the_scream.jpg", strength=0.8)
        >>> pil = kstyle.stylize(PIL.Image.open("photo.jpg"), style="starry_night.jpg",
        ...                      steps=200, size=512)
    """
    if model is None and style is None:
        raise ValueError("give model= (a trained run or .keras file), style= (a style "
                         "image), or both (an adain run and a style image)")
    if model is None:
        function = functools.partial(transfer_style, style=style, **style_options)
    else:
        function = model if isinstance(model, Translator | ArbitraryStylizer) else load(
            model, direction, tile)
        if isinstance(function, ArbitraryStylizer):
            if style is None:
                raise ValueError(f"{model} stylizes in the style of an image: give style=")
            unknown = sorted(set(style_options) - ARBITRARY_OPTIONS)
            if unknown:
                raise ValueError(f"options {', '.join(unknown)} are for optimization (style= "
                                 "without model=); an adain model takes "
                                 f"{', '.join(sorted(ARBITRARY_OPTIONS))}")
            function = functools.partial(function, style=style, **style_options)
        elif style is not None:
            raise ValueError(f"{model} is not an arbitrary-style (adain) model: give model= "
                             "or style=, not both")
        elif style_options:
            raise ValueError(f"options {', '.join(sorted(style_options))} need style=, "
                             "not model=")
    if isinstance(image, list | tuple):
        results = []
        for item in image:
            dest = None
            if out is not None and isinstance(item, str | os.PathLike):
                dest = Path(out) / f"{Path(item).stem}.png"
            results.append(function(item, out=dest))
        return results
    return function(image, out=out)


#: The options ``stylize(..., model=<adain run>, style=...)`` takes.
ARBITRARY_OPTIONS = frozenset({"blend", "strength", "preserve_color", "style_size"})


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
    problems = style_problems(styles, blend) + options.problems()
    if problems:
        raise StyleOptionError("; ".join(problems))
