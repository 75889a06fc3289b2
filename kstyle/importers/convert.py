"""Networks of the PyTorch reference implementations, rebuilt as kstyle networks from their
published weights.

junyanz/pytorch-CycleGAN-and-pix2pix saves each network's ``state_dict()`` (its
``latest_net_G.pth``, ``latest_net_G_A.pth``, ``latest_net_D.pth`` ..., and the published
``horse2zebra.pth`` & co.). kstyle's U-Net, ResNet and PatchGAN builders are ports of those
architectures to the pixel (padding, output padding and biases included), so a converted
network is kstyle's own network with the reference's numbers in it: it computes what the
reference computes (tests/test_import.py checks it against outputs the reference wrote).

The architecture is read from the state dict's keys and shapes (:func:`detect`); the
weights are matched module by module in the reference's order, every shape checked.
PyTorch's convolution kernels ``(out, in, h, w)`` (transposed ones ``(in, out, h, w)``)
become Keras' ``(h, w, in, out)`` (``(h, w, out, in)``); batch norm's weight, bias,
running mean and variance become gamma, beta and the moving statistics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np

from kstyle.errors import ModelLoadError

#: Architectures :func:`detect` recognizes (the reference's ``--netG`` / ``--netD`` names).
ARCHS = ("resnet_9blocks", "resnet_6blocks", "resnet", "unet_256", "unet_128", "unet",
         "basic", "n_layers", "pixel", "transformer_net", "adain_decoder", "vgg_normalised")


@dataclasses.dataclass(frozen=True)
class Arch:
    """A reference network: its family, the reference's name for it and kstyle's options.

    Attributes:
        family: ``"resnet"``, ``"unet"`` (generators) or ``"patchgan"`` (discriminator).
        name: the reference's name (``resnet_9blocks``, ``unet_256``, ``basic`` ...).
        options: keyword arguments of kstyle's builder for it.
    """

    family: str
    name: str
    options: dict

    @property
    def is_generator(self) -> bool:
        return self.family in ("resnet", "unet", "transformer_net", "adain_decoder")

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name} ({shown})"


def _modules(state: dict) -> list[tuple[str, dict]]:
    """The state dict grouped by module, in its order: ``[(prefix, {param: array})]``."""
    modules: dict[str, dict] = {}
    for key, value in state.items():
        prefix, _, param = key.rpartition(".")
        if param != "num_batches_tracked":
            modules.setdefault(prefix, {})[param] = value
    return list(modules.items())


def _without_stale_statistics(state: dict) -> dict:
    """``state`` without the running statistics of instance norms that have no weights.

    PyTorch before 0.4 kept ``running_mean`` / ``running_var`` in ``InstanceNorm2d``
    (affine=False) although it never used them; files saved then (some of the published
    models) carry them, and the reference drops them when it loads one. A batch norm
    always has its weight beside them, so nothing of one is dropped.
    """
    stale = {key for key in state
             if (m := re.match(r"(.*)\.(running_mean|running_var|num_batches_tracked)$", key))
             and f"{m[1]}.weight" not in state}
    return {k: v for k, v in state.items() if k not in stale}


def _norm(state: dict, running_key: str, bias_key: str) -> str:
    if running_key in state:
        return "batch"
    if bias_key in state:
        return "instance"
    return "none"


def detect(state: dict, path="the file") -> Arch:
    """Which reference network ``state`` (a state dict) holds, from its keys and shapes.

    Raises:
        ModelLoadError: the keys match no architecture kstyle converts (the message lists
            them), or a variant kstyle's builders do not have.
    """
    state = _without_stale_statistics(state)
    keys = list(state)
    if "model.model.0.weight" in state:  # UnetGenerator: nested UnetSkipConnectionBlocks
        levels = max(k.count(".model.") for k in keys)  # the innermost block's nesting
        num_downs = levels  # model.model(.N.model)*: one ".model." per level below the top
        first = state["model.model.0.weight"]
        last = [v for k, v in state.items() if k.startswith("model.model.3.")]
        norm = _norm(state, "model.model.1.model.2.running_mean", "model.model.1.model.1.bias")
        if norm == "none":
            raise ModelLoadError(f"{path}: a U-Net without normalization, whose convs have no "
                                 "biases: kstyle's U-Net keeps them there; not converted")
        name = {8: "unet_256", 7: "unet_128"}.get(num_downs, "unet")
        return Arch("unet", name, dict(in_channels=int(first.shape[1]),
                                       out_channels=int(last[0].shape[1]),
                                       base_filters=int(first.shape[0]), num_downs=num_downs,
                                       norm=norm))
    blocks = sorted({int(m[1]) for k in keys if (m := re.match(r"model\.(\d+)\.conv_block\.",
                                                                  k))})
    if blocks and "model.1.weight" in state:  # ResnetGenerator
        first = state["model.1.weight"]
        convs = [v for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
        num = len(blocks)
        name = {9: "resnet_9blocks", 6: "resnet_6blocks"}.get(num, "resnet")
        dropout = any(".conv_block.6." in k for k in keys)
        return Arch("resnet", name, dict(
            in_channels=int(first.shape[1]), out_channels=int(convs[-1].shape[0]),
            base_filters=int(first.shape[0]), num_blocks=num,
            norm=_norm(state, "model.2.running_mean", "model.1.bias"),
            dropout=0.5 if dropout else 0.0))
    if "model.0.weight" in state and state["model.0.weight"].shape[2:] == (4, 4):
        convs = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
        first = state["model.0.weight"]
        n_layers = len(convs) - 2
        second = convs[1].rpartition(".")[0]
        norm = _norm(state, f"model.{int(second.split('.')[1]) + 1}.running_mean",
                     f"{second}.bias")
        if norm == "none":
            raise ModelLoadError(f"{path}: a PatchGAN without normalization, whose convs "
                                 "have no biases: kstyle's keeps them there; not converted")
        return Arch("patchgan", "basic" if n_layers == 3 else "n_layers",
                    dict(in_channels=int(first.shape[1]), base_filters=int(first.shape[0]),
                         n_layers=n_layers, norm=norm))
    if "conv1.conv2d.weight" in state and "deconv3.conv2d.weight" in state:
        blocks = {k.split(".")[0] for k in keys if re.match(r"res\d+\.conv1\.conv2d\.weight$", k)}
        return Arch("transformer_net", "transformer_net",
                    dict(base_filters=int(state["conv1.conv2d.weight"].shape[0]),
                         num_blocks=len(blocks)))
    convs = [k for k, v in state.items() if re.fullmatch(r"\d+\.weight", k) and v.ndim == 4]
    if convs and convs[0] == "0.weight" and state["0.weight"].shape == (3, 3, 1, 1):
        # naoto0804/pytorch-AdaIN's vgg_normalised: a 1x1 conv, then VGG19's convs
        return Arch("adain_vgg", "vgg_normalised",
                    dict(width=int(state[convs[1]].shape[0]) / 64))
    if convs and convs[0] == "1.weight" and len(convs) == 9 and \
            state[convs[-1]].shape[0] == 3:  # its decoder: reflection pads between convs
        first = state["1.weight"]
        return Arch("adain_decoder", "adain_decoder",
                    dict(width=int(first.shape[0]) / 256, features=int(first.shape[1])))
    if "net.0.weight" in state and state["net.0.weight"].shape[2:] == (1, 1):
        first = state["net.0.weight"]  # PixelDiscriminator: 1x1 convs
        return Arch("pixel", "pixel", dict(in_channels=int(first.shape[1]),
                                           base_filters=int(first.shape[0]),
                                           norm=_norm(state, "net.3.running_mean",
                                                      "net.2.bias")))
    shown = ", ".join(keys[:6]) + (" ..." if len(keys) > 6 else "")
    raise ModelLoadError(
        f"{path}: not a network kstyle converts; its keys: {shown}. kstyle converts "
        "junyanz/pytorch-CycleGAN-and-pix2pix generators (resnet_9blocks, resnet_6blocks, "
        "unet_256, unet_128) and discriminators (basic, n_layers, pixel), pytorch/examples' "
        "fast neural style TransformerNet, and naoto0804/pytorch-AdaIN's decoder and "
        "vgg_normalised")


def _layer_order(arch: Arch) -> list[str]:
    """kstyle's names of the layers with weights, in the order of the reference's modules."""
    o = arch.options
    if arch.family == "adain_vgg":
        from kstyle.nets.adain import ENCODER_LAYERS

        return list(ENCODER_LAYERS)
    if arch.family == "adain_decoder":
        from kstyle.nets.adain import DECODER_PLAN

        return [step[0] for step in DECODER_PLAN if step != "up"]
    if arch.family == "transformer_net":
        names = ["conv1", "in1", "conv2", "in2", "conv3", "in3"]
        for i in range(1, o["num_blocks"] + 1):
            names += [f"res{i}_conv1", f"res{i}_in1", f"res{i}_conv2", f"res{i}_in2"]
        return names + ["deconv1", "in4", "deconv2", "in5", "deconv3"]
    normed = o["norm"] == "batch"  # instance norm (affine=False) has no weights
    if arch.family == "pixel":
        return ["pixel0_conv", "pixel1_conv", *(["pixel1_norm"] if normed else []),
                "logits_conv"]
    if arch.family == "resnet":
        names = ["stem_conv", *(["stem_norm"] if normed else [])]
        for i in (1, 2):
            names += [f"down{i}_conv", *([f"down{i}_norm"] if normed else [])]
        for i in range(o["num_blocks"]):
            for j in (1, 2):
                names += [f"block{i}_conv{j}", *([f"block{i}_norm{j}"] if normed else [])]
        for i in (1, 2):
            names += [f"up{i}_conv", *([f"up{i}_norm"] if normed else [])]
        return names + ["head_conv"]
    if arch.family == "unet":
        inner = o["num_downs"] - 1
        names = ["down0_conv"]
        for d in range(1, inner + 1):
            names += [f"down{d}_conv", *([f"down{d}_norm"] if normed and d != inner else [])]
        for d in range(inner, 0, -1):
            names += [f"up{d}_conv", *([f"up{d}_norm"] if normed else [])]
        return names + ["up0_conv"]
    names = ["layer0_conv"]
    for n in range(1, o["n_layers"] + 1):
        names += [f"layer{n}_conv", *([f"layer{n}_norm"] if normed else [])]
    return names + ["logits_conv"]


def build(arch: Arch, name: str | None = None):
    """kstyle's (untrained) network for ``arch``."""
    from kstyle.nets import patchgan_discriminator, resnet_generator, unet_generator
    from kstyle.nets.adain import adain_decoder, adain_encoder
    from kstyle.nets.patchgan import pixel_discriminator
    from kstyle.nets.transformer_net import transformer_net

    builder = {"resnet": resnet_generator, "unet": unet_generator,
               "patchgan": patchgan_discriminator, "pixel": pixel_discriminator,
               "transformer_net": transformer_net, "adain_vgg": adain_encoder,
               "adain_decoder": adain_decoder}[arch.family]
    return builder(**arch.options, **({"name": name} if name else {}))


def _keras_weights(layer, params: dict) -> list[np.ndarray]:
    if "running_mean" in params:
        return [params["weight"], params["bias"], params["running_mean"], params["running_var"]]
    if params["weight"].ndim == 1:  # an affine instance norm: scale and offset
        return [params["weight"], params["bias"]]
    kernel = params["weight"].transpose(2, 3, 1, 0)  # (out|in, in|out, h, w) -> (h, w, ., .)
    return [kernel, *([params["bias"]] if "bias" in params else [])]


def convert(state: dict, arch: Arch | None = None, path="the file", name: str | None = None):
    """The kstyle network of the reference network whose state dict is ``state``.

    Args:
        state: the state dict (``kstyle.importers.pth.read_state_dict``).
        arch: the architecture (default: :func:`detect`).
        path: the file, for messages.
        name: the Keras model's name.

    Raises:
        ModelLoadError: the state dict does not fit the architecture (the first module
            that differs is named, with both shapes).
    """
    state = _without_stale_statistics(state)
    arch = arch or detect(state, path)
    net = build(arch, name)
    layers = [net.get_layer(n) for n in _layer_order(arch)]
    modules = _modules(state)
    if arch.family == "transformer_net":  # an old torch's instance-norm statistics: unused
        modules = [(prefix, {k: v for k, v in params.items() if not k.startswith("running_")})
                   for prefix, params in modules]
    if arch.family == "adain_vgg":  # the reference uses its layers to relu4_1 only
        modules = modules[:len(layers)]
    if len(modules) != len(layers):
        raise ModelLoadError(f"{path}: {len(modules)} modules with weights, but "
                             f"{arch.describe()} has {len(layers)}")
    for layer, (prefix, params) in zip(layers, modules):
        weights = _keras_weights(layer, params)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights]
        if got != expected:
            raise ModelLoadError(f"{path}: {prefix} holds shapes {got}, but {arch.describe()}'s "
                                 f"layer {layer.name} has {expected}")
        layer.set_weights([w.astype(np.float32) for w in weights])
    return net


def read_adain_encoder(path, name: str = "adain_encoder"):
    """kstyle's AdaIN encoder (``kstyle.nets.adain.adain_encoder``) holding the AdaIN
    reference's ``vgg_normalised.pth``, frozen."""
    from kstyle.importers.pth import read_state_dict

    state = read_state_dict(path)
    arch = detect(state, path)
    if arch.family != "adain_vgg":
        raise ModelLoadError(f"{path}: holds {arch.describe()}, not the AdaIN reference's "
                             "vgg_normalised encoder")
    encoder = convert(state, arch, path, name=name)
    encoder.trainable = False
    return encoder


#: What a file's name says it holds, in the reference's naming (``latest_net_G_A.pth``,
#: ``horse2zebra.pth``): the reference's network name.
_ROLE = re.compile(r"(?:^|_)(?:net_)?(G_A|G_B|D_A|D_B|G|D)$")


def _role(path) -> str | None:
    match = _ROLE.search(Path(path).stem)
    return match[1] if match else None


def _run_name(path) -> str:
    path = Path(path)
    stem = _ROLE.sub("", re.sub(r"^(latest|best|\d+)_net_", "", path.stem))
    # checkpoints/<experiment>/latest_net_G.pth: the experiment's folder names the run
    stem = stem or path.absolute().parent.name or "imported"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def import_weights(files, out=None, arch: str | None = None, vgg=None, log=print):
    """Converts reference ``.pth`` files into a kstyle run folder.

    Args:
        files: one generator (a one-way translator: ``horse2zebra.pth``,
            ``latest_net_G.pth``), or a CycleGAN's ``*G_A.pth`` and ``*G_B.pth`` (two-way),
            each optionally with its discriminators (``*D_A.pth`` / ``*D_B.pth``, or
            ``*D.pth`` for pix2pix), kept in the run for fine-tuning.
        out: the run folder to write (default ``saved_models/<name of the file>``); it
            must not hold a run already.
        arch: the reference's name of the generators' architecture (one of :data:`ARCHS`),
            checked against what the files hold.
        vgg: with the AdaIN reference's ``decoder.pth``, its ``vgg_normalised.pth``: the
            encoder that decoder was trained with (``kstyle import decoder.pth --vgg ...``;
            it may be given among ``files`` too). Writes a run of model kind ``adain``.
        log: where progress lines go.

    Returns:
        The run folder: ``translator.keras`` (and ``translator_b2a.keras``), ``run.json``
        and ``recipe.toml`` (model kind pix2pix for a U-Net, cyclegan for a ResNet), which
        ``kstyle stylize``, ``export``, ``eval`` and ``kstyle.load`` accept.

    Raises:
        ModelLoadError: a file that is not a reference network, a missing or doubled
            role, or a folder that already holds a run.
    """
    from kstyle import runs
    from kstyle.importers.pth import read_state_dict
    from kstyle.recipes import dumps_toml, saved_model_options

    files = [Path(f) for f in ([files] if isinstance(files, str | Path) else files)]
    if vgg is not None:
        files.append(Path(vgg))
    if not files:
        raise ModelLoadError("no file to import")
    if arch is not None and arch not in ARCHS:
        raise ModelLoadError(f"--arch {arch!r} is not one of: {', '.join(ARCHS)}")
    nets = {}
    for path in files:
        state = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
        _check_finite(state, path)
        found = detect(state, path)
        role = _role(path) or ("G" if found.is_generator else "D")
        if found.is_generator != role.startswith("G"):
            raise ModelLoadError(f"{path}: its name says {role}, but it holds a "
                                 f"{'generator' if found.is_generator else 'discriminator'} "
                                 f"({found.describe()})")
        if found.is_generator and arch is not None and found.name != arch \
                and not found.name.startswith(arch):
            raise ModelLoadError(f"{path}: holds {found.describe()}, not --arch {arch}")
        if role in nets:
            raise ModelLoadError(f"{path}: a second {role} (the first is {nets[role][0]})")
        nets[role] = (path, found, state)
        log(f"{path}: {role} = {found.describe()}")
    if any(found.family.startswith("adain") for _, found, _ in nets.values()):
        adain_out = Path(out) if out else None
        with _all_or_nothing(adain_out):
            return _import_adain(list(nets.values()), out, log)
    generators = sorted(r for r in nets if r.startswith("G"))
    if not generators:
        raise ModelLoadError(f"{', '.join(map(str, files))}: no generator; a discriminator "
                             "alone translates nothing (give it with its generator)")
    two_way = generators == ["G_A", "G_B"]
    if not two_way and len(generators) > 1:
        raise ModelLoadError(f"generators {', '.join(generators)}: give one, or a CycleGAN's "
                             "G_A and G_B")
    first = nets[generators[0]][1]
    if two_way and nets["G_B"][1].options != first.options:
        raise ModelLoadError("G_A and G_B are different architectures: "
                             f"{first.describe()} and {nets['G_B'][1].describe()}")
    kind = {"unet": "pix2pix", "resnet": "cyclegan", "transformer_net": "fast_style"}[
        first.family]
    # The reference's D_A judges domain B (G_A's outputs); kstyle names discriminators after
    # the domain they judge.
    network_names = {"G": "generator", "D": "discriminator", "G_A": "generator_ab",
                     "G_B": "generator_ba", "D_A": "discriminator_b", "D_B": "discriminator_a"}
    if kind != "cyclegan" and two_way:
        raise ModelLoadError(f"two {first.name} generators: kstyle's two-way models use "
                             "ResNets")

    out = Path(out) if out else Path("saved_models") / _run_name(nets[generators[0]][0])
    if (out / runs.RUN_FILE).exists() or (out / runs.CHECKPOINT_DIR).exists():
        raise ModelLoadError(f"{out}: already holds a run; give --out a new folder")
    o = first.options
    model = {"kind": kind, "base_filters": o["base_filters"], "norm": o.get("norm", "instance")}
    if kind == "pix2pix":
        model |= {"num_downs": o["num_downs"]}
        size = 2 ** o["num_downs"]
    elif kind == "fast_style":  # model.style is for the user to give, to fine-tune
        model |= {"network": "examples", "num_blocks": o["num_blocks"]}
        size = 256
    else:
        model |= {"num_blocks": o["num_blocks"], "dropout": o["dropout"]}
        size = 256 if o["num_blocks"] >= 9 else 128
    for role in ("D", "D_A", "D_B"):
        if role in nets:
            found = nets[role][1]
            d = found.options
            model |= {"d_base_filters": d["base_filters"]}
            model |= ({"discriminator": "pixel"} if found.family == "pixel"
                      else {"d_layers": d["n_layers"]})
    # No data.path yet: `kstyle eval --data` or a fine-tuning recipe gives it.
    recipe = dumps_toml({"name": out.name,
                         "data": {"source": {"pix2pix": "ab", "cyclegan": "folders"}.get(
                                      kind, "photos"),
                                  "image_size": size, "load_size": size},
                         "model": model, "train": {"out_dir": str(out)}})

    translators = {"a2b": "G_A" if two_way else generators[0], **({"b2a": "G_B"} if two_way
                                                                    else {})}
    from kstyle.nets import RESNET_SIZE_MULTIPLE
    from kstyle.nets.unet import size_multiple

    # Every network is converted before anything is written; the files are written into
    # the run folder with run.json last, and removed again if any fails.
    converted = {role: convert(state, found, path, name=network_names[role])
                 for role, (path, found, state) in nets.items()}
    with _all_or_nothing(out):
        out.mkdir(parents=True, exist_ok=True)
        _write_networks(out, translators, converted, network_names)
        kept = {network_names[r]: f"networks/{network_names[r]}.weights.h5"
                for r in sorted(nets) if r.startswith("D")}
        runs.write_text(out / runs.RECIPE_FILE, recipe)
        saved_model_options(out / runs.RECIPE_FILE)  # the [model] reads back as written
        sources = {role: {"file": str(path), "arch": found.name,
                          "sha256": runs.sha256_file(path)}
                   for role, (path, found, _) in nets.items()}
        runs.write_json(out / runs.RUN_FILE, {
            "kind": kind, "name": out.name, "direction": "a2b", "input_transform": "none",
            "input_transforms": {d: "none" for d in translators}, "image_size": size,
            "size_multiple": (size_multiple(o["num_downs"]) if kind == "pix2pix"
                              else RESNET_SIZE_MULTIPLE),  # TransformerNet's multiple is 4 too
            "value_range": [-1.0, 1.0], "translator": runs.TRANSLATOR_FILE,
            "translators": {d: runs.translator_file(d) for d in translators}, "step": 0,
            "precision": "float32", "imported": sources, "networks": kept})
    log(f"wrote {out} ({kind}, {'two-way' if two_way else 'one-way'}"
        f"{', with discriminators' if kept else ''})")
    return out


def _check_finite(state: dict, path) -> None:
    """ModelLoadError naming the first tensor with NaN or infinite values, if any."""
    bad = [(name, int(value.size - np.isfinite(value).sum())) for name, value in state.items()
           if np.issubdtype(np.asarray(value).dtype, np.floating)
           and not np.isfinite(value).all()]
    if bad:
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise ModelLoadError(f"{path}: tensor {bad[0][0]} holds {bad[0][1]:,} NaN or infinite "
                             f"values{more}: the file is damaged, or from a run that "
                             "diverged; nothing was imported")


@contextlib.contextmanager
def _all_or_nothing(out: Path | None):
    """Removes what the body wrote into ``out`` (and ``out`` itself, if it made it) when
    the body fails: a failed import leaves no run that looks usable."""
    if out is None:
        yield
        return
    existed = out.exists()
    before = set(out.rglob("*")) if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for path in sorted(set(out.rglob("*")) - before, reverse=True):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def _write_networks(out: Path, translators: dict, converted: dict, names: dict) -> None:
    from kstyle import runs

    for direction, role in translators.items():
        with runs.atomic_path(out / runs.translator_file(direction), suffix=".keras") as tmp:
            converted[role].save(tmp)
    for role in sorted(r for r in converted if r.startswith("D")):
        name = names[role]
        with runs.atomic_path(out / "networks" / f"{name}.weights.h5",
                              suffix=".weights.h5") as tmp:
            converted[role].save_weights(tmp)


def _import_adain(nets, out, log):
    """The AdaIN reference's decoder and encoder as a kstyle run of model kind adain."""
    from kstyle import runs
    from kstyle.nets.adain import ADAIN_SIZE_MULTIPLE, adain_stylizer
    from kstyle.recipes import dumps_toml, saved_model_options

    by_family = {found.family: (path, found, state) for path, found, state in nets}
    if len(nets) != 2 or set(by_family) != {"adain_decoder", "adain_vgg"}:
        given = ", ".join(f"{path} ({found.describe()})" for path, found, _ in nets)
        raise ModelLoadError(f"{given}: an AdaIN import takes the reference's decoder.pth "
                             "and its vgg_normalised.pth, the encoder it was trained with "
                             "(kstyle import decoder.pth --vgg vgg_normalised.pth)")
    decoder_path, decoder_arch, decoder_state = by_family["adain_decoder"]
    vgg_path, vgg_arch, vgg_state = by_family["adain_vgg"]
    encoder = convert(vgg_state, vgg_arch, vgg_path, name="adain_encoder")
    encoder.trainable = False
    decoder = convert(decoder_state, decoder_arch, decoder_path, name="decoder")
    channels = encoder.output["relu4_1"].shape[-1]
    if decoder_arch.options["features"] != channels:
        raise ModelLoadError(f"{decoder_path} decodes {decoder_arch.options['features']} "
                             f"channels, but {vgg_path} encodes {channels}")
    stem = _run_name(decoder_path)
    out = Path(out) if out else Path("saved_models") / ("adain" if stem == "decoder" else stem)
    if (out / runs.RUN_FILE).exists() or (out / runs.CHECKPOINT_DIR).exists():
        raise ModelLoadError(f"{out}: already holds a run; give --out a new folder")
    out.mkdir(parents=True, exist_ok=True)
    with runs.atomic_path(out / runs.TRANSLATOR_FILE, suffix=".keras") as tmp:
        adain_stylizer(encoder, decoder).save(tmp)
    kept = {}
    for name, net in (("encoder", encoder), ("decoder", decoder)):
        with runs.atomic_path(out / "networks" / f"{name}.weights.h5",
                              suffix=".weights.h5") as tmp:
            net.save_weights(tmp)
        kept[name] = f"networks/{name}.weights.h5"
    # Fine-tuning reads the encoder from vgg_normalised.pth; data.style_path is the user's.
    recipe = dumps_toml({"name": out.name,
                         "data": {"source": "photos", "image_size": 256, "load_size": 512},
                         "model": {"kind": "adain",
                                   "decoder_width": decoder_arch.options["width"],
                                   "vgg_weights": str(vgg_path.resolve())},
                         "train": {"out_dir": str(out)}})
    runs.write_text(out / runs.RECIPE_FILE, recipe)
    saved_model_options(out / runs.RECIPE_FILE)  # the [model] reads back as written
    runs.write_json(out / runs.RUN_FILE, {
        "kind": "adain", "name": out.name, "direction": "a2b", "input_transform": "none",
        "input_transforms": {"a2b": "none"}, "image_size": 256,
        "size_multiple": ADAIN_SIZE_MULTIPLE, "value_range": [-1.0, 1.0],
        "translator": runs.TRANSLATOR_FILE, "translators": {"a2b": runs.TRANSLATOR_FILE},
        "step": 0, "precision": "float32", "networks": kept,
        "imported": {role: {"file": str(path), "arch": found.name,
                            "sha256": runs.sha256_file(path)}
                     for role, (path, found, _) in (("decoder", by_family["adain_decoder"]),
                                                    ("encoder", by_family["adain_vgg"]))}})
    log(f"wrote {out} (adain: any style in one pass)")
    return out
