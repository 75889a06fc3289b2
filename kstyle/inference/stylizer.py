"""A trained model of any kind, on any backend, ready for images of any size.

:func:`load` reads a run folder, a ``.keras`` file or an exported file (SavedModel,
LiteRT, ONNX) into a :class:`Stylizer`: the kind's inference declaration
(``kstyle.models.signature``) bound to the backend that runs its endpoints.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

import kstyle.nets  # noqa: F401  (registers kstyle's layers, needed to load networks)
from kstyle import runs
from kstyle.data import derive as kderive
from kstyle.data.images import unpack_image
from kstyle.errors import ModelLoadError
from kstyle.models import get_inference
from kstyle.models.signature import Inference, Signature


class Stylizer:
    """A trained model, ready for images of any size: ``stylizer(image, **inputs)``.

    What it takes besides the image (a style image, a strength, ...) is its kind's
    signature (:attr:`signature`, and :attr:`inputs` by name). Images are padded (by
    mirroring) to the network's size multiple and cropped back, so that the output has
    the input's size; large images from a Keras model go tile by tile
    (``kstyle.nets.tiling``). Helpers of the kind (an adain model's ``encode_style``) are
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

    def stylize_array(self, image: np.ndarray, *, overwrite: bool = False,
                      **inputs) -> np.ndarray:
        """Stylizes one uint8 ``HxWx3`` array; returns uint8 of the same shape.

        With ``overwrite``, a tiled result is written over ``image`` (each row once no
        tile reads it) and ``image`` is returned: a large image and its result then take
        the memory of one.

        Raises:
            StyleOptionError: an input the model does not take, one it needs and was not
                given, or a value out of range; each named.
        """
        inputs = self.inference.check(inputs)
        tile = self._tile_for(image.shape)
        if tile:
            return self.inference.tiled(image, tile, out=image if overwrite else None,
                                        **inputs)
        return self.inference.run(np.ascontiguousarray(image), **inputs)

    def _tile_for(self, shape) -> int:
        """The tile side an image of ``shape`` goes through in (0: one pass)."""
        h, w = shape[:2]
        tile = self.tile if self.tile is not None else (512 if h * w > self.TILE_ABOVE else 0)
        return tile if tile and self.model is not None and max(h, w) > tile else 0

    def stylize_batch(self, images: list[np.ndarray], **inputs) -> list[np.ndarray]:
        """:meth:`stylize_array` on several uint8 images of one shape with the same inputs,
        in one pass where the model allows it (``inference.batches``) and no tiling is
        needed."""
        if len(images) == 1 or self._tile_for(images[0].shape):
            return [self.stylize_array(image, **inputs) for image in images]
        return self.inference.run_batch([np.ascontiguousarray(i) for i in images],
                                        **self.inference.check(inputs))

    def __call__(self, image, out: str | os.PathLike | None = None, *, temporal=True,
                 carry=0.5, window=8, progress=True, **inputs):
        """Stylizes one image (array, PIL image or path) or a video file; returns the same
        kind (for a file, the path of the result).

        Args:
            image: the image, or a video file's path (``.mp4``, ``.mov``, ``.mkv``,
                ``.webm``, ...: see ``kstyle.inference.video``).
            out: for a path input, where to write the result (default:
                ``<stem>_kstyle.png`` beside an image, ``<stem>_kstyle.mp4`` beside a
                video). Ignored otherwise.
            temporal, carry, window, progress: for a video, see
                ``kstyle.inference.video.stylize_video``.
            **inputs: what the model takes besides the image (:attr:`inputs`).
        """
        from kstyle.data.video import is_video, result_suffix

        if isinstance(image, str | os.PathLike) and is_video(image):
            from kstyle.data.outputs import check_not_an_input
            from kstyle.inference.video import stylize_video

            source = Path(image)
            dest = Path(out) if out else source.with_name(
                f"{source.stem}_kstyle{result_suffix(source)}")
            check_not_an_input(dest, source)
            return stylize_video(self, source, dest, temporal=temporal, carry=carry,
                                 window=window, progress=progress, **inputs)
        rgb, give_back = unpack_image(image)
        # A file's pixels are read here, into an array of this call's own: a large
        # image's result is written over them, not beside them.
        result = self.stylize_array(rgb, overwrite=isinstance(image, str | os.PathLike),
                                    **inputs)
        del rgb
        return give_back(result, out)


def load(model: str | os.PathLike, direction: str | None = None,
         tile: int | None = None) -> Stylizer:
    """Loads a trained model from a run folder, a ``.keras`` file or an export.

    Args:
        model: the name of a published model (``"horse2zebra"``, ``"mosaic"``: ``kstyle
            models`` lists them; downloaded and converted on first use, see
            ``kstyle.inference.zoo``), a run folder written by ``kstyle fit`` or ``kstyle
            import`` (``saved_models/<name>``), a ``.keras`` file of a translator network,
            or what ``kstyle export`` wrote: a ``.tflite`` file (run with LiteRT), an
            ``.onnx`` file (run with ONNX Runtime) or a SavedModel folder (``NAME/1``, or
            ``NAME`` for its newest version).
        direction: for models that translate both ways (CycleGAN, CDAE), ``"a2b"``
            (default) or ``"b2a"``.
        tile: translate in tiles of this side (pixels): None tiles images above
            ``Stylizer.TILE_ABOVE`` pixels at 512, 0 never tiles (see ``kstyle.nets.tiling``).

    Returns:
        A :class:`Stylizer`; ``stylizer.inputs`` lists what it takes besides the image.

    Raises:
        ModelLoadError: the folder holds no translator, or the file cannot be loaded.
    """
    if tile is not None and tile < 0:
        raise ValueError(f"tile must be 0 (never tile) or a side in pixels, got {tile}")
    from kstyle.inference import zoo
    from kstyle.inference.exported import latest_version

    path = Path(zoo.resolve(model))
    path = latest_version(path) or path  # a SavedModel's NAME/ folder: its newest version
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
    from kstyle.inference.exported import (
        check_listed,
        exported_info,
        litert_call,
        onnx_call,
        saved_model_call,
    )

    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    try:
        check_listed(path)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    if path.suffix == ".onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise ModelLoadError(f"{path}: running .onnx files needs onnxruntime; install it "
                             "with: pip install 'kstyle[onnx]'")
    try:
        info = exported_info(path)
        # The file's own signature (written since signatures were), else its kind's.
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
    loaded = inference(None, info, call)
    # A kind this kstyle does not know: the generic call over the file's signature.
    loaded.signature = signature
    return loaded
