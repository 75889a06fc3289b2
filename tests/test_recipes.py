"""Recipes: every shipped recipe parses, and every error names its file and key."""

import tomllib
from pathlib import Path

import pytest

from kstyle.errors import RecipeError
from kstyle.models import KINDS
from kstyle.models.pix2pix_options import Pix2PixOptions
from kstyle.recipes import (
    describe_keys,
    load_recipe,
    parse_value,
    recipe_from_dict,
)

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def synthetic(tmp_path, extra=""):
    return write(tmp_path, '[data]\nsource = "synthetic"\nimage_size = 32\n'
                 '[model]\nnum_downs = 5\n' + extra)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_parse(path, tmp_path):
    # The folder of paintings an AdaIN recipe needs is the user's own: an empty one here.
    style = tomllib.loads(path.read_text()).get("data", {}).get("style_path")
    recipe = load_recipe(path, [f"data.style_path={tmp_path}"] if style else [])
    assert recipe.name == path.stem
    assert isinstance(recipe.model, KINDS[recipe.model.kind])
    # The keys scripts rely on.
    for key in ("path", "image_size", "batch_size"):
        assert hasattr(recipe.data, key)
    for key in ("epochs", "steps_per_epoch", "out_dir"):
        assert hasattr(recipe.train, key)


def test_pix2pix_recipe_has_paper_settings():
    r = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "pix2pix.toml")
    assert (r.data.image_size, r.data.load_size, r.data.batch_size) == (256, 286, 1)
    assert (r.train.lr, r.train.beta_1, r.model.lambda_l1) == (2e-4, 0.5, 100.0)
    assert (r.train.epochs, r.train.decay_start_epoch, r.train.lr_policy) == (
        200, 100, "linear_decay")
    assert isinstance(r.model, Pix2PixOptions) and r.model.num_downs == 8


def test_defaults_and_typed_overrides(tmp_path):
    path = synthetic(tmp_path)
    r = load_recipe(path, ["train.epochs=3", "train.lr=1e-3", "data.flip=false",
                           "model.gan_mode=lsgan", "train.steps_per_epoch=7",
                           'train.out_dir="runs/x"'])
    assert r.train.epochs == 3 and r.train.lr == 1e-3 and r.data.flip is False
    assert r.model.gan_mode == "lsgan" and r.train.steps_per_epoch == 7
    assert r.run_dir == Path("runs/x")
    assert load_recipe(path).train.steps_per_epoch is None
    assert load_recipe(path).run_dir == Path("saved_models") / "r"
    # An int where a float is expected is accepted and converted.
    assert load_recipe(path, ["train.lr=1"]).train.lr == 1.0


def test_resolved_recipe_round_trips(tmp_path):
    r = load_recipe(synthetic(tmp_path), ["train.epochs=4"])
    again = load_recipe(write(tmp_path, r.to_toml(), "resolved.toml"))
    assert (again.data, again.model, again.train) == (r.data, r.model, r.train)
    assert again.name == r.name


@pytest.mark.parametrize("text, overrides, expected", [
    ("[data]\nsourc = 'ab'\n", [], ["data.sourc", "allowed keys of [data]", "source"]),
    ("[train]\nepochs = 'ten'\n", [], ["train.epochs", "'ten'", "expected int"]),
    ("[train]\nepochs = 1.5\n", [], ["train.epochs", "1.5", "expected int"]),
    ("[data]\ndirection = 'sideways'\n", [], ["data.direction", "'sideways'", "a2b, b2a"]),
    ("[model]\nkind = 'nope'\n", [], ["model.kind", "'nope'", "pix2pix"]),
    ("[model]\nnorm = 'layer'\n", [], ["model.norm", "'layer'", "batch, instance, none"]),
    ("[data]\nsource = 'ab'\npath = '/no/such/folder'\n", [],
     ["data.path", "/no/such/folder", "does not exist", "facades"]),
    ("[data]\nsource = 'folders'\n", [], ["data.path is empty"]),
    ("[data]\nimage_size = 100\nsource = 'synthetic'\n", [],
     ["data.image_size = 100", "multiple of", "256"]),
    ("[data]\nsource = 'synthetic'\nimage_size = 32\nload_size = 16\n[model]\nnum_downs = 5\n",
     [], ["data.load_size = 16", "data.image_size = 32"]),
    ("[data]\nsource = 'synthetic'\n[train]\nbatch = 3\n", [], ["train.batch", "allowed"]),
    ("[data]\nsource = 'synthetic'\n", ["train.epochs=0"], ["train.epochs = 0", "positive"]),
    ("[data]\nsource = 'synthetic'\n", ["epochs=3"], ["epochs=3", "table.key=value"]),
    ("[data]\nsource = 'synthetic'\n", ["optim.lr=3"], ["unknown table 'optim'"]),
    ("[data]\nsource = 'synthetic'\n", ["data.flip=yes"],
     ["data.flip", "'yes'", "expected bool"]),
    ("[data]\nsource = 'synthetic'\n", ["train.jit_compile=yes"],
     ["train.jit_compile = 'yes'", "not allowed", "auto"]),
    ("[data]\nsource = 'synthetic'\n", ["train.precision=float8"],
     ["train.precision = 'float8'", "mixed_bfloat16"]),
    ("[data]\nsource = 'synthetic'\nextra = 1\n[model]\n", [], ["data.extra"]),
    ("[data]\nsource = 'synthetic'\n[lossess]\n", [], ["'lossess'", "top level"]),
    ("[data\nsource = 1", [], ["not valid TOML"]),
])
def test_errors_name_file_key_and_allowed(tmp_path, text, overrides, expected):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path, overrides)
    message = str(err.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.toml")


def test_known_dataset_name_is_allowed_without_local_folder():
    r = recipe_from_dict({"data": {"source": "ab", "path": "facades"}})
    assert r.data.path == "facades"


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("2e-4") == 2e-4
    assert parse_value("true") is True and parse_value("none") is None
    assert parse_value("lsgan") == "lsgan" and parse_value('"a b"') == "a b"
    assert parse_value('["x", "y"]') == ["x", "y"]


def test_describe_keys_documents_every_field():
    text = describe_keys("pix2pix")
    for key in ("source", "image_size", "lambda_l1", "steps_per_epoch", "out_dir"):
        assert f"  {key} (" in text
