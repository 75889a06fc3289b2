"""Writes the network fixtures of tests/test_import.py; needs torch and a checkout of
junyanz/pytorch-CycleGAN-and-pix2pix (commit e19f22f), only to regenerate them:

    python tests/pth/make_nets.py --reference /path/to/pytorch-CycleGAN-and-pix2pix

Each network is built by the reference's own define_G / define_D at a small width, with
random weights and random batch-norm statistics (seed 0), saved as the reference saves
its models (a state dict; half of them in the legacy format its published files use),
and run in eval mode on the probe image; nets.npz keeps the outputs (both corners and the
mean for images, the whole map for discriminators).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from probe import corners, probe  # noqa: E402

#: name -> (define_G or define_D, its arguments, probe size, legacy format)
NETS = {
    "resnet_6blocks_instance": ("G", dict(netG="resnet_6blocks", ngf=4, norm="instance"), 32,
                                True),
    "resnet_9blocks_batch_dropout": ("G", dict(netG="resnet_9blocks", ngf=4, norm="batch",
                                               use_dropout=True), 36, False),
    "unet_128_batch_dropout": ("G", dict(netG="unet_128", ngf=2, norm="batch",
                                         use_dropout=True), 128, True),
    "unet_256_instance": ("G", dict(netG="unet_256", ngf=2, norm="instance"), 256, False),
    "basic_batch_6ch": ("D", dict(netD="basic", ndf=4, norm="batch", input_nc=6), 70, True),
    "n_layers_2_instance": ("D", dict(netD="n_layers", n_layers_D=2, ndf=4, norm="instance"),
                            48, False),
}


def build(networks, kind, args):
    if kind == "G":
        return networks.define_G(args.pop("input_nc", 3), 3, args.pop("ngf"),
                                 args.pop("netG"), **args)
    return networks.define_D(args.pop("input_nc", 3), args.pop("ndf"), args.pop("netD"),
                             **args)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True)
    reference = Path(parser.parse_args().reference).resolve()
    sys.path.insert(0, str(reference))
    from models import networks

    outputs = {}
    for name, (kind, args, size, legacy) in NETS.items():
        torch.manual_seed(0)
        net = build(networks, kind, dict(args))
        for module in net.modules():  # batch norm with statistics of its own, not 0 and 1
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.normal_(1.0, 0.2)
                module.bias.data.normal_(0.0, 0.2)
        net.eval()
        torch.save(net.state_dict(), HERE / f"{name}.pth",
                   _use_new_zipfile_serialization=not legacy)
        channels = args.get("input_nc", 3)
        x = torch.from_numpy(probe(size, size, channels)).permute(0, 3, 1, 2)
        with torch.no_grad():
            y = net(x).permute(0, 2, 3, 1).numpy()
        kept = corners(y) if kind == "G" and size > 48 else {"all": y[0]}
        outputs.update({f"{name}/{k}": v for k, v in kept.items()})
        outputs[f"{name}/parameters"] = np.array(sum(p.numel() for p in net.parameters()))
        print(name, sum(p.numel() for p in net.parameters()), y.shape)
    np.savez_compressed(HERE / "nets.npz", **outputs)


if __name__ == "__main__":
    main()
