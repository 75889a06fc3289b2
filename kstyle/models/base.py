"""The contract between a model kind and the rest of kstyle: one base class.

The runner (``kstyle.train``), the checkpoints, the exporter, the evaluator and the
collapse monitor use a trained model only through the members :class:`TranslationModel`
declares; nothing outside ``kstyle/models/`` looks for other attributes.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import keras
import tensorflow as tf

from kstyle.models.options import ModelOptions
from kstyle.models.signature import Inference


class TranslationModel(keras.Model):
    """Base of every model ``kstyle fit`` trains: one objective in ``train_step``.

    A subclass sets:
        ``Options``: its options dataclass (``kstyle/models/<kind>_options.py``), which
            also says what it trains on (``data_kind``).
        ``val_metric``: the name of the value ``test_step`` reports first, lower is
            better (``val_<metric>`` in the logs, and the untrained score of ``fit``).
        ``optimizer_slots``: ``compile``'s optimizer arguments, each with the name its
            state is checkpointed under (default ``g_optimizer`` -> ``generator``,
            ``d_optimizer`` -> ``discriminator``).
        ``size_multiple``: image sides the networks take are multiples of it (a class or
            an instance attribute).
        ``inference``: how its translators are used once trained: an
            :class:`kstyle.models.signature.Inference` subclass, written in the kind's
            model file, that declares their inputs and outputs (default: one image in,
            one image out).

    and writes:
        ``from_options(options, in_channels, out_channels)``: builds its networks.
        ``networks``: the checkpointed state by name (networks, and any model holding
            per-replica state, such as CycleGAN's image pools).
        ``translators``: the inference networks by direction (``"a2b"``, and ``"b2a"`` for a
            two-way model); ``translator`` is the ``"a2b"`` one.
        ``optimized_variables()``: the variables of each optimizer, by ``compile`` argument.
        ``sample_columns(a, b)``: named image batches for a sample grid.
        ``sample_outputs(a, b)``: given here for translators of one input; a model whose
            translator takes more (AdaIN's content and style) writes its own.
        ``train_step`` / ``test_step`` / ``metrics``: the objective, as in any Keras model;
            the steps are traced as plain Python, without AutoGraph (a branch on a tensor
            is ``tf.cond``, a loop ``tf.while_loop``).

    and may override :meth:`build_state`, the hook that creates per-replica state before
    the first step (under the strategy's scope).

    Given here: a generic ``compile(**optimizers)``, ``optimizers`` (by checkpoint name),
    ``build_optimizers`` (slots created before a checkpoint is restored into them), ``step``
    (steps trained: the first optimizer's ``iterations``, restored with a checkpoint),
    ``data_kind`` and :meth:`build_from_options` (keyword options, for tests and scripts).
    """

    Options: ClassVar[type[ModelOptions]] = ModelOptions
    val_metric: ClassVar[str] = "l1"
    optimizer_slots: ClassVar[dict[str, str]] = {"g_optimizer": "generator",
                                                 "d_optimizer": "discriminator"}
    size_multiple = 1
    inference: ClassVar[type[Inference]] = Inference

    #: What the model trains on, as its options class says: a name in
    #: ``kstyle.data.kinds.DATA_KINDS`` (``"paired"``, ``"unpaired"``, ...).
    data_kind: ClassVar[str] = ModelOptions.data_kind

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.data_kind = cls.Options.data_kind
        # The steps are plain Python over tensors (no Python branch on a tensor), so
        # they are traced as written: AutoGraph's conversion of a CycleGAN step and the
        # kstyle functions it calls would lengthen the first step.
        for name in ("train_step", "test_step"):
            if name in vars(cls):
                setattr(cls, name, tf.autograph.experimental.do_not_convert(vars(cls)[name]))

    # -- building

    @classmethod
    def from_options(cls, options: ModelOptions, *, in_channels: int = 3,
                     out_channels: int = 3) -> TranslationModel:
        """The model built from its options; ``in_channels`` are domain a's channels."""
        raise NotImplementedError

    @classmethod
    def build_from_options(cls, *, in_channels: int = 3, out_channels: int = 3, **options):
        """:meth:`from_options` with options as keywords, every other one at its default.

        Example:
            >>> Pix2Pix.build_from_options(base_filters=8, num_downs=5)
        """
        return cls.from_options(cls.Options(**options), in_channels=in_channels,
                                out_channels=out_channels)

    def build_state(self, image_size: int) -> None:
        """Creates per-replica state for training crops of ``image_size`` (none by default)."""

    # -- networks

    @property
    def networks(self) -> dict[str, keras.Model]:
        raise NotImplementedError

    @property
    def translators(self) -> dict[str, keras.Model]:
        raise NotImplementedError

    @property
    def translator(self) -> keras.Model:
        """The network used for inference and export: a -> b."""
        return self.translators["a2b"]

    def sample_columns(self, real_a, real_b) -> dict:
        raise NotImplementedError

    def sample_outputs(self, real_a, real_b) -> dict:
        """Each translator's output on held-back inputs, by direction (the collapse
        monitor's check): ``a2b`` of ``real_a``, ``b2a`` of ``real_b`` (when given)."""
        inputs = {"a2b": real_a, "b2a": real_b}
        return {direction: net(inputs[direction], training=False)
                for direction, net in self.translators.items()
                if inputs.get(direction) is not None}

    # -- optimizers

    def compile(self, **kwargs):
        """``compile(g_optimizer=..., d_optimizer=..., **keras_compile_arguments)``.

        The optimizer arguments are those of ``optimizer_slots``.
        """
        missing = [name for name in self.optimizer_slots if name not in kwargs]
        if missing:
            raise TypeError(f"{type(self).__name__}.compile() needs {', '.join(missing)}")
        optimizers = {name: kwargs.pop(name) for name in self.optimizer_slots}
        super().compile(**kwargs)
        for name, optimizer in optimizers.items():
            setattr(self, name, optimizer)

    @property
    def optimizers(self) -> dict:
        """The optimizers by the name their state is checkpointed under."""
        return {slot: getattr(self, name) for name, slot in self.optimizer_slots.items()}

    def optimized_variables(self) -> dict[str, list]:
        raise NotImplementedError

    def build_optimizers(self) -> None:
        """Creates optimizer slots now, so that a checkpoint can be restored into them."""
        for name, variables in self.optimized_variables().items():
            getattr(self, name).build(variables)

    @property
    def step(self) -> int:
        """Training steps taken: the first optimizer's ``iterations`` (checkpointed)."""
        return int(getattr(self, next(iter(self.optimizer_slots))).iterations.numpy())

    def use_multi_worker_fixes(self) -> None:
        """Works around two Keras 3 bugs of ``fit`` under MultiWorkerMirroredStrategy.

        Keras reduces a first data batch across workers to build the model symbolically,
        which fails (keras-team/keras#20585): kstyle's models are built before ``fit``, so
        that build is skipped. And it reduces each step's logs with ``axis=0``, which fails
        on scalars: the steps' logs are given a length-1 axis, reduced back to scalars.
        """
        self._maybe_symbolic_build = lambda *args, **kwargs: None
        for name in ("train_step", "test_step"):
            step = getattr(self, name)

            def with_axis(data, step=step):
                return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

            setattr(self, name, with_axis)


def model_class(options: type[ModelOptions]) -> type[TranslationModel]:
    """The Keras model class an options class names (imported now)."""
    module, _, name = options.model.partition(":")
    return getattr(importlib.import_module(module), name)
