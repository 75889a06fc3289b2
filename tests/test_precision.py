"""train.precision = "auto": bfloat16 only where the hardware computes it, warnings where a
forced 16-bit policy is emulated, the choice printed and recorded in run.json."""

import json

import pytest
from conftest import tiny_recipe

from kstyle.precision import Hardware, choose, cpu_info

ZEN3 = Hardware((), "AMD EPYC 7B13", frozenset({"avx2", "fma", "sse4_2"}))
SAPPHIRE_RAPIDS = Hardware((), "Intel Xeon Platinum 8481C",
                           frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
GRAVITON3 = Hardware((), "", frozenset({"fp", "asimd", "bf16", "sve"}), arm=True)
ZEN5 = Hardware((), "AMD EPYC", frozenset({"avx2", "avx512f", "avx512_bf16"}))


@pytest.mark.parametrize("hardware, policy, why", [
    (ZEN3, "float32", "auto: AMD EPYC 7B13 has no avx512_bf16 or amx_bf16"),
    (ZEN5, "float32", "auto: AMD EPYC has avx512_bf16 but no amx_bf16"),
    (SAPPHIRE_RAPIDS, "mixed_bfloat16", "auto: Intel Xeon Platinum 8481C has amx_bf16, "
                                        "avx512_bf16"),
    (GRAVITON3, "mixed_bfloat16", "auto: this CPU has bf16"),
    (Hardware(((8, 6),), "x", frozenset()), "mixed_bfloat16", "compute capability 8.6"),
    (Hardware(((7, 5),), "x", frozenset()), "mixed_float16", "compute capability 7.5"),
    (Hardware(((8, 0), (6, 1)), "x", frozenset()), "float32", "compute capability 6.1"),
])
def test_auto_picks_what_the_hardware_computes_natively(hardware, policy, why):
    chosen, reason = choose("auto", hardware)
    assert chosen == policy and why in reason and not reason.startswith("warning")


def test_arm_bf16_needs_onednn(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert choose("auto", GRAVITON3)[0] == "float32"


def test_forced_bf16_without_the_feature_warns_naming_it():
    chosen, reason = choose("mixed_bfloat16", ZEN3)
    assert chosen == "mixed_bfloat16"
    assert reason.startswith("warning: AMD EPYC 7B13 has no avx512_bf16 or amx_bf16: "
                             "TensorFlow emulates bfloat16")
    assert choose("mixed_bfloat16", SAPPHIRE_RAPIDS) == ("mixed_bfloat16", "as set")
    assert choose("mixed_bfloat16", ZEN5)[1].startswith(
        "warning: AMD EPYC has avx512_bf16 but no amx_bf16: a bfloat16 step took 2-4x")
    assert choose("mixed_float16", ZEN3)[1].startswith("warning: AMD EPYC 7B13 computes "
                                                       "float16 by converting")
    assert choose("float32", SAPPHIRE_RAPIDS) == ("float32", "as set")


def test_cpu_info_reads_model_name_and_flags(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n")
    assert cpu_info(str(path)) == ("AMD EPYC 7B13", frozenset({"fpu", "avx2", "fma"}))
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\nCPU part\t: 0xd40\n")
    assert cpu_info(str(arm))[1] == {"fp", "asimd", "bf16"}
    assert cpu_info(str(tmp_path / "absent"))[1] == frozenset()


def test_fit_prints_and_records_the_precision(tmp_path, monkeypatch):
    from kstyle import precision
    from kstyle.train import fit

    monkeypatch.setattr(precision.Hardware, "detect", classmethod(lambda cls: ZEN3))
    lines = []
    recipe = tiny_recipe(tmp_path, "train.precision=auto", "train.epochs=1")
    fit(recipe, verbose=0, log=lines.append)
    assert "Precision: float32 (auto: AMD EPYC 7B13 has no avx512_bf16 or amx_bf16 " \
           "(bfloat16 would be emulated))" in lines
    assert json.loads((recipe.run_dir / "run.json").read_text())["precision"] == "float32"
    assert "precision = \"auto\"" in (recipe.run_dir / "recipe.toml").read_text()


def test_fit_warns_once_where_a_forced_bf16_is_emulated(tmp_path, monkeypatch):
    from kstyle import precision
    from kstyle.train import Run

    monkeypatch.setattr(precision.Hardware, "detect", classmethod(lambda cls: ZEN3))
    lines = []
    Run(tiny_recipe(tmp_path, "train.precision=mixed_bfloat16"), log=lines.append)
    warned = [line for line in lines if "Warning" in line]
    assert warned == ["Precision: mixed_bfloat16. Warning: AMD EPYC 7B13 has no avx512_bf16 "
                      "or amx_bf16: TensorFlow emulates bfloat16 on it, and each step takes "
                      "several times (about 8x) as long as in float32; train.precision = "
                      "\"auto\" picks float32 here"]
