"""Writes the network fixtures of tests/test_import.py; needs torch, a checkout of
junyanz/pytorch-CycleGAN-and-pix2pix (commit e19f22f), one of pytorch/examples and one of
naoto0804/pytorch-AdaIN (commit 47950d0), only to regenerate them:

    python tests/pth/make_nets.py --reference /path/to/pytorch-CycleGAN-and-pix2pix \
        --examples /path/to/pytorch/examples --adain /path/to/pytorch-AdaIN

Each network is built by the reference's own define_G / define_D at a small width, with
random weights and random batch-norm statistics (seed 0), saved as the reference saves
its models (a state dict; half of them in the legacy format its published files use),
and run in eval mode on the probe image; nets.npz keeps the outputs (both corners and the
mean for images, the whole map for discriminators). pytorch/examples' TransformerNet has
its widths written in; a narrower one (base 2) is made by giving its own
__init__ smaller layers of its own classes, its forward unchanged; it runs on 0..255.
The AdaIN reference's encoder (net.vgg, to relu4_2) and decoder are its own Sequentials
with every conv's channels divided by 32 (the other layers as they are); their outputs are
the reference's stylization (encode content and style, its adaptive_instance_normalization,
the alpha mix, decode) of the probe content in the probe style at alpha 1 and 0.5.
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
    "resnet_9blocks_batch_dropout": ("G", dict(netG="resnet_9blocks", ngf=3, norm="batch",
                                               use_dropout=True), 36, False),
    "unet_128_batch_dropout": ("G", dict(netG="unet_128", ngf=2, norm="batch",
                                         use_dropout=True), 128, True),
    "unet_256_instance": ("G", dict(netG="unet_256", ngf=2, norm="instance"), 256, False),
    "basic_batch_6ch": ("D", dict(netD="basic", ndf=4, norm="batch", input_nc=6), 70, True),
    "n_layers_2_instance": ("D", dict(netD="n_layers", n_layers_D=2, ndf=4, norm="instance"),
                            48, False),
    "pixel_batch_6ch": ("D", dict(netD="pixel", ndf=4, norm="batch", input_nc=6), 12, True),
    "pixel_instance": ("D", dict(netD="pixel", ndf=4, norm="instance"), 12, False),
}


def build(networks, kind, args):
    if kind == "G":
        return networks.define_G(args.pop("input_nc", 3), 3, args.pop("ngf"),
                                 args.pop("netG"), **args)
    return networks.define_D(args.pop("input_nc", 3), args.pop("ndf"), args.pop("netD"),
                             **args)


def narrow_transformer_net(module, base=4):
    """pytorch/examples' TransformerNet with widths base, 2 base, 4 base and 2 blocks."""
    net = module.TransformerNet.__new__(module.TransformerNet)
    torch.nn.Module.__init__(net)
    f = base
    net.conv1, net.in1 = module.ConvLayer(3, f, 9, 1), torch.nn.InstanceNorm2d(f, affine=True)
    net.conv2 = module.ConvLayer(f, 2 * f, 3, 2)
    net.in2 = torch.nn.InstanceNorm2d(2 * f, affine=True)
    net.conv3 = module.ConvLayer(2 * f, 4 * f, 3, 2)
    net.in3 = torch.nn.InstanceNorm2d(4 * f, affine=True)
    for i in range(1, 6):  # forward() calls five blocks
        setattr(net, f"res{i}", module.ResidualBlock(4 * f))
    net.deconv1 = module.UpsampleConvLayer(4 * f, 2 * f, 3, 1, upsample=2)
    net.in4 = torch.nn.InstanceNorm2d(2 * f, affine=True)
    net.deconv2 = module.UpsampleConvLayer(2 * f, f, 3, 1, upsample=2)
    net.in5 = torch.nn.InstanceNorm2d(f, affine=True)
    net.deconv3 = module.ConvLayer(f, 3, 9, 1)
    net.relu = torch.nn.ReLU()
    return net


def transformer_net_fixture(examples: Path, outputs: dict):
    import importlib.util

    path = examples / "fast_neural_style" / "neural_style" / "transformer_net.py"
    spec = importlib.util.spec_from_file_location("transformer_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = narrow_transformer_net(module, base=2)
    for p in net.parameters():
        p.data.normal_(0.0, 0.5)
    net.eval()
    state = net.state_dict()
    # The published files were saved by an older torch whose InstanceNorm kept running
    # statistics; pytorch/examples deletes them on load, and so must the converter.
    for key in [k for k in state if k.endswith(".in1.weight") or k == "in1.weight"]:
        prefix = key[: -len("weight")]
        state[prefix + "running_mean"] = torch.zeros_like(state[key])
        state[prefix + "running_var"] = torch.ones_like(state[key])
    name = "transformer_net"
    torch.save(state, HERE / f"{name}.pth", _use_new_zipfile_serialization=False)
    x = (torch.from_numpy(probe(40, 40)).permute(0, 3, 1, 2) + 1) * 127.5  # 0..255
    with torch.no_grad():
        y = net(x).permute(0, 2, 3, 1).numpy()
    outputs[f"{name}/all"] = y[0] / 127.5 - 1  # kstyle's scale: [-1, 1], unclipped
    outputs[f"{name}/parameters"] = np.array(sum(p.numel() for p in net.parameters()))
    print(name, int(outputs[f"{name}/parameters"]), y.shape, float(y.min()), float(y.max()))


def narrow_sequential(sequential, divisor=32, stop=None):
    """A copy of ``sequential`` with each conv's channels divided by ``divisor`` (those of
    the image, 3, kept), the other layers shared."""
    layers = []
    for layer in list(sequential.children())[:stop]:
        if isinstance(layer, torch.nn.Conv2d):
            def narrow(c):
                return c if c == 3 else c // divisor
            layer = torch.nn.Conv2d(narrow(layer.in_channels), narrow(layer.out_channels),
                                    layer.kernel_size)
        layers.append(layer)
    return torch.nn.Sequential(*layers)


def adain_fixture(adain: Path, outputs: dict):
    sys.path.insert(0, str(adain))
    import function
    import net as adain_net

    torch.manual_seed(0)
    vgg = narrow_sequential(adain_net.vgg, stop=33)  # to relu4_2: the file has more
    decoder = narrow_sequential(adain_net.decoder)
    for layer in [*vgg.children(), *decoder.children()]:  # He-scaled: outputs stay O(1)
        if isinstance(layer, torch.nn.Conv2d):
            fan_in = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
            layer.weight.data.normal_(0.0, (2.0 / fan_in) ** 0.5)
            layer.bias.data.uniform_(-0.1, 0.1)
    vgg.eval()
    decoder.eval()
    torch.save(vgg.state_dict(), HERE / "adain_vgg.pth", _use_new_zipfile_serialization=False)
    torch.save(decoder.state_dict(), HERE / "adain_decoder.pth")
    encoder = torch.nn.Sequential(*list(vgg.children())[:31])  # as the reference's test.py
    content = (torch.from_numpy(probe(40, 48)).permute(0, 3, 1, 2) + 1) / 2  # [0, 1]
    style = (torch.from_numpy(probe(37, 29)).flip(2).permute(0, 3, 1, 2) + 1) / 2
    with torch.no_grad():
        content_f, style_f = encoder(content), encoder(style)
        target = function.adaptive_instance_normalization(content_f, style_f)
        for alpha in (1.0, 0.5):
            y = decoder(alpha * target + (1 - alpha) * content_f).permute(0, 2, 3, 1).numpy()
            outputs[f"adain/alpha_{alpha}"] = y[0] * 2 - 1  # kstyle's scale, unclipped
    outputs["adain/style"] = style.permute(0, 2, 3, 1).numpy()[0] * 2 - 1
    outputs["adain/parameters"] = np.array(sum(p.numel() for p in decoder.parameters()))
    print("adain", int(outputs["adain/parameters"]), y.shape, float(y.min()), float(y.max()))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--adain", required=True)
    given = parser.parse_args()
    reference = Path(given.reference).resolve()
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
    transformer_net_fixture(Path(given.examples).resolve(), outputs)
    adain_fixture(Path(given.adain).resolve(), outputs)
    np.savez_compressed(HERE / "nets.npz", **outputs)


if __name__ == "__main__":
    main()
