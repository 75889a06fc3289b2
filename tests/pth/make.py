"""Writes the .pth fixtures of tests/test_pth.py; needs torch (only to regenerate them):

    python tests/pth/make.py

The same state dict in PyTorch's zip format and in its legacy format (what the reference
projects published), a training checkpoint holding it, and the arrays torch holds, for
the reader to be compared with: views that share a storage, a transposed (non-contiguous)
tensor, every dtype a state dict holds, an empty tensor and a parameter.
"""

import collections
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def state_dict():
    torch.manual_seed(0)
    base = torch.randn(6, 5)
    return collections.OrderedDict([
        ("conv.weight", torch.randn(4, 3, 3, 3)),
        ("transposed", base.t()),
        ("rows", base[2:4]),
        ("base", base),
        ("bn.num_batches_tracked", torch.tensor(7)),
        ("half", torch.randn(3).half()),
        ("bfloat16", torch.randn(3).bfloat16()),
        ("int32", torch.arange(5, dtype=torch.int32)),
        ("bool", torch.tensor([True, False])),
        ("empty", torch.zeros(0, 3)),
        ("param", torch.nn.Parameter(torch.randn(2, 2))),
    ])


def main():
    sd = state_dict()
    torch.save(sd, HERE / "state_zip.pth")
    torch.save(sd, HERE / "state_legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"epoch": 3, "state_dict": sd}, HERE / "checkpoint.pth")
    as_numpy = {k: v.detach().to(torch.float32 if v.dtype == torch.bfloat16 else v.dtype)
                .numpy() for k, v in sd.items()}
    np.savez(HERE / "state_expected.npz", **as_numpy)


if __name__ == "__main__":
    main()
