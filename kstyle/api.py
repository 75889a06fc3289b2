"""The Python API: ``kstyle.load(run)`` and ``kstyle.stylize(img, model=run)``.

Images cross this boundary as the caller gives them: a ``numpy`` array (uint8 ``HxWx3``,
``HxW`` gray, ``HxWx4`` RGBA; or float in [0, 1]), a ``PIL.Image``, or a file path. Each
comes back as the same kind. Inside, models see float32 in [-1, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

import kstyle.nets  # noqa: F401  (registers kstyle's layers, needed to load networks)
from kstyle import runs
from kstyle.data import derive as kderive
from kstyle.data import images as kimages
from kstyle.errors import DataError, ModelLoadError


class Translator:
    """A trained image-to-image network, ready for images of any size.

    Images are padded (by reflection) to the network's size multiple, translated, and
    cropped back, so the output has the input's size.

    Args:
        model: a Keras model mapping ``[N, H, W, 3]`` in [-1, 1] to the same.
        info: the run's ``run.json`` (``size_multiple``, ``input_transform``, ...).

    Example:
        >>> translator = kstyle.load("saved_models/quickstart")
        >>> out = translator(np.zeros((300, 200, 3), np.uint8))
        >>> out.shape
        (300, 200, 3)
    """

    def __init__(self, model: keras.Model, info: dict | None = None):
        self.model = model
        self.info = dict(info or {})
        self.size_multiple = int(self.info.get("size_multiple") or infer_size_multiple(model))
        self.input_transform = self.info.get("input_transform", "none")
        self._forward = tf.function(self._translate, reduce_retracing=True)

    def _translate(self, x):
        x = kimages.to_float(x)
        if self.input_transform in kderive.DERIVATIONS:
            x = kderive.DERIVATIONS[self.input_transform](x)[0]
        return kimages.to_uint8(self.model(x, training=False))

    def translate_array(self, image: np.ndarray) -> np.ndarray:
        """Translates one uint8 ``HxWx3`` array; returns uint8 of the same shape."""
        h, w = image.shape[:2]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect" if
                        (ph < h and pw < w) else "symmetric")
        out = self._forward(tf.convert_to_tensor(padded[None]))
        return out.numpy()[0, :h, :w]

    def __call__(self, image, out: str | os.PathLike | None = None):
        """Translates one image (array, PIL image or path); returns the same kind.

        Args:
            image: the image.
            out: for a path input, where to write the result (default: ``<stem>_kstyle.png``
                beside the input). Ignored otherwise.
        """
        if isinstance(image, str | os.PathLike):
            src = Path(image)
            result = self.translate_array(kimages.read_image(src))
            dest = Path(out) if out else src.with_name(f"{src.stem}_kstyle.png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with runs.atomic_path(dest, suffix=dest.suffix) as tmp:
                Image.fromarray(result).save(tmp, format=_pil_format(dest))
            return dest
        if isinstance(image, Image.Image):
            rgb = np.asarray(image.convert("RGB"))
            return Image.fromarray(self.translate_array(rgb))
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
        result = self.translate_array(np.ascontiguousarray(array[..., :3]))
        if gray:
            result = result.mean(axis=-1).round().astype(np.uint8)
        return result.astype(np.float32) / 255.0 if is_float else result


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


def load(model: str | os.PathLike, direction: str | None = None) -> Translator:
    """Loads a trained translator from a run folder or a ``.keras`` file.

    Args:
        model: a run folder written by ``kstyle fit`` (``saved_models/<name>``), or a
            ``.keras`` file of a translator network.
        direction: for models that translate both ways (CycleGAN, CDAE), ``"a2b"`` (default) or
            ``"b2a"``.

    Returns:
        A :class:`Translator`.

    Raises:
        ModelLoadError: the folder holds no translator, or the file cannot be loaded.
    """
    path = Path(model)
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
    try:
        net = keras.saving.load_model(file, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises many types for a bad file.
        raise ModelLoadError(f"{file}: could not load the model ({type(e).__name__}: {e})") \
            from None
    return Translator(net, info)


def stylize(image, model: str | os.PathLike | Translator, out=None, direction=None):
    """Translates an image with a trained model.

    Args:
        image: ``numpy`` array, ``PIL.Image`` or path (or a list of them).
        model: run folder, ``.keras`` file, or a loaded :class:`Translator`.
        out: for path inputs, output file (one input) or folder (a list).
        direction: ``"a2b"`` or ``"b2a"`` for two-way models (see :func:`load`).

    Returns:
        The translated image(s), as the same kind as the input(s); for a path, the path
        of the written file.

    Example:
        >>> out = kstyle.stylize(np.asarray(photo), model="saved_models/quickstart")
    """
    translator = model if isinstance(model, Translator) else load(model, direction)
    if isinstance(image, list | tuple):
        results = []
        for item in image:
            dest = None
            if out is not None and isinstance(item, str | os.PathLike):
                dest = Path(out) / f"{Path(item).stem}.png"
            results.append(translator(item, out=dest))
        return results
    return translator(image, out=out)
