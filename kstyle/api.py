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
import importlib.util
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
from PIL import Image

import kstyle.nets  # noqa: F401  (registers kstyle's layers, needed to load networks)
from kstyle import runs
from kstyle.data import derive as kderive
from kstyle.data import images as kimages
from kstyle.errors import ModelLoadError, StyleOptionError
from kstyle.models import get_inference
from kstyle.models.signature import Inference, Signature


class Stylizer:
    """A trained model, ready for images of any size: ``stylizer(image, **inputs)``.

    What it takes besides the image (a style image, a strength, ...) is its kind's
    signature (:attr:`signature`, and :attr:`inputs` by name). Images are padded (by
    mirroring) to the network's size multiple and cropped back, so that the output has
    the input's size; large images from a Keras model go tile by tile
    (``kstyle.tiling``). Helpers of the kind (an adain model's ``encode_style``) are
    reached as attributes.

    Args:
        inference: the model's :class:`kstyle.models.signature.Inference`, bound to the
            backend that runs it.
        tile: tile side in pixels: None tiles images above ``TILE_ABOVE`` pixels at 512,
            0 never tiles.

    Example:
        >>> stylizer = kstyle.load("saved_models/quickstart")
        >>> stylizer(np.zeros((300, 200, 3), np.uint8)).shape
        (300, 200, 3)
        >>> kstyle.load("saved_models/adain")(photo, style="scream.jpg", strength=0.8)
    """

    #: Images with more pixels than this are translated in tiles when ``tile`` is None.
    TILE_ABOVE = 2048 * 2048

    def __init__(self, inference: Inference, *, tile: int | None = None):
        if tile is not None and tile < 0:
            raise ValueError(f"tile must be 0 (never tile) or a side in pixels, got {tile}")
        self.inference = inference
        self.tile = tile

    @classmethod
    def from_network(cls, network: keras.Model, info: dict | None = None, *,
                     tile: int | None = None) -> Stylizer:
        """A stylizer of a Keras network (the kind from ``info["kind"]``, or the network)."""
        info = dict(info or {})
        return cls(get_inference(info.get("kind"), network)(network, info), tile=tile)

    @property
    def signature(self) -> Signature:
        return self.inference.signature

    @property
    def inputs(self) -> dict[str, str]:
        """What a call takes besides the image, with what each is: ports and options."""
        ports = {p.name: p.doc for p in self.signature.main.inputs[1:]}
        return {**ports, **self.inference.options}

    @property
    def info(self) -> dict:
        return self.inference.info

    @property
    def model(self) -> keras.Model | None:
        """The Keras network (None for an exported file)."""
        return self.inference.network

    @property
    def size_multiple(self) -> int:
        return self.inference.size_multiple

    def __getattr__(self, name):
        # The kind's own helpers (AdaINInference.encode_style, ...).
        if name.startswith("_") or name == "inference":
            raise AttributeError(name)
        return getattr(self.inference, name)

    def stylize_array(self, image: np.ndarray, **inputs) -> np.ndarray:
        """Stylizes one uint8 ``HxWx3`` array; returns uint8 of the same shape.

        Raises:
            StyleOptionError: an input the model does not take, one it needs and was not
                given, or a value out of range; each named.
        """
        inputs = self.inference.check(inputs)
        h, w = image.shape[:2]
        tile = self.tile if self.tile is not None else (512 if h * w > self.TILE_ABOVE else 0)
        if tile and self.model is not None and max(h, w) > tile:
            return self.inference.tiled(image, tile, **inputs)
        return self.inference.run(np.ascontiguousarray(image), **inputs)

    def __call__(self, image, out: str | os.PathLike | None = None, **inputs):
        """Stylizes one image (array, PIL image or path); returns the same kind.

        Args:
            image: the image.
            out: for a path input, where to write the result (default:
                ``<stem>_kstyle.png`` beside the input). Ignored otherwise.
            **inputs: what the model takes besides the image (:attr:`inputs`).
        """
        return map_image(lambda rgb: self.stylize_array(rgb, **inputs), image, out)


#: The name this class had before every kind shared it.
Translator = Stylizer


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
    rgb, kind = kimages.as_rgb(image)
    if "path" in kind:
        src = Path(kind["path"])

        def to_file(result, out=None):
            dest = Path(out) if out else src.with_name(f"{src.stem}_kstyle.png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with runs.atomic_path(dest, suffix=dest.suffix) as tmp:
                Image.fromarray(result).save(tmp, format=_pil_format(dest))
            return dest

        return rgb, to_file
    if "pil" in kind:
        return rgb, lambda result, out=None: Image.fromarray(result)

    def to_array(result, out=None):
        if kind["gray"]:
            result = result.mean(axis=-1).round().astype(np.uint8)
        return result.astype(np.float32) / 255.0 if kind["float"] else result

    return rgb, to_array


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}.get(ext, "PNG")


def load(model: str | os.PathLike, direction: str | None = None,
         tile: int | None = None) -> Stylizer:
    """Loads a trained model from a run folder, a ``.keras`` file or an export.

    Args:
        model: a run folder written by ``kstyle fit`` or ``kstyle import``
            (``saved_models/<name>``), a ``.keras`` file of a translator network, or what
            ``kstyle export`` wrote: a ``.tflite`` file (run with LiteRT), an ``.onnx``
            file (run with ONNX Runtime) or a SavedModel folder.
        direction: for models that translate both ways (CycleGAN, CDAE), ``"a2b"``
            (default) or ``"b2a"``.
        tile: translate in tiles of this side (pixels): None tiles images above
            ``Stylizer.TILE_ABOVE`` pixels at 512, 0 never tiles (see ``kstyle.tiling``).

    Returns:
        A :class:`Stylizer`; ``stylizer.inputs`` lists what it takes besides the image.

    Raises:
        ModelLoadError: the folder holds no translator, or the file cannot be loaded.
    """
    if tile is not None and tile < 0:
        raise ValueError(f"tile must be 0 (never tile) or a side in pixels, got {tile}")
    path = Path(model)
    if path.suffix in (".tflite", ".onnx") or (path / "saved_model.pb").is_file():
        return Stylizer(_load_exported(path), tile=0)
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
    return Stylizer.from_network(net, info, tile=tile)


def _load_exported(path: Path) -> Inference:
    from kstyle.serving import exported_info, litert_call, onnx_call, saved_model_call

    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.suffix == ".onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise ModelLoadError(f"{path}: running .onnx files needs onnxruntime; install it "
                             "with: pip install 'kstyle[onnx]'")
    try:
        info = exported_info(path)
        inference = get_inference(info.get("kind"))
        signature = (Signature.from_dict(info["signature"]) if "signature" in info
                     else inference.signature)
        if path.suffix == ".tflite":
            call = litert_call(path)
        elif path.suffix == ".onnx":
            call = onnx_call(path, signature.names, info)
        else:
            call = saved_model_call(path)
    except FileNotFoundError as e:
        raise ModelLoadError(str(e)) from None
    except Exception as e:  # LiteRT and TensorFlow raise many types for a bad file.
        raise ModelLoadError(f"{path}: could not load the exported model "
                             f"({type(e).__name__}: {e})") from None
    return inference(None, info, call)


def stylize(image, model: str | os.PathLike | Stylizer | None = None, out=None,
            direction=None, *, style=None, tile: int | None = None, **options):
    """Stylizes an image: with a trained model, a style image (Gatys et al.), or both.

    Give ``model`` (a run folder, ``.keras`` file, exported file or :class:`Stylizer`:
    one forward pass), or ``style`` alone (one or more style images: the content image
    is optimized to match their style, see :func:`transfer_style` for the options), or
    both for a model that takes a style (an ``adain`` run: one forward pass in the style
    of any image). Other keyword inputs are those the model takes (``stylizer.inputs``:
    for an adain run ``strength``, ``blend``, ``preserve_color``, ``style_size``).

    Args:
        image: ``numpy`` array, ``PIL.Image`` or path (or a list of them).
        model: run folder, ``.keras`` file, exported file, or a loaded :class:`Stylizer`.
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
        ValueError: neither ``model`` nor ``style``; an input the model does not take
            (``style`` included), or one it needs (StyleOptionError).

    Example:
        >>> out = kstyle.stylize(np.asarray(photo), model="saved_models/quickstart")
        >>> out = kstyle.stylize("photo.jpg", model="saved_models/adain",
        ...                      style="the_scream.jpg", strength=0.8)
        >>> pil = kstyle.stylize(PIL.Image.open("photo.jpg"), style="starry_night.jpg",
        ...                      steps=200, size=512)
    """
    if model is None and style is None:
        raise ValueError("give model= (a trained run or .keras file), style= (a style "
                         "image), or both (a model that takes a style, and a style image)")
    if model is None:
        function = functools.partial(transfer_style, style=style, **options)
    else:
        stylizer = model if isinstance(model, Stylizer) else load(model, direction, tile)
        inputs = {**options, **({} if style is None else {"style": style})}
        unknown = sorted(set(inputs) - set(stylizer.inputs))
        if unknown:
            raise StyleOptionError(
                f"{model} takes no {', '.join(unknown)} (it takes: "
                f"{', '.join(stylizer.inputs) or 'the image alone'}); "
                + ("style= without model= optimizes the image" if "style" in unknown else
                   "these options are for optimization (style= without model=)"))
        function = functools.partial(stylizer, **inputs)
    if isinstance(image, list | tuple):
        results = []
        for item in image:
            dest = None
            if out is not None and isinstance(item, str | os.PathLike):
                dest = Path(out) / f"{Path(item).stem}.png"
            results.append(function(item, out=dest))
        return results
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
