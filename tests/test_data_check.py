"""`kstyle data check`: one row per file not simply used, a summary line, exit code."""

from __future__ import annotations

import shutil

import pytest
from bad_image_corpus import EXPECTED, write_corpus
from click.testing import CliRunner
from PIL import Image

from kstyle.cli import main
from kstyle.data import check_data


def rgb(path, size, color=(40, 80, 120)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def run(*args):
    return CliRunner().invoke(main, ["data", "check", *map(str, args)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def test_photo_folder_with_every_kind(tmp_path, corpus):
    for path in corpus.values():
        shutil.copy(path, tmp_path / path.name)
    result = run(tmp_path)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{tmp_path}: layout photos, splits: none (the folder itself)"
    assert lines[1].split() == ["STATUS", "FILE", "REASON"]
    rows = {line.split()[1]: line for line in lines[2:-2]}
    for name, status, reason in EXPECTED.values():
        if status == "used":
            assert name not in rows
        else:
            assert rows[name].startswith(status) and reason in rows[name], name
    counts = {s: sum(v[1] == s for v in EXPECTED.values()) for s in ("used", "converted",
                                                                     "refused")}
    assert lines[-2] == (f"{len(EXPECTED)} files: {counts['used']} used, "
                         f"{counts['converted']} converted, {counts['refused']} refused; "
                         "0 duplicated across splits")
    assert lines[-1].startswith("fit stops on refused files")
    assert len(run(tmp_path, "--all").output.splitlines()) == len(lines) + 1  # good.png too


def test_ab_splits_wrong_aspect_and_duplicates(tmp_path):
    for split in ("train", "val"):
        for i in range(3):
            rgb(tmp_path / split / f"{split}{i}.png", (16, 8), (10 * i, len(split), 0))
    shutil.copy(tmp_path / "train" / "train1.png", tmp_path / "val" / "copy.png")
    rgb(tmp_path / "train" / "photo.png", (12, 9))
    result = run(tmp_path)
    assert result.exit_code == 1
    assert "layout ab, splits: train, val" in result.output
    assert ("refused    train/photo.png  12x9 px: source 'ab' expects A|B side by side, twice "
            "as wide as high (about 18 px wide)") in result.output
    assert "used       val/copy.png     same bytes as train/train1.png" in result.output
    assert result.output.splitlines()[-2] == (
        "8 files: 7 used, 0 converted, 1 refused; 1 duplicated across splits")


def test_paired_folders_missing_partner_and_size_mismatch(tmp_path):
    for name in ("0.png", "1.png", "2.png"):
        rgb(tmp_path / "trainA" / name, (8, 8))
        rgb(tmp_path / "trainB" / name, (8, 8) if name != "2.png" else (6, 8))
    rgb(tmp_path / "trainA" / "lonely.png", (8, 8))
    (tmp_path / "trainB" / "1.png").write_text("oops")
    result = run(tmp_path)
    assert result.exit_code == 1
    out = result.output
    rows = [" ".join(line.split()) for line in out.splitlines()]
    assert "layout folders, splits: train" in out
    assert (f"refused trainA/lonely.png no partner of the same name in "
            f"'{tmp_path / 'trainB'}'") in rows
    assert "used trainA/1.png partner refused: the pair is left out" in rows
    assert "refused trainB/1.png not an image (text?)" in rows
    assert "used trainA/2.png 8x8 px, partner 6x8 px" in rows
    assert out.splitlines()[-2] == ("7 files: 5 used, 0 converted, 2 refused; 1 missing partner; "
                                    "1 size mismatch between partners; 0 duplicated across "
                                    "splits")


def test_clean_unpaired_folder_exits_0(tmp_path):
    for domain in "AB":
        for i in range(2):
            rgb(tmp_path / f"train{domain}" / f"{domain}{i}.png", (8, 8))
        rgb(tmp_path / f"test{domain}" / f"{domain}9.png", (8, 8), (1, 2, 3))
    result = run(tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{tmp_path}: layout unpaired, splits: test, train",
        "6 files: 6 used, 0 converted, 0 refused; 0 duplicated across splits",
    ]
    assert check_data(tmp_path).layout == "unpaired"


def test_recipe_uses_its_source_and_splits(tmp_path):
    rgb(tmp_path / "photos" / "train" / "a.png", (8, 8))
    Image.new("L", (8, 8)).save(tmp_path / "photos" / "train" / "gray.png")
    rgb(tmp_path / "photos" / "other" / "ignored.png", (8, 8))
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[data]\nsource = "photos"\npath = "{tmp_path / "photos"}"\n')
    result = run(recipe)
    assert result.exit_code == 0, result.output
    assert "layout photos, splits: train" in result.output
    assert "converted  train/gray.png  grayscale -> RGB" in result.output
    assert result.output.splitlines()[-1].startswith("2 files: 1 used, 1 converted")


def test_tfds_recipe_is_left_to_tfds(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[data]\nsource = "tfds"\npath = "tf_flowers"\n')
    result = run(recipe)
    assert result.exit_code == 0
    assert "tensorflow-datasets checks its images" in result.output


def test_missing_folder_is_a_user_error(tmp_path):
    result = run(tmp_path / "nowhere")
    assert result.exit_code == 2 and "does not exist" in result.output
