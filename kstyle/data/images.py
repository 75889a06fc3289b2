"""Image files: listing, decoding, and the uint8 <-> float [-1, 1] conversions.

Models see float32 images in [-1, 1]; files and the Python API deal in uint8. The two
conversions below are the only place that mapping is written down.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from kstyle.data.layout import IMAGE_EXTENSIONS, list_images  # noqa: F401 (re-exported)
from kstyle.errors import DataError
from kstyle.runs import atomic_path

# A side under 2 px has no extent to crop, flip or translate: such a file is a stray icon
# or a tracking pixel, not a picture.
MIN_SIDE = 2


class ImageRefused(DataError):
    """An image file that cannot be used; `reason` is the short why, without the path."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"image file {path!r}: {reason}")
        self.path, self.reason = path, reason


def max_pixels() -> int | None:
    """Largest image accepted, in pixels: Pillow's decompression-bomb limit.

    That is twice ``PIL.Image.MAX_IMAGE_PIXELS`` (179 MP by default), where Pillow itself
    refuses to open a file; raising ``MAX_IMAGE_PIXELS`` raises it, None lifts it.
    """
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _declared_size(path: str, data: bytes | None = None) -> tuple[int, int] | None:
    """Width and height a file's header declares, read without Pillow's bomb check."""
    Image.init()
    try:
        with (io.BytesIO(data) if data is not None else open(path, "rb")) as fp:
            prefix = fp.read(16)
            for name in Image.ID:
                factory, accept = Image.OPEN[name]
                if accept is not None and not accept(prefix):
                    continue
                fp.seek(0)
                try:
                    return tuple(factory(fp, path).size)
                except Exception:  # a plugin that does not recognise it: try the next
                    continue
    except OSError:
        return None
    return None


class ImageTooLarge(ImageRefused):
    """An image whose header declares more pixels than the limit (a decompression bomb,
    or just too large for the caller)."""


def _too_big(path, size, limit) -> ImageTooLarge:
    if size is None:
        reason = f"declares a size over the {limit / 1e6:.0f} MP limit (decompression bomb?)"
    else:
        width, height = size
        reason = (f"declares {width}x{height} px ({width * height / 1e6:.0f} MP), over the "
                  f"{limit / 1e6:.0f} MP limit")
        if limit == max_pixels():
            reason += " (PIL.Image.MAX_IMAGE_PIXELS x 2)"
    return ImageTooLarge(path, reason)


def _not_an_image(head: bytes) -> str:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image (unknown format)"
    if text and all(c.isprintable() or c.isspace() for c in text):
        return "not an image (text?)"
    return "not an image (unknown format)"


def open_image(path: str, data: bytes | None = None,
               limit: int | None = None) -> Image.Image:
    """Opens an image file (or its bytes, ``data``, named ``path`` in messages) and checks
    what its header says, without decoding pixels.

    Args:
        path: the file; with ``data``, only the name messages give it.
        data: the file's bytes (an upload), read instead of the file.
        limit: the largest image accepted, in pixels (default and at most:
            :func:`max_pixels`).

    Raises:
        ImageRefused: empty file, not an image, or a side under `MIN_SIDE`.
        ImageTooLarge: a declared size over the limit (checked before any pixel is
            decoded: a decompression bomb costs nothing).
    """
    if data is None:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise ImageRefused(path, "file does not exist") from None
    else:
        size = len(data)
    if size == 0:
        raise ImageRefused(path, "empty file (0 bytes)")
    limits = [x for x in (limit, max_pixels()) if x is not None]
    limit = min(limits) if limits else None
    try:
        with warnings.catch_warnings():
            # Pillow warns from half its limit up; kstyle's own limit (max_pixels, below)
            # is the guard, and an image given on purpose is no bomb to warn about.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data) if data is not None else path)
    except Image.DecompressionBombError:
        raise _too_big(path, _declared_size(path, data), limit) from None
    except UnidentifiedImageError:
        if data is None:
            with open(path, "rb") as fp:
                head = fp.read(64)
        raise ImageRefused(path, _not_an_image(head if data is None else data[:64])) from None
    except (OSError, ValueError, SyntaxError) as error:
        if "truncat" in str(error).lower():
            raise ImageRefused(path, "truncated file") from None
        raise ImageRefused(path, f"unreadable header ({error})") from None
    width, height = image.size
    if limit is not None and width * height > limit:
        image.close()
        raise _too_big(path, (width, height), limit)
    if min(width, height) < MIN_SIDE:
        image.close()
        raise ImageRefused(
            path, f"{width}x{height} px is smaller than the minimum of {MIN_SIDE} px per side")
    return image


def load_pixels(image: Image.Image, path: str) -> None:
    """Decodes the pixels of an opened image; a truncated or corrupt file is refused."""
    try:
        image.load()
    except Exception as error:  # plugins raise OSError, SyntaxError, EOFError, struct.error...
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "truncat" in message.lower() or isinstance(error, EOFError):
            raise ImageRefused(path, "truncated file") from None
        raise ImageRefused(
            path, f"corrupt image data ({type(error).__name__}: {message[:120]})") from None


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or invalid."""
    try:
        value = int(image.getexif().get(0x0112, 1))
    except Exception:  # a malformed EXIF block is ignored, as by exif_transpose
        return 1
    return value if 1 <= value <= 8 else 1


def is_16bit(image: Image.Image) -> bool:
    """Whether an opened, not yet loaded, image holds 16 bits per channel.

    Pillow opens 16-bit RGB(A) PNGs as 8-bit "RGB"/"RGBA", so the raw mode of the PNG's
    data (gone once the pixels are loaded) is read too.
    """
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        return True
    if image.format == "PNG" and image.tile:
        rawmode = image.tile[0][3]
        rawmode = rawmode[0] if isinstance(rawmode, tuple) else rawmode
        return isinstance(rawmode, str) and ";16" in rawmode
    return False


def icc_profile_name(image: Image.Image) -> str | None:
    """The name of an image's embedded colour profile when it is not sRGB (None: no
    profile, or sRGB), read from the header."""
    data = image.info.get("icc_profile")
    if not data:
        return None
    from PIL import ImageCms

    try:
        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(data)))
    except (OSError, ImageCms.PyCMSError):
        return None  # a damaged profile: the pixels are used as they are
    name = name.strip() or "unnamed"
    return None if "srgb" in name.lower().replace(" ", "") else name


def to_srgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB or CMYK image with an embedded colour profile other than sRGB (Adobe
    RGB, Display P3: most camera and phone photos), converted to sRGB, the colour space
    the networks were trained in; any other image as it is."""
    if image.mode not in ("RGB", "CMYK") or icc_profile_name(image) is None:
        return image
    from PIL import ImageCms

    source = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
    return ImageCms.profileToProfile(image, source, srgb_profile(), outputMode="RGB")


def srgb_profile():
    """The sRGB colour profile (what results are tagged with)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_profile_bytes() -> bytes:
    """The sRGB profile as embedded in results, with a fixed creation date (bytes 24-35
    of the ICC header; LittleCMS writes the current time there): the same result is
    then the same file whenever it is written."""
    data = bytearray(srgb_profile().tobytes())
    data[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
    return bytes(data)


def pillow_to_rgb(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image (already upright) as a uint8 RGB array.

    16-bit channels are scaled to 8 bits (Pillow's own conversion clips them); an
    embedded colour profile other than sRGB is converted to sRGB; CMYK, palette and
    grayscale become RGB; alpha and palette transparency are dropped, as `decode` does.
    Of an animation, the first frame.
    """
    image = to_srgb(image)
    if image.mode == "I" or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode != "RGB":  # (converting to its own mode would copy it)
        image = image.convert("RGB")
    # Copied a band of rows at a time into an array of its own (writable: a tiled
    # result may be written over it): numpy's own conversion goes through a second
    # whole copy of the pixels.
    w, h = image.size
    rgb = np.empty((h, w, 3), np.uint8)
    step = max(1, (1 << 24) // (4 * w))
    for top in range(0, h, step):
        rgb[top:top + step] = np.asarray(image.crop((0, top, w, min(h, top + step))))
    return rgb


def decode(contents: tf.Tensor) -> tf.Tensor:
    """Decodes the bytes of one image file to a uint8 RGB tensor (graph op).

    Grayscale images get three equal channels, an alpha channel is dropped, and an
    animated GIF gives its first frame.

    Args:
        contents: scalar string tensor, the bytes of a JPEG, PNG, BMP, GIF or WebP file.

    Returns:
        uint8 tensor of shape [H, W, 3].

    Example:
        >>> image = decode(tf.io.read_file("photo.jpg"))  # doctest: +SKIP
    """
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def to_float(image: tf.Tensor) -> tf.Tensor:
    """Maps uint8 [0, 255] to float32 [-1, 1] as `x / 127.5 - 1` (graph op).

    Args:
        image: uint8 (or any numeric) tensor or array.

    Returns:
        float32 tensor of the same shape.

    Example:
        >>> float(to_float(tf.constant([255], tf.uint8))[0])
        1.0
    """
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """Maps float [-1, 1] back to uint8 [0, 255], rounding and clipping (graph op).

    Args:
        image: float tensor or array, nominally in [-1, 1]; values outside are clipped.

    Returns:
        uint8 tensor of the same shape.

    Example:
        >>> int(to_uint8(tf.constant([0.0]))[0])
        128
    """
    scaled = (tf.cast(image, tf.float32) + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)


def read_image(path, data: bytes | None = None, limit: int | None = None) -> np.ndarray:
    """Reads one image file (or its bytes) into a uint8 RGB array, honouring its EXIF
    orientation and colour profile.

    Meant for eager use at the Python API boundary (the training pipelines decode in
    graph with `decode`). Grayscale, palette, CMYK and 16-bit files are converted (16-bit
    scaled to 8 bits), alpha is dropped.

    Args:
        path: path of an image file Pillow can open; with ``data``, the name messages
            give the bytes.
        data: an image file's bytes (an upload), read instead of ``path``.
        limit: the largest image accepted, in pixels (see :func:`open_image`).

    Returns:
        uint8 array of shape [H, W, 3].

    Raises:
        DataError: the file is missing, empty, not an image, truncated or corrupt,
            declares a size over `max_pixels()` (a decompression bomb) or under
            `MIN_SIDE`; the message names the file and the reason.

    Example:
        >>> photo = read_image("photo.jpg")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if data is None and not os.path.exists(path):
        raise DataError(f"image file {path!r} does not exist")
    with open_image(path, data, limit) as image:
        load_pixels(image, path)
        # In place: an upright file (most) is not copied; a large photo's pixels are held
        # once by Pillow and once by the array, not four times.
        ImageOps.exif_transpose(image, in_place=True)
        return pillow_to_rgb(image)


def decode_file(path: tf.Tensor, orientation=None, pillow=None) -> tf.Tensor:
    """Reads and decodes one image file in graph, made upright (graph op).

    Args:
        path: scalar string tensor.
        orientation: None, or a scalar int tensor: the file's EXIF orientation (1-8),
            applied with `apply_orientation` (TensorFlow's decoders ignore EXIF).
        pillow: None, or a scalar bool tensor: decode this file with `read_image` through
            `tf.numpy_function` (for the few files TensorFlow decodes wrongly, such as
            palette BMPs); `read_image` applies EXIF itself, so pass orientation 1 for them.

    Returns:
        uint8 tensor of shape [H, W, 3].
    """
    def graph_decode():
        return decode(tf.io.read_file(path))

    if pillow is None:
        image = graph_decode()
    else:
        def pillow_decode():
            image = tf.numpy_function(lambda p: read_image(p.decode()), [path], tf.uint8,
                                      stateful=False)
            image.set_shape([None, None, 3])
            return image

        image = tf.cond(pillow, pillow_decode, graph_decode)
    if orientation is not None:
        image = apply_orientation(image, orientation)
    return image


def apply_orientation(image: tf.Tensor, orientation) -> tf.Tensor:
    """Turns an [H, W, C] image upright given its EXIF orientation 1-8 (graph op).

    The same transposes as Pillow's `ImageOps.exif_transpose`: 2 mirror, 3 rotate 180,
    4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 anticlockwise.
    """
    def transposed():
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,  # 0: not a valid value, left as is
        lambda: image,  # 1: upright
        lambda: tf.reverse(image, [1]),
        lambda: tf.reverse(image, [0, 1]),
        lambda: tf.reverse(image, [0]),
        transposed,
        lambda: tf.reverse(transposed(), [1]),
        lambda: tf.reverse(transposed(), [0, 1]),
        lambda: tf.reverse(transposed(), [0]),
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32), 0, 8)
    image = tf.switch_case(index, branches)
    image.set_shape([None, None, 3])
    return image


def fetch_image(location) -> np.ndarray:
    """Reads an image from a file path, or from an http(s) URL through Keras' file cache.

    A URL is downloaded once into ``~/.keras/datasets/`` (``$KERAS_HOME``) and read from
    there afterwards, offline included.

    Args:
        location: a path, or a URL starting with ``http://`` or ``https://``.

    Returns:
        uint8 array of shape [H, W, 3].

    Raises:
        DataError: the file is missing or unreadable, or the download failed; the message
            says how to use a local file instead.

    Example:
        >>> style = fetch_image("styles/wave.jpg")  # doctest: +SKIP
    """
    text = os.fspath(location)
    if not text.startswith(("http://", "https://")):
        return read_image(text)
    import keras

    name = os.path.basename(text.split("?")[0]) or "image"
    try:
        path = keras.utils.get_file(fname=name, origin=text, cache_subdir="datasets")
    except Exception as error:  # no network, HTTP error: reported alike
        raise DataError(
            f"could not download the image {text!r} ({type(error).__name__}: {error}); "
            f"download it by hand and give its local path instead") from error
    return read_image(path)


def resize_long_side(images: tf.Tensor, long_side: int) -> tf.Tensor:
    """Resizes float ``[N, H, W, C]`` images (antialiased bilinear) so that the longer side
    is ``long_side``, keeping the aspect ratio; returns them unchanged when it already is.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    if max(height, width) == long_side:
        return images
    scale = long_side / max(height, width)
    return tf.image.resize(images, (max(1, round(height * scale)), max(1, round(width * scale))),
                           method="bilinear", antialias=True)


#: What the Python API takes as an image, for the messages that refuse anything else.
ACCEPTED = ("a file path, a PIL.Image, or a numpy array (uint8 or uint16 HxW, HxWx3 or "
            "HxWx4; or float in [0, 1])")


def image_to_rgb(image) -> tuple[np.ndarray, dict]:
    """Any image the Python API takes, as a uint8 ``HxWx3`` array.

    Args:
        image: a path, a ``PIL.Image`` (turned upright by its EXIF orientation; 16-bit
            ones scaled), or a ``numpy`` array: uint8 ``HxW``, ``HxWx3`` or ``HxWx4``,
            uint16 (scaled to 8 bits), or float in [0, 1].

    Returns:
        ``(rgb, kind)``: the array, and what the input was (``{"path": ...}``,
        ``{"pil": True}`` or ``{"gray": bool, "float": bool}``) for giving a result back
        as the same kind.

    Raises:
        DataError: an unreadable file; an array that is not an image, a float one outside
            [0, 1], non-finite pixels; anything else (None, bytes, lists), with what is
            accepted.
    """
    if isinstance(image, str | os.PathLike):
        return read_image(image), {"path": image}
    if isinstance(image, Image.Image):
        return pillow_to_rgb(ImageOps.exif_transpose(image)), {"pil": True}
    if not isinstance(image, np.ndarray):
        what = type(image).__name__
        hint = {"NoneType": "", "bytes": " (encoded bytes: open them first, "
                "PIL.Image.open(io.BytesIO(data)))",
                "list": " (a list of images goes to kstyle.stylize; an array: np.asarray)",
                "tuple": " (a list of images goes to kstyle.stylize)"}.get(what, "")
        raise DataError(f"expected an image: {ACCEPTED}; got {what}{hint}")
    array = image
    is_float = np.issubdtype(array.dtype, np.floating)
    if is_float or array.dtype == np.uint16:
        finite = np.isfinite(array)
        if not finite.all():
            raise DataError(f"the image has {int(array.size - finite.sum()):,} NaN or "
                            "infinite values; expected finite pixels")
    if is_float:
        low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        if low < 0.0 or high > 1.0:
            hint = (": divide by 255 (or pass uint8)" if high <= 255.0 and low >= 0.0
                    else "")
            raise DataError(f"a float image must be in [0, 1]; this one spans "
                            f"[{low:g}, {high:g}]{hint}")
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype == np.uint16:
        array = np.round(array / 257.0).astype(np.uint8)
    if array.dtype != np.uint8:
        raise DataError(f"expected an image: {ACCEPTED}; got an array of dtype {array.dtype}")
    gray = array.ndim == 2
    if gray:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise DataError(
            f"expected an image array of shape HxW, HxWx3 or HxWx4, got {array.shape}")
    return np.ascontiguousarray(array[..., :3]), {"gray": gray, "float": is_float}


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
    rgb, kind = image_to_rgb(image)
    if "path" in kind:
        src = Path(kind["path"])

        def to_file(result, out=None):
            from kstyle.data.outputs import check_not_an_input

            dest = Path(out) if out else src.with_name(f"{src.stem}_kstyle.png")
            check_not_an_input(dest, src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest, suffix=dest.suffix) as tmp, open(tmp, "wb") as file:
                save_image(file, result, _pil_format(dest))
            return dest

        return rgb, to_file
    if "pil" in kind:
        return rgb, lambda result, out=None: Image.fromarray(result)

    def to_array(result, out=None):
        if kind["gray"]:
            result = result.mean(axis=-1).round().astype(np.uint8)
        return result.astype(np.float32) / 255.0 if kind["float"] else result

    return rgb, to_array


def save_image(file, image: np.ndarray, format: str = "PNG", **options) -> None:
    """Writes a uint8 ``HxWx3`` result to ``file`` (an open binary file) in ``format``
    (a Pillow format name), tagged sRGB: the colour space results are in (inputs with
    another profile were converted to it).

    A PNG is written a band of rows at a time (:mod:`kstyle.data.png`): no copy of a
    large result in memory; other formats go through Pillow. ``options``: Pillow's (for
    a PNG, ``compress_level`` only).
    """
    profile = srgb_profile_bytes()
    if format == "PNG":
        from kstyle.data.png import write_png

        write_png(file, image, icc_profile=profile, level=options.get("compress_level", 6))
    else:
        Image.fromarray(image).save(file, format=format, icc_profile=profile, **options)


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}.get(ext, "PNG")
