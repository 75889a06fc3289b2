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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("script", help="the reference's train.py or test.py")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args()

    import numpy as np
    import torch

    tolerate_missing_torchvision_ops()
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
