"""The CPU-tuned choices of kstyle's layers, timed both ways on this CPU.

Usage:

    python bench/thresholds.py                         # every choice, about a minute
    python bench/thresholds.py --only winograd transposed --repeats 9
    ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2 \\
        python bench/thresholds.py                     # an AVX2 CPU, imitated on AVX-512

Some of `kstyle.nets.layers` computes one function two ways and picks one by a size
threshold, chosen from timings on one CPU. This script times both ways again, on the
shapes kstyle's networks give each layer (batch 1, float32, each form in its own
`tf.function`, the median of `--repeats` calls after two warm-ups), and prints for each
shape the two times, their ratio and which form the layer takes there now, then the
thresholds the figures point to beside those in the code. Inference is the forward pass
with ``training=False``; training is forward + backward (the gradient of the output's
sum with respect to the input and the weights).

- ``winograd``: a 3x3 stride-1 conv by Winograd's F(2x2, 3x3) (`Conv2D`) against Keras'
  conv, output maps of 16 to 128 px a side, 64 to 256 input channels
  (``WINOGRAD_MIN_PIXELS``, ``WINOGRAD_MIN_CHANNELS`` where oneDNN has its AVX-512 kernels,
  ``WINOGRAD_MIN_CHANNELS_GEMM_CONV`` where TensorFlow's conv is an im2col and a GEMM).
- ``heads``: a conv to a few filters (the generators' last conv) tap by tap against
  Keras' conv, in inference (``TAPS_MAX_FILTERS``).
- ``blocks``: a 4x4 stride-2 conv (the U-Net's down path) as a matmul of 2x2 pixel
  blocks against Keras' conv, in inference (``BLOCKS_MIN_PIXELS``,
  ``BLOCKS_MIN_CHANNELS``; taken only where TensorFlow's conv is an im2col and a GEMM).
- ``transposed``: the U-Net's 4x4 stride-2 transposed convs by matmul and overlap-add
  against TensorFlow's kernel, inputs of 1 to 64 px a side (``MATMUL_MAX_PIXELS``).
- ``padding``: reflection padding by one-row slices against ``MirrorPad``.
- ``norm``: instance norm in training by the fused batch-norm kernel against its formula,
  and a batch of 2 image by image against as one transposed image
  (``InstanceNormalization.SPLIT_MAX``).

It prints figures and the CPU's name and ISA flags; it asserts nothing. Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHOICES = ("winograd", "heads", "blocks", "transposed", "padding", "norm")


def timed(fn, repeats: int) -> float:
    """Median ms of ``fn()`` (through to NumPy) after two warm-up calls."""
    for _ in range(2):
        _numpy(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _numpy(fn())
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _numpy(outputs):
    for t in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        if t is not None:
            t.numpy()


def compiled(call, inputs, training: bool, weights=()):
    """A `tf.function` of ``call(inputs)``: its output, or (training) the gradients of
    its sum with respect to ``inputs`` and ``weights``."""
    import tensorflow as tf

    variables = [tf.Variable(x) for x in inputs]

    @tf.function(autograph=False)
    def run():
        if not training:
            return call(*variables)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(call(*variables))
        return tape.gradient(loss, variables + list(weights))

    return run


def row(label: str, first: tuple[str, float], second: tuple[str, float], taken: str):
    (name_a, ms_a), (name_b, ms_b) = first, second
    faster = name_a if ms_a <= ms_b else name_b
    # a difference under 10% is within this machine's noise: not flagged
    mark = ("" if faster == taken or max(ms_a, ms_b) < 1.1 * min(ms_a, ms_b)
            else "   <- the other form is faster here")
    print(f"  {label:34} {name_a} {ms_a:8.2f} ms   {name_b} {ms_b:8.2f} ms   "
          f"{ms_a / ms_b:5.2f}x   taken: {taken}{mark}")
    return faster


def winograd(repeats: int) -> str:
    import keras
    import tensorflow as tf

    from kstyle.nets.layers import Conv2D

    wins = {}
    for channels in (64, 128, 256):
        for side in (16, 32, 64, 128):
            if side * side * channels > 128 * 128 * 128:
                continue  # larger than any map the ResNet generators give a 3x3 conv
            layer = Conv2D(channels, 3)
            layer.build((None, None, None, channels))
            x = tf.random.uniform((1, side + 2, side + 2, channels), -1, 1)
            taken = "winograd" if layer._winograd(x) else "direct"
            for training in (False, True):
                forms = {}
                for form, minimum in (("winograd", 1), ("direct", 10**12)):
                    layer.WINOGRAD_MIN_PIXELS = minimum
                    layer.WINOGRAD_MIN_CHANNELS = layer.WINOGRAD_MIN_CHANNELS_GEMM_CONV = 1
                    forms[form] = timed(compiled(layer, [x], training, layer.weights),
                                        repeats)
                del layer.WINOGRAD_MIN_PIXELS, layer.WINOGRAD_MIN_CHANNELS
                del layer.WINOGRAD_MIN_CHANNELS_GEMM_CONV
                label = f"{side}x{side}x{channels} {'train' if training else 'infer'}"
                faster = row(label, ("winograd", forms["winograd"]),
                             ("direct", forms["direct"]), taken)
                wins[(channels, side, training)] = faster == "winograd"
            keras.backend.clear_session()
    return _suggest_winograd(wins)


def _suggest_winograd(wins) -> str:
    from kstyle.nets.layers import Conv2D, direct_conv_kernels

    lines = []
    for training in (False, True):
        smallest = {}
        for channels in (64, 128, 256):
            sides = sorted(s for c, s, t in wins if c == channels and t == training)
            # the smallest side from which Winograd wins at every larger side measured
            winning = [s for s in sides if all(wins[(channels, t, training)]
                                               for t in sides if t >= s)]
            smallest[channels] = min(winning) if winning else None
        lines.append(f"  {'training' if training else 'inference'}: Winograd wins from "
                     + ", ".join(f"{s}x{s} px at {c} channels" if s else f"no size at {c}"
                                 for c, s in smallest.items()))
    direct = direct_conv_kernels()
    lines.append(f"  in the code: WINOGRAD_MIN_PIXELS = {Conv2D.WINOGRAD_MIN_PIXELS}, "
                 f"WINOGRAD_MIN_CHANNELS = {Conv2D.WINOGRAD_MIN_CHANNELS} (oneDNN's "
                 f"AVX-512 kernels), WINOGRAD_MIN_CHANNELS_GEMM_CONV = "
                 f"{Conv2D.WINOGRAD_MIN_CHANNELS_GEMM_CONV} (im2col and GEMM); this CPU: "
                 f"{'direct kernels' if direct else 'im2col and GEMM'}")
    return "\n".join(lines)


def heads(repeats: int) -> str:
    import keras
    import tensorflow as tf

    from kstyle.nets.layers import Conv2D

    wins = []
    # (side, kernel, channels in, filters): the ResNet's, fast style's and AdaIN's last
    # convs, then wider ones
    for side, kernel, channels, filters in ((256, 7, 64, 3), (256, 9, 32, 3), (512, 3, 64, 3),
                                            (256, 3, 64, 8), (256, 3, 64, 16)):
        layer = Conv2D(filters, kernel)
        layer.build((None, None, None, channels))
        x = tf.random.uniform((1, side + kernel - 1, side + kernel - 1, channels), -1, 1)
        taken = "taps" if layer._by_taps(x) else "keras"
        forms = {}
        for form, limit in (("taps", 10**6), ("keras", 0)):
            layer.TAPS_MAX_FILTERS = limit
            forms[form] = timed(compiled(lambda v, layer=layer: layer(v, training=False),
                                         [x], False), repeats)
        del layer.TAPS_MAX_FILTERS
        faster = row(f"{side} px {kernel}x{kernel} {channels} -> {filters} infer",
                     ("taps", forms["taps"]), ("keras", forms["keras"]), taken)
        wins.append((filters, faster == "taps"))
        keras.backend.clear_session()
    return (f"  taps win at {sorted({f for f, w in wins if w}) or 'no'} filters, lose at "
            f"{sorted({f for f, w in wins if not w}) or 'no'}\n"
            f"  in the code: TAPS_MAX_FILTERS = {Conv2D.TAPS_MAX_FILTERS}")


def blocks(repeats: int) -> str:
    import keras
    import tensorflow as tf

    from kstyle.nets import layers
    from kstyle.nets.layers import Conv2D

    # The U-Net 256's down convs: input side, channels in, filters out.
    shapes = [(256, 3, 64), (128, 64, 128), (64, 128, 256), (32, 256, 512), (16, 512, 512)]
    original = layers.direct_conv_kernels
    direct = original()
    for side, channels, filters in shapes:
        layer = Conv2D(filters, 4, strides=2, padding="same")
        layer.build((None, None, None, channels))
        x = tf.random.uniform((1, side, side, channels), -1, 1)
        taken = "blocks" if layer._by_blocks(x) else "keras"
        forms = {}
        for form, minimum in (("blocks", 0), ("keras", 10**12)):
            layer.BLOCKS_MIN_PIXELS = layer.BLOCKS_MIN_CHANNELS = minimum
            layers.direct_conv_kernels = lambda: False  # so that the minimums decide
            try:
                forms[form] = timed(compiled(lambda v, layer=layer: layer(v, training=False),
                                             [x], False), repeats)
            finally:
                layers.direct_conv_kernels = original
        del layer.BLOCKS_MIN_PIXELS, layer.BLOCKS_MIN_CHANNELS
        row(f"{side}x{side}x{channels} -> {filters} infer", ("blocks", forms["blocks"]),
            ("keras", forms["keras"]), taken)
        keras.backend.clear_session()
    return (f"  in the code: BLOCKS_MIN_PIXELS = {Conv2D.BLOCKS_MIN_PIXELS}, "
            f"BLOCKS_MIN_CHANNELS = {Conv2D.BLOCKS_MIN_CHANNELS}, only where TensorFlow's "
            f"conv is an im2col and a GEMM; this CPU: "
            f"{'direct kernels' if direct else 'im2col and GEMM'}")


def transposed(repeats: int) -> str:
    import keras
    import tensorflow as tf

    from kstyle.nets.layers import Conv2DTranspose

    # The U-Net 256's decoder: input side -> (channels in, filters out).
    shapes = [(1, 512, 512), (2, 1024, 512), (4, 1024, 512), (8, 1024, 512),
              (16, 1024, 256), (32, 512, 128), (64, 256, 64)]
    largest = {False: 0, True: 0}
    for side, channels, filters in shapes:
        layer = Conv2DTranspose(filters, 4, strides=2, crop=1, crop_end=1)
        layer.build((None, None, None, channels))
        x = tf.random.uniform((1, side, side, channels), -1, 1)
        taken = "matmul" if layer._by_matmul(x.shape) else "kernel"
        for training in (False, True):
            forms = {}
            for form, limit in (("matmul", 10**12), ("kernel", 0)):
                layer.MATMUL_MAX_PIXELS = limit
                forms[form] = timed(compiled(lambda v, layer=layer, training=training:
                                             layer(v, training=training),
                                             [x], training, layer.weights), repeats)
            del layer.MATMUL_MAX_PIXELS
            label = (f"{side}x{side}x{channels} -> {filters} "
                     f"{'train' if training else 'infer'}")
            if row(label, ("matmul", forms["matmul"]), ("kernel", forms["kernel"]),
                   taken) == "matmul" and largest[training] == side // 2:
                largest[training] = side
        keras.backend.clear_session()
    return (f"  the matmul wins up to {largest[False]}x{largest[False]} px in inference, "
            f"{largest[True]}x{largest[True]} in training (every smaller size too)\n"
            f"  in the code: MATMUL_MAX_PIXELS = {Conv2DTranspose.MATMUL_MAX_PIXELS}")


def padding(repeats: int) -> str:
    import tensorflow as tf

    from kstyle.nets.layers import _reflect

    def slices(x):
        return _reflect(_reflect(x, 1, 1, 1), 1, 1, 2)

    def mirror(x):
        return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")

    verdict = []
    for side, channels in ((256, 64), (128, 128), (64, 256)):
        x = tf.random.uniform((1, side, side, channels), -1, 1)
        for training in (False, True):
            label = f"{side}x{side}x{channels} {'train' if training else 'infer'}"
            faster = row(label, ("slices", timed(compiled(slices, [x], training), repeats)),
                         ("mirror", timed(compiled(mirror, [x], training), repeats)),
                         "mirror" if training else "slices")
            verdict.append((training, faster))
    return "  faster: " + ", ".join(f"{'training' if t else 'inference'} {f}"
                                    for t, f in verdict)


def norm(repeats: int) -> str:
    import keras
    import tensorflow as tf

    from kstyle.nets.layers import InstanceNormalization

    layer = InstanceNormalization()
    formula = lambda x: layer(x, training=False)  # noqa: E731  the same function
    fused = lambda x: layer(x, training=True)  # noqa: E731
    for side, channels in ((256, 64), (128, 128), (64, 256)):
        x = tf.random.uniform((1, side, side, channels), -1, 1)
        row(f"{side}x{side}x{channels} train", ("fused", timed(compiled(fused, [x], True),
                                                                 repeats)),
            ("formula", timed(compiled(formula, [x], True), repeats)), "fused")
    for side, channels in ((128, 64), (32, 256)):
        x = tf.random.uniform((2, side, side, channels), -1, 1)
        forms = {}
        for form, split_max in (("split", 4), ("joined", 0)):
            layer.SPLIT_MAX = split_max
            forms[form] = timed(compiled(fused, [x], True), repeats)
        del layer.SPLIT_MAX
        row(f"2 x {side}x{side}x{channels} train", ("split", forms["split"]),
            ("joined", forms["joined"]), "split")
    keras.backend.clear_session()
    return f"  in the code: SPLIT_MAX = {InstanceNormalization.SPLIT_MAX}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=CHOICES, default=list(CHOICES))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from kstyle.precision import cpu_info

    name, flags = cpu_info()
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    caps = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "XLA_FLAGS")
            if os.environ.get(k)]
    print(f"{name} ({' '.join(isa)}){', ' + ' '.join(caps) if caps else ''}; "
          f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs")
    summary = []
    for choice in args.only:
        print(f"\n{choice}:")
        summary.append(f"{choice}:\n{globals()[choice](args.repeats)}")
    print("\nWhat the figures point to:\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
