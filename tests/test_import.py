"""Reference networks (junyanz/pytorch-CycleGAN-and-pix2pix) converted by kstyle compute
what the reference computed: outputs the reference wrote for a fixed input
(tests/pth/make_nets.py), parameter counts, and `kstyle import` run folders that stylize,
export and load."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kstyle.cli import main
from kstyle.errors import ModelLoadError

FIXTURES = Path(__file__).resolve().parent / "pth"
sys.path.insert(0, str(FIXTURES))
from probe import corners, probe  # noqa: E402

#: fixture -> (reference name, probe side, input channels)
NETS = {
    "resnet_6blocks_instance": ("resnet_6blocks", 32, 3),
    "resnet_9blocks_batch_dropout": ("resnet_9blocks", 36, 3),
    "unet_128_batch_dropout": ("unet_128", 128, 3),
    "unet_256_instance": ("unet_256", 256, 3),
    "basic_batch_6ch": ("basic", 70, 6),
    "n_layers_2_instance": ("n_layers", 48, 3),
    "pixel_batch_6ch": ("pixel", 12, 6),
    "pixel_instance": ("pixel", 12, 3),
    # pytorch/examples' fast neural style network, at base width 2, with the instance-norm
    # statistics the published files carry (unused, dropped)
    "transformer_net": ("transformer_net", 40, 3),
}


@pytest.mark.parametrize("fixture", NETS)
def test_a_converted_network_computes_what_the_reference_computed(fixture):
    from kstyle.importers.convert import convert, detect
    from kstyle.importers.pth import read_state_dict

    name, size, channels = NETS[fixture]
    state = read_state_dict(FIXTURES / f"{fixture}.pth")
    arch = detect(state)
    assert arch.name == name
    net = convert(state, arch)
    output = np.asarray(net(probe(size, size, channels), training=False))
    kept = corners(output) if arch.is_generator and size > 48 else {"all": output[0]}
    with np.load(FIXTURES / "nets.npz") as expected:
        trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
        assert trainable == int(expected[f"{fixture}/parameters"])
        for key, value in kept.items():
            np.testing.assert_allclose(value, expected[f"{fixture}/{key}"], atol=1e-5,
                                       rtol=0, err_msg=key)


def copy_as(tmp_path, pairs):
    for fixture, name in pairs:
        shutil.copy(FIXTURES / f"{fixture}.pth", tmp_path / name)
    return [tmp_path / name for _, name in pairs]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_import_a_cyclegan_with_a_discriminator_stylizes_both_ways_and_exports(tmp_path):
    import kstyle

    files = copy_as(tmp_path, [("resnet_6blocks_instance", "latest_net_G_A.pth"),
                               ("resnet_6blocks_instance", "latest_net_G_B.pth"),
                               ("n_layers_2_instance", "latest_net_D_A.pth")])
    out = tmp_path / "horse2zebra"
    result = invoke("import", *files, "--out", out)
    assert result.exit_code == 0, result.output
    assert "G_A = resnet_6blocks (in_channels=3, out_channels=3, base_filters=4" in result.output
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "cyclegan" and set(info["translators"]) == {"a2b", "b2a"}
    assert info["imported"]["G_A"]["arch"] == "resnet_6blocks"
    assert len(info["imported"]["D_A"]["sha256"]) == 64
    # The reference's D_A judges domain B: kstyle's discriminator_b.
    assert info["networks"] == {"discriminator_b": "networks/discriminator_b.weights.h5"}
    assert (out / "networks" / "discriminator_b.weights.h5").is_file()
    recipe = (out / "recipe.toml").read_text()
    assert 'kind = "cyclegan"' in recipe and "num_blocks = 6" in recipe

    image = (probe(36, 44) * 127.5 + 127.5).round().astype(np.uint8)[0]
    for direction in ("a2b", "b2a"):
        translated = kstyle.load(out, direction=direction)(image)
        assert translated.shape == image.shape and translated.std() > 0

    from PIL import Image

    Image.fromarray(image).save(tmp_path / "photo.png")
    result = invoke("export", out, "--tflite", "--onnx", "--check-images",
                    tmp_path / "photo.png")
    assert result.exit_code == 0, result.output
    assert "translator.tflite" in result.output and "translator.onnx" in result.output
    assert result.output.count(" - ok") == 2, result.output


def test_import_a_fast_neural_style_model_stylizes_and_exports_to_litert_and_onnx(
        tmp_path, monkeypatch):
    import kstyle

    (file,) = copy_as(tmp_path, [("transformer_net", "mosaic.pth")])
    monkeypatch.chdir(tmp_path)
    result = invoke("import", file)
    assert result.exit_code == 0, result.output
    run = Path("saved_models") / "mosaic"
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "fast_style" and info["size_multiple"] == 4
    recipe = (run / "recipe.toml").read_text()
    assert 'network = "examples"' in recipe and "num_blocks = 5" in recipe
    translator = kstyle.load(run)
    with np.load(FIXTURES / "nets.npz") as expected:
        np.testing.assert_allclose(np.asarray(translator.model(probe(40, 40)))[0],
                                   expected["transformer_net/all"], atol=1e-5, rtol=0)

    from PIL import Image

    image = (probe(40, 40) * 127.5 + 127.5).round().astype(np.uint8)[0]
    Image.fromarray(image).save(tmp_path / "photo.png")
    result = invoke("export", run, "--tflite", "--onnx", "--check-images",
                    tmp_path / "photo.png")
    assert result.exit_code == 0, result.output
    assert result.output.count(" - ok") == 2, result.output


def test_import_a_pix2pix_generator(tmp_path):
    import kstyle

    (file,) = copy_as(tmp_path, [("unet_128_batch_dropout", "latest_net_G.pth")])
    (tmp_path / "facades").mkdir()
    shutil.move(file, tmp_path / "facades" / file.name)
    result = invoke("import", tmp_path / "facades" / file.name, "--out",
                    tmp_path / "saved" / "facades")
    assert result.exit_code == 0, result.output
    run = tmp_path / "saved" / "facades"
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "pix2pix" and info["size_multiple"] == 128
    assert list(info["translators"]) == ["a2b"]
    # Any size: padded to a multiple of 128 and cropped back.
    out = kstyle.load(run)(np.full((100, 150, 3), 90, np.uint8))
    assert out.shape == (100, 150, 3)


def test_a_pix2pix_with_a_pixel_discriminator_fine_tunes_with_it(tmp_path):
    from conftest import tiny_recipe

    from kstyle.importers.convert import import_weights
    from kstyle.train import fit

    files = copy_as(tmp_path, [("unet_128_batch_dropout", "latest_net_G.pth"),
                               ("pixel_batch_6ch", "latest_net_D.pth")])
    run = import_weights(files, tmp_path / "imported", log=lambda *_: None)
    recipe = (run / "recipe.toml").read_text()
    assert 'discriminator = "pixel"' in recipe and "d_base_filters = 4" in recipe
    assert json.loads((run / "run.json").read_text())["networks"] == {
        "discriminator": "networks/discriminator.weights.h5"}
    lines = []
    fit(tiny_recipe(tmp_path, f'train.init_from="{run}"', "model.discriminator=pixel",
                    "model.d_base_filters=4", "model.base_filters=2", "model.num_downs=7",
                    "model.norm=batch", "data.image_size=128", "data.load_size=128",
                    "train.epochs=1", "train.steps_per_epoch=1", "data.synthetic_count=4"),
        verbose=0, log=lines.append)
    started = next(line for line in lines if line.startswith("Starting from"))
    assert "discriminator: from" in started and "networks/discriminator.weights.h5" in started
    assert "generator: from" in started and "translator.keras" in started


def test_the_default_run_folder_is_named_after_the_experiment(tmp_path, monkeypatch):
    from kstyle.importers.convert import import_weights

    folder = tmp_path / "checkpoints" / "maps_cyclegan"
    folder.mkdir(parents=True)
    copy_as(folder, [("resnet_6blocks_instance", "latest_net_G_A.pth")])
    monkeypatch.chdir(tmp_path)
    run = import_weights([folder / "latest_net_G_A.pth"], log=lambda *_: None)
    assert run == Path("saved_models") / "maps_cyclegan"
    (file,) = copy_as(tmp_path, [("resnet_6blocks_instance", "horse2zebra.pth")])
    assert import_weights([file], log=lambda *_: None) == Path("saved_models") / "horse2zebra"


@pytest.mark.parametrize("pairs, extra, message", [
    ([("state_zip", "weights.pth")], [],
     "not a network kstyle converts; its keys: conv.weight, transposed"),
    ([("n_layers_2_instance", "latest_net_G.pth")], [],
     "its name says G, but it holds a discriminator"),
    ([("n_layers_2_instance", "latest_net_D.pth")], [], "no generator; a discriminator alone"),
    ([("resnet_6blocks_instance", "a_G_A.pth"), ("resnet_9blocks_batch_dropout", "a_G_B.pth")],
     [], "G_A and G_B are different architectures"),
    ([("resnet_6blocks_instance", "x.pth")], ["--arch", "unet_256"],
     "holds resnet_6blocks (in_channels=3"),
    ([("resnet_6blocks_instance", "x.pth")], ["--arch", "vgg"], "--arch 'vgg' is not one of"),
])
def test_import_errors_name_the_file_and_the_problem(tmp_path, pairs, extra, message):
    files = copy_as(tmp_path, pairs)
    result = invoke("import", *files, *extra, "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "run.json").exists()


def test_import_refuses_a_folder_that_holds_a_run(tmp_path):
    from kstyle.importers.convert import import_weights

    files = copy_as(tmp_path, [("resnet_6blocks_instance", "g.pth")])
    import_weights(files, tmp_path / "run", log=lambda *_: None)
    with pytest.raises(ModelLoadError, match="already holds a run; give --out a new folder"):
        import_weights(files, tmp_path / "run", log=lambda *_: None)


def test_import_refuses_a_file_that_would_run_code(tmp_path):
    import pickle

    from test_pth import RunsCode, zip_pth

    marker = tmp_path / "it_ran"
    hostile = zip_pth(tmp_path / "latest_net_G.pth",
                      pickle.dumps({"w": RunsCode(marker)}, protocol=2))
    result = invoke("import", hostile, "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert f"Error: {hostile}: refused: its pickle asks for " in result.output
    assert not marker.exists()


def test_a_run_fine_tunes_from_an_imported_cyclegan(tmp_path):
    from conftest import tiny_cyclegan_recipe

    import kstyle
    from kstyle.importers.convert import import_weights
    from kstyle.train import fit

    files = copy_as(tmp_path, [("resnet_6blocks_instance", "x_G_A.pth"),
                               ("resnet_6blocks_instance", "x_G_B.pth"),
                               ("n_layers_2_instance", "x_D_A.pth")])
    imported = import_weights(files, tmp_path / "imported", log=lambda *_: None)
    lines = []
    # lr 0: the networks keep the imported weights, so the outputs must stay the same.
    recipe = tiny_cyclegan_recipe(tmp_path, "model.num_blocks=6", "train.lr=0.0",
                                  "train.epochs=1", f'train.init_from="{imported}"')
    fit(recipe, verbose=0, log=lines.append)
    started = next(line for line in lines if line.startswith("Starting from"))
    assert f"generator_ab: from {imported / 'translator.keras'}" in started
    assert f"generator_ba: from {imported / 'translator_b2a.keras'}" in started
    assert f"discriminator_b: from {imported / 'networks' / 'discriminator_b.weights.h5'}" \
        in started
    assert "discriminator_a: starts fresh" in started
    assert any(line.startswith("Initial val_") for line in lines)
    image = (probe(32, 32) * 127.5 + 127.5).round().astype(np.uint8)[0]
    for direction in ("a2b", "b2a"):
        np.testing.assert_array_equal(kstyle.load(recipe.run_dir, direction=direction)(image),
                                      kstyle.load(imported, direction=direction)(image))


def test_init_from_a_trained_run_starts_from_its_checkpoint(tmp_path):
    from conftest import tiny_recipe

    import kstyle
    from kstyle.recipes import load_recipe
    from kstyle.train import fit

    old = tmp_path / "old"
    shutil.copytree(Path(__file__).resolve().parent / "old_runs" / "pix2pix", old)
    recipe = load_recipe(old / "recipe.toml", [f'train.out_dir="{tmp_path / "new"}"',
                                               "train.lr=0.0", f'train.init_from="{old}"'])
    lines = []
    fit(recipe, verbose=0, log=lines.append)
    assert any(f"generator: from {old / 'checkpoints' / 'step_00000004'}" in line
               for line in lines)
    with np.load(old / "probe.npz") as probe_file:
        out = kstyle.load(tmp_path / "new")(probe_file["input"])
        assert np.abs(out.astype(int) - probe_file["a2b"].astype(int)).max() <= 1
    # Another architecture: the layer and both shapes are named.
    wider = tiny_recipe(tmp_path, "model.base_filters=4", f'train.init_from="{old}"',
                        name="wider")
    with pytest.raises(Exception, match="layer down0_conv has shape \\(4, 4, 3, 4\\) here, "
                                        "\\(4, 4, 3, 2\\) in the file"):
        fit(wider, verbose=0, log=lambda *_: None)


def test_init_from_must_be_a_run_folder(tmp_path):
    from conftest import tiny_recipe

    from kstyle.errors import RecipeError

    with pytest.raises(RecipeError, match=f"train.init_from = '{tmp_path / 'nope'}' does not "
                                          "exist; expected a run folder"):
        tiny_recipe(tmp_path, f'train.init_from="{tmp_path / "nope"}"')


def test_instance_norm_statistics_of_old_files_are_dropped():
    # PyTorch before 0.4 saved running statistics with InstanceNorm2d (affine=False);
    # some published CycleGAN models carry them. They are not a batch norm.
    from kstyle.importers.convert import convert, detect
    from kstyle.importers.pth import read_state_dict

    state = read_state_dict(FIXTURES / "resnet_6blocks_instance.pth")
    old = {}
    for key, value in state.items():
        old[key] = value
        if key.endswith(".bias") and value.shape[0] in (4, 8, 16):  # not the 3-channel head
            prefix = key.rpartition(".")[0].rsplit(".", 1)
            norm = f"{prefix[0]}.{int(prefix[1]) + 1}"  # the norm right after each conv
            old[f"{norm}.running_mean"] = np.zeros_like(value)
            old[f"{norm}.running_var"] = np.ones_like(value)
    assert any(k.endswith("running_mean") for k in old)
    arch = detect(old)
    assert arch.options["norm"] == "instance"
    output = np.asarray(convert(old, arch)(probe(32, 32), training=False))
    with np.load(FIXTURES / "nets.npz") as expected:
        np.testing.assert_allclose(output[0], expected["resnet_6blocks_instance/all"],
                                   atol=1e-5, rtol=0)


def test_import_the_adain_decoder_with_its_encoder_stylizes_as_the_reference(tmp_path):
    import kstyle
    from kstyle.models.adain import AdaINInference

    decoder, vgg = copy_as(tmp_path, [("adain_decoder", "decoder.pth"),
                                      ("adain_vgg", "vgg_normalised.pth")])
    out = tmp_path / "adain"
    result = invoke("import", decoder, "--vgg", vgg, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"try it: kstyle stylize IMAGE --model {out} --style STYLE" in result.output
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "adain" and info["size_multiple"] == 8
    assert set(info["networks"]) == {"encoder", "decoder"}
    stylizer = kstyle.load(out)
    assert isinstance(stylizer.inference, AdaINInference)
    with np.load(FIXTURES / "nets.npz") as expected:
        assert stylizer.decoder.count_params() == int(expected["adain/parameters"])
        mean, std = stylizer.style_statistics(expected["adain/style"][None])
        for alpha in (1.0, 0.5):
            ours = np.asarray(stylizer.stylize_float(probe(40, 48), mean, std, alpha))[0]
            np.testing.assert_allclose(ours, expected[f"adain/alpha_{alpha}"], atol=1e-3,
                                       rtol=0)
    # The encoder file alone is a usable encoder: model.vgg_weights of a fine-tuning recipe.
    recipe = (out / "recipe.toml").read_text()
    assert 'kind = "adain"' in recipe and str(vgg.resolve()) in recipe
    missing = invoke("import", decoder, "--out", tmp_path / "alone")
    assert missing.exit_code == 2 and "--vgg vgg_normalised.pth" in missing.output


def test_weights_with_nan_are_refused_and_nothing_is_written(tmp_path):
    import struct

    data = bytearray((FIXTURES / "resnet_6blocks_instance.pth").read_bytes())
    data[-4:] = struct.pack("<f", float("nan"))  # the last tensor's last value
    bad = tmp_path / "horse2zebra.pth"
    bad.write_bytes(bytes(data))
    out = tmp_path / "run"
    result = invoke("import", bad, "--out", out)
    assert result.exit_code == 2
    assert "tensor" in result.output and "holds 1 NaN or infinite values" in result.output
    assert "nothing was imported" in result.output and not out.exists()


def test_a_failed_two_way_import_leaves_no_run(tmp_path, monkeypatch):
    from kstyle.importers import convert as kconvert

    files = copy_as(tmp_path, [("resnet_6blocks_instance", "latest_net_G_A.pth"),
                               ("resnet_6blocks_instance", "latest_net_G_B.pth")])
    out = tmp_path / "maps"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    real = kconvert._write_networks

    def fails_on_the_second(out_dir, translators, converted, names):
        real(out_dir, {"a2b": translators["a2b"]}, converted, names)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kconvert, "_write_networks", fails_on_the_second)
    result = invoke("import", *files, "--out", out)
    assert result.exit_code == 2 and "No space left" in result.output
    # What the import wrote is gone; what was there stays.
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
