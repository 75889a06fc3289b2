"""Runs a script of a PyTorch reference (junyanz/pytorch-CycleGAN-and-pix2pix, or
taesungp/contrastive-unpaired-translation for CUT), seeded.

Used by ``bench/parity.py`` in the reference's own environment (torch, torchvision, numpy,
Pillow, dominate); it imports nothing of kstyle. Usage:

    python bench/reference_launcher.py --seed 0 REFERENCE/train.py --dataroot ... [args]

Two things happen before the script runs, neither of which changes the reference's code:

- Python's, NumPy's and torch's random generators are seeded with ``--seed`` (the
  reference has no seed option; its data loader's workers derive their seeds from torch's).
- torchvision is made importable where its compiled ops do not load (a torchvision wheel
  built for another torch): registering the fake (meta) kernels of ``torchvision::nms``
  and friends then fails on import, although the reference only needs
  ``torchvision.transforms``. Those registrations are skipped for ops that do not exist.

With ``--contiguous-norm-grads``, one more: the gradient arriving at each instance norm's
output is made contiguous before the norm's backward runs. PyTorch's CPU instance-norm
backward (seen with torch 2.13) returns a wrong input gradient when that gradient comes in
with channels-last strides: on a 32x32x256 map, errors as large as the largest entry of
the right gradient, which float64 finite differences give, and which the same backward
computes from the contiguous gradient. The CUT reference's PatchNCE gradients arrive that
way (its feature sampler permutes NCHW maps to NHWC), so without this its generator
trains on gradients far from the true ones (``bench/cut_step_check.py --as-is`` shows by
how much). Values and the forward pass are unchanged.
"""

import argparse
import os
import random
import runpy
import sys


def tolerate_missing_torchvision_ops():
    import torch
    import torch.library

    register_fake = torch.library.register_fake

    def register_fake_if_defined(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            try:
                torch._C._dispatch_find_schema_or_throw(op, "")
            except RuntimeError:
                return args[0] if args else (lambda fn: fn)
        return register_fake(op, *args, **kwargs)

    torch.library.register_fake = register_fake_if_defined


def contiguous_norm_gradients():
    """Makes the gradient reaching every ``F.instance_norm`` output contiguous (see the
    module's docstring); values and the forward pass are unchanged."""
    import torch.nn.functional as F

    instance_norm = F.instance_norm

    def instance_norm_contiguous_grad(*args, **kwargs):
        out = instance_norm(*args, **kwargs)
        if out.requires_grad:
            out.register_hook(lambda grad: grad.contiguous())
        return out

    F.instance_norm = instance_norm_contiguous_grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contiguous-norm-grads", action="store_true",
                        help="make the gradients into instance norms contiguous (CUT)")
    parser.add_argument("script", help="the reference's train.py or test.py")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args()

    import numpy as np
    import torch

    tolerate_missing_torchvision_ops()
    if args.contiguous_norm_grads:
        contiguous_norm_gradients()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    script = os.path.abspath(args.script)
    os.chdir(os.path.dirname(script))
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script, *args.args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
