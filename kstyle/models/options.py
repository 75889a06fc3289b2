"""What every model kind's options share: documented fields, their bounds, generic checks.

Each model kind declares its options in a TensorFlow-free module next to its model
(``kstyle/models/<kind>_options.py``): a frozen dataclass of :func:`option` fields, each
field's default and one-line doc written there only. Recipes map ``[model]`` onto it, and
the model builds itself from it (``Model.from_options``). Keeping the options free of
TensorFlow is what lets ``kstyle recipe keys``, ``kstyle recipe show`` and the recipe
checks run at once, without importing Keras (which takes seconds).

Example:
    >>> @dataclass(frozen=True)
    ... class MyOptions(ModelOptions):
    ...     kind: str = option("mine", "which model to train")
    ...     depth: int = option(4, "levels of the network", low=1)
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal


class OptionError(ValueError):
    """A recipe value a model cannot use; the message starts with the ``table.key``."""


def option(default, doc: str, *, low=None, high=None, high_open: bool = False,
           positive: bool = False, name: bool = False):
    """A dataclass field with its default, its one-line doc and its bounds.

    Args:
        default: the default value (lists are copied for each instance).
        doc: one line, shown by ``kstyle recipe keys``.
        low, high: inclusive bounds of a number (of each item of a list of numbers).
        high_open: ``high`` itself is not allowed.
        positive: the number must be > 0.
        name: the string (each string of a list) names something: it cannot be empty.
    """
    metadata = {"doc": doc, "low": low, "high": high, "high_open": high_open,
                "positive": positive, "name": name}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def field_problem(value: Any, metadata: typing.Mapping) -> str | None:
    """What is wrong with ``value`` under a field's bounds (``None``: nothing)."""
    if value is None:
        return None
    if isinstance(value, list):
        if metadata.get("name") and (not value or any(not str(v).strip() for v in value)):
            return "must be a list of non-empty names"
        problems = [field_problem(v, metadata) for v in value]
        return "must not be negative" if any(problems) else None
    if isinstance(value, str):
        return "is empty; it must name something" if metadata.get("name") and \
            not value.strip() else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    low, high, high_open = metadata.get("low"), metadata.get("high"), metadata.get("high_open")
    if metadata.get("positive") and value <= 0:
        return "must be a positive number"
    above = high is None or (value < high if high_open else value <= high)
    if (low is not None and value < low) or not above:
        if high is None:
            return f"must be >= {low}"
        return f"must be in [{low}, {high}{')' if high_open else ']'}"
    return None


def field_message(key: str, value: Any, metadata: typing.Mapping) -> str | None:
    """``"key = value must be ..."`` when ``value`` breaks the field's bounds, else None."""
    problem = field_problem(value, metadata)
    if problem is None:
        return None
    return f"{key} {problem}" if problem.startswith("is empty") else f"{key} = {value!r} {problem}"


def check_fields(config, table: str) -> None:
    """Raises :class:`OptionError` for the first field of ``config`` out of its bounds."""
    for f in dataclasses.fields(config):
        message = field_message(f"{table}.{f.name}", getattr(config, f.name), f.metadata)
        if message:
            raise OptionError(message)


def is_path(path: str, test=Path.is_file) -> bool:
    """``test(Path(path))``, False where the OS refuses the name (too long, say)."""
    try:
        return test(Path(path))
    except (OSError, ValueError):
        return False


def check_vgg_weights(value: str) -> None:
    """``model.vgg_weights``: ``imagenet``, ``random`` (tests) or an existing file."""
    if value not in ("imagenet", "random") and not is_path(value):
        raise OptionError(
            f"model.vgg_weights = {value!r} is not a file; expected 'imagenet' or the path of "
            "VGG19 weights (.h5)")


# Keys several kinds share: one type and one doc each (the default is each kind's).
Norm = Literal["batch", "instance", "none"]
GanMode = Literal["vanilla", "lsgan", "hinge"]


def kind_option(kind: str):
    return option(kind, "which model to train (kstyle recipe keys --kind KIND)")


def norm_option(default: str):
    return option(default, "normalization layers")


def gan_mode_option(default: str):
    return option(default, "adversarial loss")


def dropout_option(default: float, where: str):
    return option(default, f"dropout rate {where} (0 turns it off)", low=0, high=1,
                  high_open=True)


def d_base_filters_option():
    return option(64, "filters of the first discriminator layer", low=1)


def d_layers_option():
    return option(3, "PatchGAN strided layers: 3 gives 70x70 patches", low=1)


Discriminator = Literal["patch", "pixel"]


def discriminator_option():
    return option("patch", "patch: the PatchGAN of d_layers strided convs; pixel: the 1x1 "
                  "PixelGAN, which judges each pixel alone (the reference's --netD pixel)")


@dataclass(frozen=True)
class ModelOptions:
    """The ``[model]`` table of one model kind; every kind subclasses it.

    A subclass sets ``kind``'s default to its registry name, ``model`` to the dotted path
    of its Keras model class (imported only when a model is built) and ``data_kind`` to
    what it trains on, and adds its fields. Its :meth:`check` adds the checks that span
    fields or tables.
    """

    kind: str = kind_option("pix2pix")

    #: ``"module:Class"`` of the Keras model built from these options.
    model: ClassVar[str] = ""
    #: What the model trains on: ``"paired"`` (input, target) pairs, ``"unpaired"`` (a, b)
    #: batches of two domains, ``"images"`` (batches of single images) or ``"styled"``
    #: (content photos, each with a style image from ``data.style_path``).
    data_kind: ClassVar[str] = "paired"

    def stylize_arguments(self, data) -> str:
        """What ``kstyle stylize --model RUN`` needs besides the inputs, for the hint that
        ends a run ("" by default; a model of any style names a style image)."""
        return ""

    def check(self, data) -> None:
        """Checks that span fields (``data`` is the recipe's ``[data]``); raises OptionError."""


def style_problems(styles, blend) -> list[str]:
    """What is wrong with a list of styles and their weights (``blend``), if anything."""
    problems = [] if styles else ["style: give at least one style image"]
    if blend is not None and (len(blend) != len(styles) or any(b < 0 for b in blend)
                              or not sum(blend) > 0):
        problems.append(f"blend = {list(blend)}: expected {len(styles)} non-negative "
                        "weight(s), one per style, not all zero")
    return problems
