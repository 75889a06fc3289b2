"""From a recipe to what trains: its datasets, its model with optimizers, its step count.

Used by ``kstyle.train`` and, without the trainer, by ``kstyle.evaluate`` and
``kstyle.export`` (the held-back data of a run).
"""

from __future__ import annotations

import tensorflow as tf

from kstyle.data.kinds import get_data_kind
from kstyle.errors import DataError, RecipeError
from kstyle.models import get_model_class
from kstyle.models.base import TranslationModel
from kstyle.optimizers import CountingLossScaleOptimizer, FusedAdam
from kstyle.precision import dtype_policy
from kstyle.recipes import Recipe
from kstyle.training.schedules import EpochSchedule


def data_source(recipe: Recipe):
    """``(count(split), dataset(split, **options))`` for the recipe's data, as the model
    kind's data kind reads it (``kstyle.data.kinds``): pairs, two unpaired domains (whose
    epoch is the larger one), photos alone, or photos with style images."""
    d = recipe.data
    kind = get_data_kind(recipe.model.data_kind)

    def count(split):
        return kind.count(d, split)

    def dataset(split, **options):
        return kind.dataset(d, split, **options)

    return count, dataset


def train_dataset(recipe: Recipe, seed_offset: int = 0, skip: int = 0):
    """The repeated, augmented, batched training pairs and the number of pairs.

    Args:
        recipe: the run's recipe.
        seed_offset: added to ``data.seed``. ``fit`` keeps it at 0: the synthetic source
            renders its images from the seed (and the held-back ones from ``seed + 1``).
        skip: batches to drop from the start of the stream: those a resumed run has
            already trained on, so that it goes on with the batches an uninterrupted run
            would see next. The dropped batches are still read and augmented (fast next
            to training steps).
    """
    d = recipe.data
    count, dataset = data_source(recipe)
    ds = dataset(d.train_split, load_size=d.load_size, flip=d.flip, augment=True,
                 batch_size=d.batch_size, shuffle=True, repeat=True, seed=d.seed + seed_offset,
                 cache=d.cache)
    return (ds.skip(skip) if skip else ds), count(d.train_split)


def eval_dataset(recipe: Recipe, split: str | None = None, batch_size: int | None = None):
    """Held-back pairs, resized without randomness; falls back to the training split.

    Returns:
        ``(dataset, split_used)``.
    """
    d = recipe.data
    count, dataset = data_source(recipe)
    problems = []
    for candidate in dict.fromkeys([split or d.val_split, d.train_split]):
        try:
            count(candidate)
        except DataError as e:
            problems.append(f"split {candidate!r}: {e}")
            continue
        ds = dataset(candidate, load_size=None, flip=False, augment=False,
                     batch_size=batch_size or d.batch_size, shuffle=False, repeat=False,
                     seed=d.seed, drop_remainder=False)
        return ds, candidate
    raise DataError(f"no usable images for data.path = {d.path!r} ({'; '.join(problems)})")


def steps_per_epoch(recipe: Recipe, replicas: int = 1) -> tuple[int, int]:
    """``(steps per epoch, training pairs)``; errors for a batch the data or replicas
    cannot fill."""
    d = recipe.data
    count = data_source(recipe)[0](d.train_split)
    if d.batch_size % replicas:
        raise RecipeError(
            f"{recipe.source}: data.batch_size = {d.batch_size} must be a multiple of the "
            f"{replicas} replicas of train.distribute = {recipe.train.distribute!r}")
    if count < d.batch_size:
        raise DataError(
            f"data.path = {d.path!r} has {count} training pairs, fewer than "
            f"data.batch_size = {d.batch_size}")
    return recipe.train.steps_per_epoch or count // d.batch_size, count


def resolve_jit(setting) -> bool:
    """``train.jit_compile``: ``"auto"`` is XLA on a GPU, off on CPUs (where it was slower)."""
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return bool(setting)


def build_model(recipe: Recipe, strategy: tf.distribute.Strategy, steps_per_epoch: int,
                precision: str = "float32") -> TranslationModel:
    """The recipe's model under ``strategy``, compiled with one Adam per optimizer slot
    (the learning rate a function of the step), slots and per-replica state built.

    Args:
        precision: the dtype policy (``train.precision`` as ``kstyle.precision.choose``
            resolves it on this machine).
    """
    t = recipe.train
    with dtype_policy(precision), strategy.scope():
        model = get_model_class(recipe.model.kind).from_options(recipe.model)

    def adam():
        schedule = EpochSchedule(
            t.lr, steps_per_epoch, policy=t.lr_policy, epochs=t.epochs,
            decay_start_epoch=t.decay_start_epoch, step_epochs=t.step_epochs,
            step_gamma=t.step_gamma)
        adam = FusedAdam(schedule, beta_1=t.beta_1, beta_2=t.beta_2)
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
        return CountingLossScaleOptimizer(adam) if precision == "mixed_float16" else adam

    with strategy.scope():
        model.compile(**{name: adam() for name in model.optimizer_slots},
                      jit_compile=resolve_jit(t.jit_compile))
        model.build_optimizers()
        model.build_state(recipe.data.image_size)
    if t.distribute == "multi_worker":
        model.use_multi_worker_fixes()
    return model


def input_transforms(recipe: Recipe, model: TranslationModel) -> dict:
    """The derivation (gray, edges, none) each translator applies to its input.

    A derived pair has the derived image on its A side, so the derivation belongs to the
    translator that reads that side: ``a2b`` for ``data.direction = "a2b"``, ``b2a``
    otherwise (that of a two-way model, or none), whose input is the plain photo.
    """
    d = recipe.data
    derived = d.source in ("photos", "tfds") and get_data_kind(model.data_kind).derives
    derive = d.derive if derived else "none"
    return {k: derive if k == d.direction else "none" for k in model.translators}
