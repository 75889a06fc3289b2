"""Hostile recipes: every shipped recipe, mutated at random, either loads as a valid recipe
(which then round-trips through ``to_toml``) or raises a RecipeError naming the file and
the key (or the line and column), never another exception.

The mutations: delete a key or a table; add an unknown key (top level or in a table,
often a near-miss typo of a real key); replace a value with one of another type or an
extreme one; replace a table with a scalar; declare a table twice; truncate the file,
insert or flip bytes, break its UTF-8; and hostile ``--set table.key=value`` overrides.

Runs are derandomized and without an example database, so CI sees the same examples every
time; ``pytest --hypothesis-show-statistics`` prints how many examples of each mutation
gave a valid recipe and how many a RecipeError.
"""

import dataclasses
import datetime
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kstyle.cli import main
from kstyle.errors import RecipeError
from kstyle.models import KINDS
from kstyle.recipes import TABLES, load_recipe

RECIPE_FILES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))
ORIGINALS = {p.stem: p.read_bytes() for p in RECIPE_FILES}
PARSED = {name: tomllib.loads(text.decode()) for name, text in ORIGINALS.items()}
FIELDS = {
    "data": sorted(f.name for f in dataclasses.fields(TABLES["data"])),
    "model": sorted({f.name for cls in KINDS.values() for f in dataclasses.fields(cls)}),
    "train": sorted(f.name for f in dataclasses.fields(TABLES["train"])),
}
TABLE_NAMES = ("data", "model", "train")


def fields_of(name: str) -> list[tuple[str, str]]:
    """Every (table, key) a recipe of this file's model kind may set."""
    kind = PARSED[name].get("model", {}).get("kind", "pix2pix")
    classes = {"data": TABLES["data"], "model": KINDS[kind], "train": TABLES["train"]}
    return [(t, f.name) for t, cls in classes.items() for f in dataclasses.fields(cls)]

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=100,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
WIDE = settings(FUZZ, max_examples=250)  # for the mutations with the most cases

# What an error must contain to name its place: a table.key, the recipe name, a table, a
# top-level key, an override, or the line (and column) of a syntax error.
NAMES_A_PLACE = re.compile(
    r"[\"'](data|model|train)\.|\b(data|model|train)\.\w|\bname = "
    r"|'(data|model|train)' must be a table|top level|override |line \d+")


# --------------------------------------------------------------------------- TOML writer


def toml_value(v) -> str:
    """Any value tomllib can return (and a few it cannot: NaN, huge ints) as TOML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def dumps(doc: dict) -> str:
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_string(name)}]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- strategies

EXTREME = st.sampled_from([
    0, -1, 1, 3, 2**31, 2**63 - 1, -(2**63), 2**64, 10**400,
    0.0, -0.0, 0.5, -1.5, 1e308, 5e-324, math.nan, math.inf, -math.inf,
    True, False, "", " ", "none", "None", "true", "1", "\x00", "a\nb", "tab\there", '"q"\\',
    "ü" * 100, "x" * 300, "🎨", "/", "..", "./x", "http://", "https://x/y.jpg",
    [], [1, "a"], [[]], [""], ["block1_conv1"], [0.5, math.nan], {}, {"a": 1},
    {"kind": "pix2pix"}, datetime.date(1979, 5, 27), datetime.datetime(1979, 5, 27, 7, 32),
    datetime.time(7, 32), datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC),
])
SCALAR = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=12))
VALUE = st.one_of(
    EXTREME, SCALAR, st.lists(SCALAR, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=4), SCALAR, max_size=2),
    st.datetimes(), st.dates(), st.times())


@st.composite
def typo(draw, word: str) -> str:
    """A near miss of ``word``: a character dropped, doubled, swapped or changed, or case."""
    i = draw(st.integers(0, max(0, len(word) - 1)))
    how = draw(st.sampled_from(["drop", "double", "swap", "change", "upper", "dash", "plural"]))
    if how == "drop":
        return word[:i] + word[i + 1:] or "x"
    if how == "double":
        return word[:i] + word[i:i + 1] * 2 + word[i + 1:]
    if how == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if how == "change":
        return word[:i] + draw(st.sampled_from("aeiorstx_")) + word[i + 1:]
    if how == "upper":
        return word.upper()
    if how == "dash":
        return word.replace("_", "-") if "_" in word else word + "-"
    return word + "s"


def real_key(doc: dict):
    """(table, key) pairs present in a parsed recipe, plus ('', 'name') if set."""
    return [(t, k) for t in TABLE_NAMES for k in doc.get(t, {})] + (
        [("", "name")] if "name" in doc else [])


@st.composite
def structured(draw, kind: str):
    """A mutated recipe (as a TOML text) and the key the mutation touched."""
    name = draw(st.sampled_from(sorted(PARSED)))
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PARSED[name].items()}
    if kind == "delete":
        what = draw(st.sampled_from([*real_key(doc), *((t, None) for t in TABLE_NAMES)]))
        table, key = what
        if key is None:
            doc.pop(table, None)
        elif table:
            del doc[table][key]
        else:
            doc.pop(key)
        return name, dumps(doc)
    if kind == "unknown":
        table = draw(st.sampled_from(["", *TABLE_NAMES]))
        known = FIELDS.get(table, ["name", *TABLE_NAMES])
        key = draw(st.one_of(typo(draw(st.sampled_from(known))),
                             st.text(min_size=1, max_size=10)))
        value = draw(VALUE)
        (doc.setdefault(table, {}) if table else doc)[key] = value
        return name, dumps(doc)
    if kind == "wrong_type":
        table, key = draw(st.sampled_from(real_key(doc) + fields_of(name)))
        value = draw(st.one_of(EXTREME, VALUE))
        (doc.setdefault(table, {}) if table else doc)[key] = value
        return name, dumps(doc)
    if kind == "table_scalar":
        table = draw(st.sampled_from(TABLE_NAMES))
        doc[table] = draw(st.one_of(EXTREME, SCALAR).filter(lambda v: not isinstance(v, dict)))
        return name, dumps(doc)
    if kind == "duplicate_table":
        table = draw(st.sampled_from(TABLE_NAMES))
        extra = {table: dict(list(doc.get(table, {}).items())[:draw(st.integers(0, 2))])}
        text = dumps(doc) + dumps(extra)
        return name, text
    raise ValueError(kind)


@st.composite
def raw(draw, kind: str):
    """A recipe file's bytes, damaged."""
    name = draw(st.sampled_from(sorted(ORIGINALS)))
    data = ORIGINALS[name]
    at = draw(st.integers(0, len(data)))
    if kind == "truncate":
        return name, data[:at]
    if kind == "insert":
        return name, data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    if kind == "flip":
        at = min(at, len(data) - 1)
        return name, data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "bad_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80", b"\xe2\x82", b"\xed\xa0\x80",
                                    b"\xef\xbb\xbf"]))
        return name, data[:at] + bad + data[at:]
    raise ValueError(kind)


@st.composite
def override(draw):
    """A recipe name and a hostile ``--set`` string."""
    name = draw(st.sampled_from(sorted(PARSED)))
    table, key = draw(st.sampled_from(fields_of(name)))
    if draw(st.integers(0, 3)) == 0:  # a near miss of the table or the key, or noise
        table = draw(st.sampled_from([table, "optim", "", "data.data"]) | typo(table))
        key = draw(st.one_of(typo(key), st.text(max_size=6)))
    text = draw(st.one_of(EXTREME.map(toml_value), VALUE.map(toml_value), st.text(max_size=12),
                          st.sampled_from(["none", "null", "[1,", "{", '"', "1\nx = 2", "=",
                                           "1e999", "[" * 3000, "1" + "0" * 5000])))
    sep = draw(st.sampled_from(["=", "=", "=", " = ", ":", ""]))
    return name, f"{table}.{key}{sep}{text}" if table else f"{key}{sep}{text}"


# --------------------------------------------------------------------------- the property


def well_typed(value, hint) -> bool:
    """Whether ``value`` has exactly the annotated type (a bool is no int, NaN no float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(well_typed(value, a) for a in args)
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if origin is list:
        return isinstance(value, list) and all(well_typed(v, args[0]) for v in value)
    if hint is float:
        return type(value) is float and math.isfinite(value)
    return type(value) is hint


def check(path: Path, overrides=(), kind="") -> str:
    """Loads ``path``: a valid recipe must round-trip, an error must name file and place."""
    try:
        recipe = load_recipe(path, overrides)
    except RecipeError as e:
        message = str(e)
        assert message.startswith(f"{path}: "), message
        assert NAMES_A_PLACE.search(message), message
        assert "\n" not in message.rstrip(), message
        event(f"{kind}: RecipeError")
        return "error"
    for config in (recipe.data, recipe.model, recipe.train):
        hints = typing.get_type_hints(type(config))
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            assert well_typed(value, hints[f.name]), (f.name, value)
    again_path = path.with_name("resolved.toml")
    again_path.write_text(recipe.to_toml(), encoding="utf-8")
    again = load_recipe(again_path)
    assert (again.name, again.data, again.model, again.train) == (
        recipe.name, recipe.data, recipe.model, recipe.train)
    event(f"{kind}: valid recipe")
    return "valid"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / f"{name}.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


STRUCTURED = ["delete", "unknown", "wrong_type", "table_scalar", "duplicate_table"]
RAW = ["truncate", "insert", "flip", "bad_utf8"]


@pytest.mark.parametrize("kind", STRUCTURED)
@WIDE
@given(data=st.data())
def test_structured_mutations(folder, kind, data):
    name, text = data.draw(structured(kind))
    check(write(folder, name, text), kind=kind)


@pytest.mark.parametrize("kind", RAW)
@FUZZ
@given(data=st.data())
def test_raw_text_mutations(folder, kind, data):
    name, content = data.draw(raw(kind))
    check(write(folder, name, content), kind=kind)


@WIDE
@given(case=override())
def test_override_mutations(folder, case):
    name, item = case
    check(write(folder, name, ORIGINALS[name]), [item], kind="override")


# --------------------------------------------------------------------------- the CLI


def cli_case(kind: str, folder: Path) -> tuple[Path, list[str]]:
    """One mutation of each class that fails validation, as a file and overrides."""
    quick = ORIGINALS["quickstart"].decode()
    cases = {
        "delete": quick.replace('source = "synthetic"', ""),  # source 'ab' needs a path
        "unknown": quick.replace("[model]", "[model]\nbase_filter = 8"),
        "wrong_type": quick.replace("epochs = 10", "epochs = nan"),
        "table_scalar": "train = 3\n" + quick.replace("[train]", "[other]"),
        "duplicate_table": quick + "\n[data]\nflip = false\n",
        "truncate": quick[:quick.index("image_size") + 12],
        "insert": quick.replace("[train]", "[train\x01]"),
        "flip": quick.replace("epochs = 10", "epochs = 1O"),
        "override": quick,
    }
    if kind == "bad_utf8":
        return write(folder, kind, ORIGINALS["quickstart"] + b"\n\xff = 1\n"), []
    overrides = ["train.epochs=-1"] if kind == "override" else []
    return write(folder, kind, cases[kind]), overrides


@pytest.mark.parametrize("kind", [*STRUCTURED, *RAW, "override"])
def test_cli_reports_errors_without_traceback(folder, kind):
    path, overrides = cli_case(kind, folder)
    with pytest.raises(RecipeError):
        load_recipe(path, overrides)
    sets = [arg for item in overrides for arg in ("--set", item)]
    for command in (["recipe", "show"], ["fit", "--quiet"]):
        result = CliRunner().invoke(main, [*command, str(path), *sets])
        assert result.exit_code in (1, 2), (command, result.output, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        assert re.search(rf"^Error: {re.escape(str(path))}: ", result.output, re.M), \
            result.output


def test_cli_shows_a_valid_mutation(folder):
    text = ORIGINALS["quickstart"].decode().replace("epochs = 10", "epochs = 3")
    result = CliRunner().invoke(main, ["recipe", "show", str(write(folder, "ok", text))])
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.output)["train"]["epochs"] == 3


# --------------------------------------------------------------------------- found bugs

QUICK = ORIGINALS["quickstart"].decode()


@pytest.mark.parametrize("text, overrides, expected", [
    # 2**num_downs with a huge num_downs hung (and ate memory) before the ranges were checked
    (QUICK.replace("num_downs = 6", "num_downs = 9223372036854775807"), [],
     "model.num_downs = 9223372036854775807 must be in [1, 16]"),
    (QUICK.replace("num_downs = 6", "num_downs = -1"), [], "model.num_downs = -1"),
    (QUICK, ["train.lr=nan"], "train.lr = nan must be a finite number"),
    (QUICK, ["model.lambda_l1=-inf"], "model.lambda_l1 = -inf must be a finite number"),
    (QUICK.replace("lr = 0.0005", "lr = 1" + "0" * 400), [], "train.lr = 1000"),
    (QUICK, ["data.seed=100000000000000000000"], "out of the 64-bit integer range"),
    (QUICK, ["train.seed=-1"], "train.seed = -1 must be in [0, 4294967295]"),
    (QUICK, ["train.beta_1=1.0"], "train.beta_1 = 1.0 must be in [0, 1)"),
    (QUICK, ["train.step_gamma=0"], "train.step_gamma = 0.0 must be a positive number"),
    (QUICK, ["model.lambda_l1=-1"], "model.lambda_l1 = -1.0 must be >= 0"),
    (QUICK, ["train.jit_compile=1"], "train.jit_compile = 1 is not allowed"),  # 1 == True
    (QUICK.replace('kind = "pix2pix"', "kind = []"), [], "model.kind = [] is not a model kind"),
    (QUICK.replace('kind = "pix2pix"', "kind = {a = 1}"), [], "model.kind = {'a': 1}"),
    (QUICK, ["data.source=folders", "data.path=" + "x" * 300], "data.path = 'xxxx"),
    (QUICK, ['data.path="\\u0000"'], "data.path = '\\x00' holds a NUL"),
    (QUICK, ['data.train_split=""'], "data.train_split is empty"),
    (QUICK, ["train.lr=" + "[" * 3000], "train.lr = '[[[["),
    (QUICK, ["train.epochs=1" + "0" * 5000], "train.epochs = '1000"),
    (QUICK, ["train.epochs=1\nx = 2"], "train.epochs = '1\\nx = 2'"),
    ("a = 1" + "0" * 5000 + "\n", [], "not valid TOML: Exceeds the limit (4300 digits)"),
    ("name = 'x'\na = " + "[" * 5000 + "\n", [], "nested too deeply (at line 2)"),
    (QUICK[:QUICK.index("image_size") + 12], [], "(at end of document: line 9, column 13)"),
    (QUICK.replace("[model]", "[model]\nnum_down = 6"),
     [], "unknown key 'model.num_down' (did you mean 'num_downs'?)"),
    (QUICK.replace("[model]", '[model]\n"\\u0085" = 6'), [], "unknown key 'model.\\x85'"),
    (QUICK, ["trian.epochs=1"], "unknown table 'trian' (did you mean 'train'?)"),
    (QUICK, ["model.gan_mode=lsgna"], "'lsgna' is not allowed (did you mean 'lsgan'?)"),
])
def test_found_bugs_stay_fixed(folder, text, overrides, expected):
    path = write(folder, "found", text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path, overrides)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_not_utf8_names_line_and_column(folder):
    path = write(folder, "latin1", "name = 'x'\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match=r"not UTF-8 text \(byte b'\\xe9' at line 2, column 6\)"):
        load_recipe(path)


@pytest.mark.parametrize("overrides", [
    ["data.load_size=none"],  # dropped by to_toml, it came back as the default 286
    ['data.train_split="a\\nb"', 'train.out_dir="tab\\there \\"q\\" \\\\"'],  # raw controls
    ['data.val_split="\\u007f\\u0001"'],
])
def test_round_trip_of_none_and_control_characters(folder, overrides):
    recipe = load_recipe(write(folder, "quick", QUICK), overrides)
    again = load_recipe(write(folder, "again", recipe.to_toml()))
    assert (again.data, again.model, again.train) == (recipe.data, recipe.model, recipe.train)


def test_none_and_byte_order_mark_are_read(folder):
    text = QUICK.replace("load_size = 72", 'load_size = "none"')
    recipe = load_recipe(write(folder, "bom", b"\xef\xbb\xbf" + text.encode()))
    assert recipe.data.load_size is None and recipe.data.image_size == 64
