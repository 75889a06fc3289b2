"""Recipes: TOML files turned into frozen, typed, validated dataclasses.

A recipe has three tables, ``[data]``, ``[model]`` and ``[train]``, each mapped to a frozen
dataclass whose fields carry a default, a one-line doc and their bounds
(``kstyle.models.options.option``; ``kstyle recipe keys`` lists them). ``[model]`` is the
options class of ``model.kind`` (``kstyle.models.KINDS``); nothing here depends on a kind.

The module is a little over 400 lines because it is the one place that reads user TOML:
the two tables the runner owns, the parser with its error messages (file, key, value, what
is allowed) and the writer of resolved recipes belong together.

An optional key (``data.load_size``, ``train.steps_per_epoch``, ...) is unset with ``"none"``.
Precedence is ``--set`` overrides > TOML > defaults. Every problem (unknown key, wrong type,
bad enum value, missing folder) raises one :class:`~kstyle.errors.RecipeError` naming the
file, the ``table.key``, the bad value and what is allowed.

Example:
    >>> recipe = load_recipe("recipes/quickstart.toml", ["train.epochs=2"])
    >>> recipe.train.epochs
    2
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kstyle.data.kinds import get_data_kind
from kstyle.data.layout import KNOWN_DATASETS
from kstyle.errors import RecipeError
from kstyle.models import DEFAULT_KIND, KINDS
from kstyle.models.options import ModelOptions, OptionError, check_fields, is_path, option


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` table: where pairs come from and how they are shaped."""

    source: Literal["ab", "folders", "photos", "tfds", "synthetic"] = option(
        "ab", "ab: side-by-side AB images; folders: A/ and B/ with matching names; "
        "photos: one folder, pairs derived; tfds: a tensorflow-datasets name; "
        "synthetic: built-in generated pairs")
    path: str = option("", "folder (or a known dataset name such as 'facades', or a tfds name)")
    direction: Literal["a2b", "b2a"] = option("a2b", "translate A to B, or B to A")
    derive: Literal["gray", "edges", "none"] = option(
        "gray", "for photos/tfds: gray -> color, or edges -> photo")
    train_split: str = option("train", "sub-folder (or tfds split) used for training",
                             name=True)
    val_split: str = option("val", "sub-folder (or tfds split) for samples and validation",
                           name=True)
    image_size: int = option(256, "side of the square crop fed to the networks, in pixels",
                             positive=True)
    load_size: int | None = option(286, "resize to this before the random crop (none: no crop)",
                                   positive=True)
    flip: bool = option(True, "random horizontal flip, the same for A and B")
    batch_size: int = option(1, "images per training step", positive=True)
    cache: bool = option(False, "cache decoded images in memory")
    bad_images: Literal["stop", "skip"] = option(
        "stop", "image files that cannot be used (truncated, not an image, too big or small, "
        "wrong AB aspect, no partner): stop lists them and stops; skip trains without them "
        "(and their partners) and says how many ('kstyle data check' lists them)")
    synthetic_count: int = option(512, "number of pairs the synthetic source generates",
                                  positive=True)
    tfds_keys: list[str] = option(["image"], "tfds image feature(s): one to derive, or A and B",
                                 name=True)
    data_dir: str = option("", "tensorflow-datasets data_dir (empty: tfds default)")
    style_path: str = option("", "model.kind adain: a folder of style images (paintings), "
                             "each resized to load_size and cropped like the content")
    seed: int = option(0, "seed for shuffling, crops and the synthetic source",
                       low=0, high=2**32 - 1)


@dataclass(frozen=True)
class TrainConfig:
    """The ``[train]`` table: schedule, optimizer, and what a run writes."""

    epochs: int = option(200, "number of epochs", positive=True)
    steps_per_epoch: int | None = option(None, "steps per epoch (none: one full pass)",
                                         positive=True)
    out_dir: str = option("", "run folder (empty: saved_models/<recipe name>)")
    init_from: str = option("", "a run folder (trained, or written by kstyle import), or a "
                            "published model's name (kstyle models), whose networks a new "
                            "run starts from: fine-tuning. Networks it lacks start fresh; a "
                            "resumed run ignores it")
    lr: float = option(2e-4, "initial learning rate of every optimizer", low=0)
    beta_1: float = option(0.5, "Adam beta_1", low=0, high=1, high_open=True)
    beta_2: float = option(0.999, "Adam beta_2", low=0, high=1, high_open=True)
    lr_policy: Literal["constant", "linear_decay", "step"] = option(
        "linear_decay", "linear_decay: constant, then linearly to 0 at the last epoch; "
        "step: multiply by step_gamma every step_epochs epochs")
    decay_start_epoch: int = option(100, "linear_decay: epochs at the initial lr before "
                                   "decaying", low=0)
    step_epochs: int = option(50, "step: epochs between lr drops", low=1)
    step_gamma: float = option(0.5, "step: factor applied at each drop", positive=True)
    checkpoint_every: int = option(500, "save a resumable checkpoint every N steps (and at "
                               "each epoch end)", positive=True)
    sample_every: int = option(1, "write a sample grid every N epochs", positive=True)
    num_samples: int = option(4, "rows in the sample grid", low=0)
    val_steps: int = option(8, "validation batches evaluated at each epoch end (0: none)",
                          low=0)
    jit_compile: Literal["auto", True, False] = option(
        "auto", "compile the train step with XLA: true, false, or auto (on with a GPU; off "
        "on CPUs, where XLA made the steps slower: bench/train_speed.py)")
    distribute: Literal["none", "mirrored", "multi_worker"] = option(
        "none", "mirrored: data-parallel over every local GPU (or the CPU devices TensorFlow "
        "shows), the batch split across them; multi_worker: the same across the processes "
        "(hosts) of $TF_CONFIG, each running the same kstyle fit, the first (chief) writing "
        "the run folder")
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = option(
        "auto", "compute dtype: auto picks mixed_bfloat16 where the hardware has fast "
        "bfloat16 math (GPUs of compute capability 8.0+, CPUs with AMX, ARM CPUs with bf16), "
        "mixed_float16 on GPUs of 7.x (loss-scaled), else float32 (on CPUs with AVX-512 "
        "BF16 alone too: float32 steps are faster there); variables, norms, "
        "losses and outputs stay float32. fit prints the choice; run.json records it")
    seed: int = option(0, "seed of weight init and dropout", low=0, high=2**32 - 1)


@dataclass(frozen=True)
class Recipe:
    """A whole recipe. ``name`` defaults to the file's stem."""

    name: str
    data: DataConfig
    model: ModelOptions
    train: TrainConfig
    source: str = "<defaults>"

    @property
    def run_dir(self) -> Path:
        """The folder the run writes to."""
        return Path(self.train.out_dir or os.path.join("saved_models", self.name))

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain tables (``None`` values left out)."""
        out: dict[str, Any] = {"name": self.name}
        for table in ("data", "model", "train"):
            out[table] = {
                k: v for k, v in dataclasses.asdict(getattr(self, table)).items() if v is not None
            }
        return out

    def to_toml(self) -> str:
        """The resolved recipe as TOML text, readable back by :func:`load_recipe`."""
        tables: dict[str, Any] = {"name": self.name}
        for table in ("data", "model", "train"):  # TOML has no null: None is written "none"
            tables[table] = {k: "none" if v is None else v
                             for k, v in dataclasses.asdict(getattr(self, table)).items()}
        return dumps_toml(tables)


TABLES: dict[str, type] = {"data": DataConfig, "train": TrainConfig}
TABLE_NAMES = ("data", "model", "train")


# --------------------------------------------------------------------------- parsing


def load_recipe(path: str | os.PathLike, overrides: typing.Sequence[str] = ()) -> Recipe:
    """Reads a recipe file, applies ``table.key=value`` overrides, validates it.

    Args:
        path: the TOML file.
        overrides: strings ``table.key=value``; the value is read as TOML (so
            ``2``, ``2e-4``, ``true``, ``"text"``), and a bare word as a string.

    Returns:
        The validated :class:`Recipe`.

    Raises:
        RecipeError: naming the file and the ``table.key`` at fault.
    """
    path = Path(path)
    return recipe_from_dict(_read_toml(path), overrides, source=str(path),
                            default_name=path.stem)


def saved_model_options(path: str | os.PathLike) -> ModelOptions:
    """The ``[model]`` of a recipe file, typed but not checked against the data or disk.

    For the recipe a run folder saved: its data may have moved since, which does not
    change the model its checkpoints hold.
    """
    raw = _read_toml(Path(path))
    model = raw.get("model", {}) if isinstance(raw.get("model", {}), dict) else {}
    kind = model.get("kind", DEFAULT_KIND)
    if not isinstance(kind, str) or kind not in KINDS:
        raise RecipeError(f"{path}: model.kind = {kind!r} is not a model kind; allowed: "
                          f"{_fmt(KINDS)}")
    return _build(KINDS[kind], model, "model", str(path))


def _read_toml(path: Path) -> dict[str, Any]:
    """A recipe file's tables; RecipeError naming the file, and the line where it can."""
    src = str(path)
    if not path.is_file():
        raise RecipeError(f"{src}: recipe file not found (expected a .toml file)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RecipeError(f"{src}: cannot read the recipe ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise RecipeError(
            f"{src}: not valid TOML: the file is not UTF-8 text (byte "
            f"{data[e.start:e.start + 1]!r} at line {line}, column {column})") from None
    try:
        raw = tomllib.loads(text)
    except ValueError as e:  # TOMLDecodeError, or an integer of more than 4300 digits
        lines = text.split("\n")  # where a truncated file stops
        end = f"at end of document: line {len(lines)}, column {len(lines[-1]) + 1}"
        raise RecipeError(
            f"{src}: not valid TOML: {str(e).replace('at end of document', end)}") from None
    except RecursionError:
        lines = text.splitlines()
        line = max(range(len(lines)), key=lambda i: lines[i].count("[") + lines[i].count("{"))
        raise RecipeError(
            f"{src}: not valid TOML: arrays or tables nested too deeply (at line {line + 1})"
        ) from None
    return raw


def recipe_from_dict(raw: dict[str, Any], overrides: typing.Sequence[str] = (), *,
                     source: str = "<dict>", default_name: str = "run") -> Recipe:
    """Builds a validated :class:`Recipe` from parsed TOML tables (see :func:`load_recipe`)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        _apply_override(raw, item, source)

    allowed_top = {"name", "data", "model", "train"}
    for key in raw:
        if key not in allowed_top:
            raise RecipeError(
                f"{source}: unknown key {key!r} at top level{_did_you_mean(key, allowed_top)}; "
                f"allowed: {_fmt(allowed_top)}")
    for table in ("data", "model", "train"):
        if not isinstance(raw.get(table, {}), dict):
            raise RecipeError(f"{source}: '{table}' must be a table ([{table}])")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or "/" in name or name.startswith(".") \
            or not name.isprintable() or len(name.encode("utf-8", "replace")) > 200:
        raise RecipeError(f"{source}: name = {name!r} must be a plain folder name")

    model_raw = raw.get("model", {})
    kind = model_raw.get("kind", DEFAULT_KIND)
    if not isinstance(kind, str) or kind not in KINDS:  # a list or table is unhashable
        raise RecipeError(
            f"{source}: model.kind = {kind!r} is not a model kind"
            f"{_did_you_mean(kind, KINDS)}; allowed: {_fmt(KINDS)}")
    data = _build(DataConfig, raw.get("data", {}), "data", source)
    model = _build(KINDS[kind], model_raw, "model", source)
    train = _build(TrainConfig, raw.get("train", {}), "train", source)
    recipe = Recipe(name=name, data=data, model=model, train=train, source=source)
    _check(recipe)
    return recipe


def _apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise RecipeError(
            f"{source}: override {item!r} must look like table.key=value "
            "(e.g. train.epochs=5)")
    table, name = parts
    if table not in TABLE_NAMES:
        raise RecipeError(
            f"{source}: override {item!r}: unknown table {table!r}"
            f"{_did_you_mean(table, TABLE_NAMES)}; allowed: data, model, train")
    raw.setdefault(table, {})
    if not isinstance(raw[table], dict):
        raise RecipeError(f"{source}: '{table}' must be a table ([{table}])")
    raw[table][name] = parse_value(text.strip())


def parse_value(text: str) -> Any:
    """Reads an override value as TOML, falling back to a bare string."""
    if text.lower() in ("none", "null"):
        return None
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (ValueError, RecursionError):  # not TOML, a 4300-digit int, or deep nesting
        return text
    return parsed["v"] if len(parsed) == 1 else text  # "1\nx = 2" is text, not 1


def _build(cls: type, values: dict[str, Any], table: str, source: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise RecipeError(
                f"{source}: unknown key {f'{table}.{key}'!r}{_did_you_mean(key, fields)}; "
                f"allowed keys of [{table}]: {_fmt(fields)}")
        kwargs[key] = _coerce(value, hints[key], f"{table}.{key}", source)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        # TOML has no null: "none" (as to_toml writes it) means None, like --set key=none.
        if type(None) in args and (value is None or (
                isinstance(value, str) and value.lower() == "none")):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is Literal:
        if value is None and "none" in args:  # --set table.key=none reads as None
            value = "none"
        # Compared with their types: 1 == True and 0.0 == False, but neither is a bool.
        if not any(type(value) is type(a) and value == a for a in args):
            raise RecipeError(
                f"{source}: {key} = {value!r} is not allowed{_did_you_mean(value, args)}; "
                f"allowed: {_fmt(args)}")
        return value
    if origin is list:
        (item_type,) = args
        if not isinstance(value, list):
            raise RecipeError(f"{source}: {key} = {value!r} must be a list of {item_type.__name__}")
        return [_coerce(v, item_type, key, source) for v in value]
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int such as 10**400
            number = math.inf
        if not math.isfinite(number):
            raise RecipeError(f"{source}: {key} = {value!r} must be a finite number")
        return number
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:  # TOML's (and TensorFlow's) integers are 64-bit
            raise RecipeError(f"{source}: {key} = {value!r} is out of the 64-bit integer range")
        return value
    if hint is str and isinstance(value, str):
        if "\x00" in value or not value.encode("utf-8", "replace").decode() == value:
            raise RecipeError(
                f"{source}: {key} = {value!r} holds a NUL or a lone surrogate, which no file "
                "name or layer name can hold")
        return value
    if hint is bool and isinstance(value, bool):
        return value
    raise RecipeError(
        f"{source}: {key} = {value!r} has the wrong type: expected {_type_name(hint)}, "
        f"got {type(value).__name__}")


def _check(recipe: Recipe) -> None:
    """Checks each field's bounds, then what spans fields: the tables, then the model's own
    checks (``ModelOptions.check``), then that local data folders exist."""
    src = recipe.source
    d, m = recipe.data, recipe.model
    try:
        # Bounds first: later checks compute 2**model.num_downs, and NumPy seeds must fit
        # in 32 bits.
        for table in TABLE_NAMES:
            check_fields(getattr(recipe, table), table)
        if d.load_size is not None and d.load_size < d.image_size:
            raise OptionError(
                f"data.load_size = {d.load_size} must be >= data.image_size = "
                f"{d.image_size} (or none)")
        m.check(d)
    except OptionError as e:
        raise RecipeError(f"{src}: {e}") from None
    sources = get_data_kind(m.data_kind).sources
    if sources is not None and d.source not in sources:
        raise RecipeError(
            f"{src}: data.source = {d.source!r} gives pairs; model.kind = {m.kind!r} trains on "
            f"{get_data_kind(m.data_kind).doc}: use one of {_fmt(sources)}")
    if d.source in ("ab", "folders", "photos"):
        if not d.path:
            raise RecipeError(
                f"{src}: data.path is empty; source '{d.source}' needs a folder of images")
        if not is_path(d.path, Path.exists) and not (d.source == "ab"
                                                     and d.path in KNOWN_DATASETS):
            known = f" or a known dataset name ({_fmt(KNOWN_DATASETS)})" if d.source == "ab" else ""
            raise RecipeError(
                f"{src}: data.path = {d.path!r} does not exist; expected a folder{known}")
    if d.source == "tfds" and not d.path:
        raise RecipeError(f"{src}: data.path must name a tensorflow-datasets dataset")
    init = recipe.train.init_from
    from kstyle.inference.manifest import is_name

    if init and not is_name(init) and not (Path(init) / "run.json").is_file():
        what = "does not exist" if not Path(init).exists() else "holds no run.json"
        raise RecipeError(f"{src}: train.init_from = {init!r} {what}; expected a run folder "
                          "written by 'kstyle fit' or 'kstyle import', or a published "
                          "model's name ('kstyle models' lists them)")


def _did_you_mean(word: Any, choices) -> str:
    """' (did you mean 'x'?)' for the closest of ``choices``, or ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- output


def dumps_toml(tables: dict[str, Any]) -> str:
    """Writes flat tables of scalars and lists as TOML (enough for recipes)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in tables.items() if not isinstance(v, dict)]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):  # a basic string: quotes, backslashes and controls escaped
        return '"' + "".join(f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F
                             else c for c in v) + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def describe_keys(kind: str = DEFAULT_KIND) -> str:
    """Every recipe key with its type, default and doc, as text (for ``--help``)."""
    out = []
    for table, cls in (("data", DataConfig), ("model", KINDS[kind]), ("train", TrainConfig)):
        out.append(f"[{table}]")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append(f"  {f.name} ({_type_name(hints[f.name])}, default {default!r}): "
                       f"{f.metadata.get('doc', '')}")
    return "\n".join(out)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin in (types.UnionType, typing.Union):
        return " or ".join("none" if a is type(None) else _type_name(a)
                           for a in typing.get_args(hint))
    if origin is list:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def _fmt(values) -> str:
    return ", ".join(repr(v) if not isinstance(v, str) else v for v in sorted(values, key=str))
