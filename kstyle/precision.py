"""Compute precision: which policy this machine runs fast (``train.precision = "auto"``),
building layers under a Keras dtype policy, float32 copies for inference."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
from pathlib import Path

import keras


@contextlib.contextmanager
def dtype_policy(name: str):
    """Builds layers under the Keras dtype policy ``name``, then restores the old one.

    Layers keep the policy they were built with, so a model built inside trains in mixed
    precision while the rest of the process (loading, inference) stays float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(network: keras.Model) -> keras.Model:
    """The same functional network with every layer computing in float32, same weights
    (networks nested in it as layers, such as AdaIN's encoder and decoder, too)."""
    def clone(layer):
        if isinstance(layer, keras.Model):
            return float32_copy(layer)
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=clone)
    copy.set_weights(network.get_weights())
    return copy


#: CPU features with which TensorFlow (oneDNN) computes bfloat16 natively; without them it
#: converts to float32 and back around every op, and a mixed_bfloat16 step takes several
#: times as long as a float32 one.
BF16_CPU_FEATURES = ("avx512_bf16", "amx_bf16")

#: Of those, the ones that make bfloat16 worth it. With AVX-512 BF16 alone kstyle's float32
#: steps are the faster ones (float32 runs the ResNet's convolutions by Winograd's
#: algorithm, the U-Net's small transposed convs as matmuls, norms through fused kernels);
#: AMX's tile units multiply bfloat16 matrices many times faster than AVX-512 does.
#: ``python bench/train_speed.py`` times both precisions on the CPU at hand.
BF16_FAST_CPU_FEATURES = ("amx_bf16",)


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What chooses a precision: the GPUs' compute capabilities, the CPU's name and flags."""

    gpus: tuple[tuple[int, int], ...]
    cpu: str
    cpu_flags: frozenset[str]
    arm: bool = False

    @classmethod
    def detect(cls) -> Hardware:
        """This machine (Linux' /proc/cpuinfo for the CPU; TensorFlow for the GPUs)."""
        import tensorflow as tf

        gpus = []
        for gpu in tf.config.list_physical_devices("GPU"):
            capability = tf.config.experimental.get_device_details(gpu).get(
                "compute_capability")
            gpus.append(tuple(capability) if capability else (0, 0))
        name, flags = cpu_info()
        return cls(tuple(gpus), name, flags, platform.machine().lower() in ("aarch64", "arm64"))

    def native_bf16_cpu(self) -> bool:
        if self.arm:  # oneDNN's ARM kernels use bf16 where the CPU has it (Graviton 3+)
            return "bf16" in self.cpu_flags and onednn_on()
        return any(f in self.cpu_flags for f in BF16_CPU_FEATURES)

    def fast_bf16_cpu(self) -> bool:
        """Whether bfloat16 steps beat float32 ones on this CPU (see
        `BF16_FAST_CPU_FEATURES`)."""
        if self.arm:
            return self.native_bf16_cpu()
        return any(f in self.cpu_flags for f in BF16_FAST_CPU_FEATURES)


def cpu_info(path: str = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    """``(model name, flags)`` of the first CPU in ``path`` (empty where it is absent)."""
    name, flags = platform.processor() or platform.machine(), frozenset()
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and name in ("", platform.processor(), platform.machine()):
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return name, flags


def onednn_on() -> bool:
    """Whether TensorFlow runs its oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS``, on by default)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") not in ("0", "false", "False")


def choose(setting: str, hardware: Hardware | None = None) -> tuple[str, str]:
    """The dtype policy for ``train.precision`` on this machine, and why.

    ``"auto"``: ``mixed_bfloat16`` where the hardware computes bfloat16 fast (a GPU of
    compute capability 8.0 or more; a CPU with AMX when training on the CPU; an ARM CPU
    with bf16 under oneDNN), ``mixed_float16`` on older GPUs with tensor cores (7.x,
    loss-scaled), else ``float32`` (on a CPU with AVX-512 BF16 but no AMX too: see
    `BF16_FAST_CPU_FEATURES`). Any other setting is used as it is, the
    reason then warning when it runs emulated (bfloat16 on a CPU without it, float16 on a
    CPU).

    Returns:
        ``(policy, reason)``: the reason is one line; it starts with "warning:" when the
        setting will run slower than float32.
    """
    hardware = hardware or Hardware.detect()
    cpu = hardware.cpu or "this CPU"
    if hardware.gpus:
        lowest = min(hardware.gpus)
        capability = f"compute capability {lowest[0]}.{lowest[1]}"
        if setting != "auto":
            return setting, f"as set (GPU {capability})"
        if lowest >= (8, 0):
            return "mixed_bfloat16", f"auto: the GPU has {capability} (bfloat16 natively)"
        if lowest >= (7, 0):
            return "mixed_float16", f"auto: the GPU has {capability} (float16 tensor cores)"
        return "float32", f"auto: the GPU has {capability} (no fast 16-bit math)"
    native = hardware.native_bf16_cpu()
    feature = "bf16" if hardware.arm else " or ".join(BF16_CPU_FEATURES)
    if setting == "auto":
        if hardware.fast_bf16_cpu():
            found = sorted(hardware.cpu_flags & {*BF16_CPU_FEATURES, "bf16"})
            return "mixed_bfloat16", f"auto: {cpu} has {', '.join(found)}"
        if native:
            return "float32", (f"auto: {cpu} has avx512_bf16 but no amx_bf16: float32 "
                               "steps are the faster ones there")
        return "float32", f"auto: {cpu} has no {feature} (bfloat16 would be emulated)"
    if setting == "mixed_bfloat16" and not native:
        return setting, (f"warning: {cpu} has no {feature}: TensorFlow emulates bfloat16 "
                         "on it, and each step takes several times (about 8x) as long as in "
                         "float32; train.precision = \"auto\" picks float32 here")
    if setting == "mixed_bfloat16" and not hardware.fast_bf16_cpu():
        return setting, (f"warning: {cpu} has avx512_bf16 but no amx_bf16: a bfloat16 "
                         "step took 2-4x as long as a float32 one on such a CPU; "
                         "train.precision = \"auto\" picks float32 here")
    if setting == "mixed_float16":
        return setting, (f"warning: {cpu} computes float16 by converting to float32: "
                         "steps are slower than in float32 without a GPU; "
                         "train.precision = \"auto\" picks the fastest")
    return setting, "as set"
