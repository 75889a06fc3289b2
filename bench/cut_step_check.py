"""One CUT training step of kstyle against the reference's, at the same weights.

The reference (taesungp/contrastive-unpaired-translation) builds its networks in its own
PyTorch environment (6-block ResNet generator, PatchGAN, MLP head; xavier init, or the
weights of a trained run with ``--checkpoint``), takes one horse and one zebra, and
computes the losses and gradients of one step: the discriminator's, then the generator's
and the head's (GAN + PatchNCE + identity PatchNCE). kstyle gets the same weights (its
importer for G and D, the head's two dense layers per sampled layer), the same images and
the same sampled patch positions, and computes the same. Printed: each loss on both sides,
and per network the worst kernel gradient's difference, relative to its largest entry and
in norm.

    python bench/cut_step_check.py --reference ../contrastive-unpaired-translation \\
        --torch-python ../torchenv/bin/python [--checkpoint RUN_DIR] [--as-is]

``--as-is`` runs the reference without bench/reference_launcher.py's
``--contiguous-norm-grads``, showing how far PyTorch's CPU instance-norm backward takes its
PatchNCE gradients from the true ones (see that file). The images are two of
bench/parity.py's known-answer task when it has written them (bench/out/parity/tone_map_128),
otherwise two smooth random images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LAYERS = "0,4,7,10,14"  # the reference's indices of kstyle's five default nce_layers


def _inputs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A horse and a zebra in [-1, 1], NHWC, batch 1."""
    data = HERE / "out" / "parity" / "tone_map_128"
    if (data / "trainA").is_dir() and size == 128:
        from PIL import Image

        def read(folder, index):
            path = sorted((data / folder).iterdir())[index]
            return np.asarray(Image.open(path).convert("RGB"), np.float32)[None] / 127.5 - 1

        return read("trainA", 3), read("trainB", 7)
    rng = np.random.default_rng(0)

    def smooth():
        coarse = rng.uniform(-1, 1, (1, size // 8, size // 8, 3)).astype(np.float32)
        return np.repeat(np.repeat(coarse, 8, 1), 8, 2)

    return smooth(), smooth()


# --------------------------------------------------------------------------- reference


def reference_worker(job: dict) -> None:
    """In the reference's environment: one step's losses, gradients, weights and ids."""
    sys.path.insert(0, str(HERE))
    import torch
    from reference_launcher import contiguous_norm_gradients, tolerate_missing_torchvision_ops

    tolerate_missing_torchvision_ops()
    if not job["as_is"]:
        contiguous_norm_gradients()
    torch.manual_seed(0)
    np.random.seed(0)
    sys.path.insert(0, job["reference"])
    work = Path(job["work"])
    sys.argv = ["train.py", "--dataroot", str(work), "--model", "cut", "--CUT_mode", "CUT",
                "--netG", "resnet_6blocks", "--no_antialias", "--no_antialias_up",
                "--nce_layers", LAYERS, "--gpu_ids", "-1", "--checkpoints_dir", str(work),
                "--name", "run", "--crop_size", str(job["size"]), "--display_id", "0"]
    from models import create_model
    from options.train_options import TrainOptions

    opt = TrainOptions().parse()
    model = create_model(opt)
    inputs = np.load(work / "inputs.npz")
    data = {"A": torch.tensor(inputs["a"]).permute(0, 3, 1, 2).contiguous(),
            "B": torch.tensor(inputs["b"]).permute(0, 3, 1, 2).contiguous(),
            "A_paths": ["a"], "B_paths": ["b"]}
    model.data_dependent_initialize(data)
    if job["checkpoint"]:
        for name in ("G", "D", "F"):
            state = torch.load(Path(job["checkpoint"]) / f"latest_net_{name}.pth",
                               map_location="cpu")
            state = {k.removeprefix("module."): v for k, v in state.items()}
            getattr(model, f"net{name}").load_state_dict(state)
    head = model.netF.module if hasattr(model.netF, "module") else model.netF
    drawn, sample = [], head.forward

    def recording(feats, num_patches=64, patch_ids=None):
        out, ids = sample(feats, num_patches, patch_ids)
        if patch_ids is None:
            drawn.append([np.asarray(i) for i in ids])
        return out, ids

    head.forward = recording
    nets = {"G": model.netG, "D": model.netD, "F": model.netF}
    result = {"weights_" + n + "/" + k: v.detach().numpy().copy()
              for n, net in nets.items() for k, v in net.state_dict().items()}
    model.set_input(data)
    model.forward()
    for net in nets.values():
        net.zero_grad()
    loss_d = model.compute_D_loss()
    loss_d.backward()
    result.update({"grad_D/" + k: p.grad.numpy().copy()
                   for k, p in model.netD.named_parameters()})
    for net in nets.values():
        net.zero_grad()
    model.set_requires_grad(model.netD, False)
    loss_g = model.compute_G_loss()
    loss_g.backward()
    for n in ("G", "F"):
        result.update({f"grad_{n}/" + k: p.grad.numpy().copy()
                       for k, p in nets[n].named_parameters() if p.grad is not None})
    result.update({f"ids_{i}_{j}": ids for i, call in enumerate(drawn)
                   for j, ids in enumerate(call)})
    losses = {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
              "g_gan_loss": model.loss_G_GAN.item(), "nce_loss": model.loss_NCE.item(),
              "nce_idt_loss": model.loss_NCE_Y.item()}
    np.savez(work / "reference.npz", **result)
    (work / "losses.json").write_text(json.dumps(losses))


# --------------------------------------------------------------------------- kstyle


def kstyle_step(work: Path, inputs) -> tuple[dict, dict]:
    """kstyle's losses and gradients at the reference's weights, ids and images."""
    import tensorflow as tf

    import kstyle.models.cut as cut_module
    from kstyle.importers.convert import convert
    from kstyle.models.cut import CUT
    from kstyle.models.cut_options import CUTOptions
    from kstyle.nets.layers import all_layers

    ref = dict(np.load(work / "reference.npz"))

    def part(prefix):
        return {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}

    def by_layer(net):
        return {f"{layer.name}/{w.name}": np.asarray(w)
                for layer in all_layers(net) for w in layer.weights}

    model = CUT.from_options(CUTOptions(num_blocks=6))
    for net, prefix in ((model.generator, "weights_G/"), (model.discriminator, "weights_D/")):
        for name, value in by_layer(convert(part(prefix))).items():
            layer, weight = name.split("/")
            target = next(w for w in net.get_layer(layer).weights if w.name == weight)
            target.assign(value)
    head = part("weights_F/")
    for i, (first, second) in enumerate(zip(model.head.first, model.head.second)):
        first.set_weights([head[f"mlp_{i}.0.weight"].T, head[f"mlp_{i}.0.bias"]])
        second.set_weights([head[f"mlp_{i}.2.weight"].T, head[f"mlp_{i}.2.bias"]])

    queue = [ref[f"ids_{i}_{j}"] for i in range(2) for j in range(len(LAYERS.split(",")))]
    cut_module.patch_ids = lambda features, num_patches: tf.constant(queue.pop(0), tf.int32)
    a, b = (tf.constant(x) for x in inputs)
    with tf.GradientTape(persistent=True) as tape:
        fake = model.generator(tf.concat([a, b], 0), training=True)
        d_loss = 0.5 * model._d_loss_fn(model.discriminator(b, training=True),
                                        model.discriminator(tf.stop_gradient(fake[:1]),
                                                            training=True))
        g_gan = model._g_gan_loss_fn(model.discriminator(fake[:1], training=True))
        nce, nce_idt = model.nce(a, fake[:1]), model.nce(b, fake[1:])
        g_loss = g_gan + 0.5 * (nce + nce_idt)
    losses = {"d_loss": d_loss, "g_loss": g_loss, "g_gan_loss": g_gan, "nce_loss": nce,
              "nce_idt_loss": nce_idt}

    def worst(net, loss, reference):
        """Over the kernels, the largest of: largest |kstyle - reference| over largest
        |reference|, and ||kstyle - reference|| over ||reference||."""
        grads = tape.gradient(loss, net.trainable_variables)
        diffs, norms = [], []
        for var, grad in zip(net.trainable_variables, grads):
            if "kernel" not in var.path:  # biases before an instance norm: zero in theory
                continue
            key = "/".join(var.path.split("/")[-2:])
            want = reference[key]
            diffs.append(float(np.abs(grad.numpy() - want).max() / np.abs(want).max()))
            norms.append(float(np.linalg.norm(grad.numpy() - want) / np.linalg.norm(want)))
        return max(diffs), max(norms)

    grad_g = by_layer(convert(part("grad_G/")))
    grad_d = by_layer(convert(part("grad_D/")))
    grad_f = part("grad_F/")
    grad_h = {}
    for i in range(len(model.head.first)):
        for dense, j in ((f"mlp{i}_dense1", 0), (f"mlp{i}_dense2", 2)):
            grad_h[f"{dense}/kernel"] = grad_f[f"mlp_{i}.{j}.weight"].T
    gradients = {"discriminator": worst(model.discriminator, d_loss, grad_d),
                 "generator": worst(model.generator, g_loss, grad_g),
                 "head": worst(model.head, g_loss, grad_h)}
    return {k: float(v) for k, v in losses.items()}, gradients


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="checkout of taesungp/contrastive-unpaired-"
                        "translation")
    parser.add_argument("--torch-python", default="python3",
                        help="Python of the reference's environment")
    parser.add_argument("--checkpoint", default="",
                        help="a reference run folder (latest_net_{G,D,F}.pth); default: "
                        "freshly initialized networks")
    parser.add_argument("--as-is", action="store_true",
                        help="the reference without --contiguous-norm-grads")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        reference_worker(json.loads(args.worker))
        return
    if not args.reference:
        parser.error("--reference is required")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for split in ("trainA", "trainB"):
            (work / split).mkdir()
        inputs = _inputs(args.size)
        np.savez(work / "inputs.npz", a=inputs[0], b=inputs[1])
        job = {"reference": str(Path(args.reference).resolve()), "work": str(work),
               "size": args.size, "as_is": args.as_is,
               "checkpoint": str(Path(args.checkpoint).resolve()) if args.checkpoint else ""}
        done = subprocess.run([args.torch_python, __file__, "--worker", json.dumps(job)],
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit("the reference's step failed:\n" + done.stderr[-3000:])
        reference = json.loads((work / "losses.json").read_text())
        losses, gradients = kstyle_step(work, inputs)
    print(f"one CUT step, {args.size} px, 6-block ResNet, "
          + ("weights of " + args.checkpoint if args.checkpoint else "fresh xavier weights")
          + (", reference as is" if args.as_is else ", reference with contiguous norm grads"))
    print(f"{'loss':<14}{'reference':>12}{'kstyle':>12}")
    for name, value in reference.items():
        print(f"{name:<14}{value:>12.6f}{losses[name]:>12.6f}")
    print("gradients, worst kernel of each network: largest difference / largest entry, "
          "and norm of the difference / norm")
    for name, (largest, norm) in gradients.items():
        print(f"  {name:<14}{largest:>10.2e}{norm:>10.2e}")


if __name__ == "__main__":
    main()
