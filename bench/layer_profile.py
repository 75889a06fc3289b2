"""Where a network's training time goes: forward + backward of each layer, by layer type.

Usage:

    python bench/layer_profile.py                       # ResNet-9 at 256 px, U-Net at 256 px
    python bench/layer_profile.py --nets resnet --size 128 --blocks 6 --repeats 10
    python bench/layer_profile.py --forward       # inference: forward only, training=False

Each layer of the generator is run on its own, on an input of the shape it gets inside
the network (batch 1, float32), forward and backward (the gradient of the output's sum
with respect to the input and the layer's weights) under one `tf.function` per layer,
the median of `--repeats` calls after two warm-ups (`--forward`: the forward pass alone,
in inference mode, as `kstyle stylize` runs it). The table sums the layers by type
(Conv2D, Conv2DTranspose, ReflectionPadding2D, InstanceNormalization, Concatenate ...)
and gives each type's share of the sum; the sum is not the step (a step also runs the
discriminators, the losses and the optimizer, and TensorFlow overlaps some ops), but the
shares say which ops to attack first. The CPU is printed with the figures. It prints
figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), "unknown CPU")
    except OSError:
        return "unknown CPU"


def profile(net, size: int, repeats: int,
            forward: bool = False) -> list[tuple[str, str, float]]:
    """``[(layer name, layer type, ms forward + backward)]`` of each layer with an input
    (``forward``: ms of the inference forward pass alone)."""
    import keras
    import tensorflow as tf

    rows = []
    # Each layer's input shape, from running the network once with every layer's output
    # kept (a functional model's intermediate tensors).
    probe = keras.Model(net.inputs, [layer.output for layer in net.layers[1:]])
    outputs = probe(tf.random.uniform((1, size, size, 3), -1, 1))
    values = {layer.name: out for layer, out in zip(net.layers[1:], outputs)}
    values[net.layers[0].name] = tf.random.uniform((1, size, size, 3), -1, 1)
    for layer in net.layers[1:]:
        # The layers feeding this one (Keras' functional graph records them per call).
        names = [t._keras_history.operation.name for t in layer._inbound_nodes[0].input_tensors]
        inputs = [tf.Variable(values[n]) for n in names]

        @tf.function
        def step(layer=layer, inputs=inputs):
            if forward:
                return [layer(inputs if len(inputs) > 1 else inputs[0], training=False)]
            with tf.GradientTape() as tape:
                args = inputs if len(inputs) > 1 else inputs[0]
                y = layer(args, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32))
            return tape.gradient(loss, inputs + layer.trainable_variables)

        for _ in range(2):
            step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            grads = step()
            _ = [g.numpy() for g in grads if g is not None][:1]
            times.append((time.perf_counter() - start) * 1000)
        rows.append((layer.name, type(layer).__name__, statistics.median(times)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", default=["resnet", "unet"],
                        choices=["resnet", "unet"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=9, help="ResNet blocks")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=6, help="slowest single layers shown")
    parser.add_argument("--forward", action="store_true",
                        help="time the inference forward pass alone")
    args = parser.parse_args(argv)

    from kstyle.nets import resnet_generator, unet_generator

    what = "inference forward" if args.forward else "forward + backward"
    print(f"{what} per layer, batch 1, float32, {args.size} px, {cpu_name()}")
    for kind in args.nets:
        net = (resnet_generator(num_blocks=args.blocks) if kind == "resnet"
               else unet_generator(num_downs=min(8, args.size.bit_length() - 1)))
        rows = profile(net, args.size, args.repeats, args.forward)
        total = sum(ms for _, _, ms in rows)
        by_type = collections.defaultdict(lambda: [0.0, 0])
        for _, kind_name, ms in rows:
            by_type[kind_name][0] += ms
            by_type[kind_name][1] += 1
        label = f"ResNet-{args.blocks}" if kind == "resnet" else "U-Net"
        print(f"\n{label}: {len(rows)} layers, {total:,.0f} ms in all")
        print(f"{'layer type':28} {'layers':>6} {'ms':>9} {'share':>6}")
        for name, (ms, count) in sorted(by_type.items(), key=lambda kv: -kv[1][0]):
            print(f"{name:28} {count:6d} {ms:9.1f} {ms / total:6.1%}")
        print("slowest layers: " + ", ".join(
            f"{n} {ms:.0f} ms" for n, _, ms in sorted(rows, key=lambda r: -r[2])[:args.top]))


if __name__ == "__main__":
    main()
