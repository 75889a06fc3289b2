"""Quality of a trained translator: L1, PSNR and SSIM on pairs; FID and KID on any data.

Paired runs (pix2pix) are scored image by image against their targets
(:func:`evaluate`); unpaired runs (CycleGAN) by comparing the distribution of their
translations with that of real images of the target domain (:func:`evaluate_unpaired`),
which paired runs can add too. :func:`evaluate_run` picks from the run's model kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from kstyle import data as kdata
from kstyle import metrics, runs
from kstyle.data import images as kimages
from kstyle.errors import DataError, ModelLoadError
from kstyle.inference.stylizer import load
from kstyle.nets.inception import inception_features
from kstyle.recipes import load_recipe
from kstyle.training.builders import eval_dataset

#: KID subsets averaged, and images per subset (capped at the set sizes).
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def _feature_extractor(weights) -> Callable[[tf.Tensor], np.ndarray]:
    """A function mapping a batch of [-1, 1] images to float64 Inception features.

    A ``tf.function`` around the model: InceptionV3 run eagerly costs about three times
    as much on a CPU, its ~300 layers each dispatched from Python.
    """
    model = inception_features(weights)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda images: call(images).numpy().astype(np.float64)


def _quantized(images: tf.Tensor) -> tf.Tensor:
    """Rounds [-1, 1] outputs to uint8 and back, as they would be saved as image files."""
    return kimages.to_float(kimages.to_uint8(images))


def _distribution_scores(fake_features: np.ndarray, real_features: np.ndarray) -> dict:
    for name, feats in (("translated", fake_features), ("real", real_features)):
        if len(feats) < 2:
            raise DataError(f"FID and KID need at least 2 {name} images, got {len(feats)}")
    kid, kid_std = metrics.kid(fake_features, real_features, subsets=KID_SUBSETS,
                               subset_size=KID_SUBSET_SIZE)
    return {"fid": metrics.fid(fake_features, real_features), "kid": kid, "kid_std": kid_std}


def _weights_name(weights) -> str:
    return "random" if weights is None else str(weights)


def _load_run_recipe(run_dir: Path, data_path):
    recipe = load_recipe(run_dir / runs.RECIPE_FILE,
                         [f"data.path={_quote(data_path)}"] if data_path else [])
    if data_path and recipe.data.source == "synthetic":
        raise DataError(f"{run_dir}: this run trained on generated pairs (data.source = "
                        f"\"synthetic\"), which read no data.path: leave out --data "
                        f"{data_path}, or train on a folder to score on one")
    return recipe


def evaluate(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
             split: str | None = None, batch_size: int = 4, limit: int | None = None,
             fid: bool = False, inception_weights: str | os.PathLike | None = "imagenet",
             ) -> dict:
    """Scores a run's translator on held-back pairs.

    Pairs are read the way the run's recipe reads them (source, direction, derivation),
    from ``data_path`` when given, resized to the training size without augmentation.
    Scores compare uint8 outputs with the targets on [0, 1] values: ``l1`` is the mean
    absolute difference, ``psnr`` in dB (``tf.image.psnr``), ``ssim`` from
    ``tf.image.ssim`` (11x11 Gaussian window), each averaged over images. With ``fid``,
    the outputs and the targets are also compared as two sets, ignoring the pairing, by
    FID and KID on InceptionV3 features (see :func:`evaluate_unpaired`).

    Args:
        run_dir: a run folder written by ``kstyle fit``.
        data_path: folder of pairs (default: the recipe's ``data.path``).
        split: sub-folder or split name (default: the recipe's ``data.val_split``).
        batch_size: images per batch.
        limit: score at most this many pairs.
        fid: also compute ``fid``, ``kid`` and ``kid_std``.
        inception_weights: the InceptionV3 weights for ``fid`` (see
            :func:`kstyle.nets.inception.inception_features`).

    Returns:
        ``{"n": ..., "l1": ..., "psnr": ..., "ssim": ..., "data": ..., "split": ...}``,
        plus ``"fid"``, ``"kid"``, ``"kid_std"`` and ``"inception_weights"`` with ``fid``.

    Raises:
        kstyle.errors.DataError: no pairs, or fewer than 2 for ``fid``.
        kstyle.errors.ModelLoadError: the run or the InceptionV3 weights cannot be loaded.

    Example:
        >>> evaluate("saved_models/facades", split="test", fid=True)["fid"]  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    recipe = _load_run_recipe(run_dir, data_path)
    translator = load(run_dir)
    ds, used = eval_dataset(recipe, split=split, batch_size=batch_size)
    features = _feature_extractor(inception_weights) if fid else None
    l1, psnr, ssim, fake_features, real_features = [], [], [], [], []
    n = 0
    for a, b in ds:
        fake = translator.inference.translate_batch(a)
        fake01 = tf.cast(kimages.to_uint8(fake), tf.float32) / 255.0
        real01 = tf.cast(kimages.to_uint8(b), tf.float32) / 255.0
        l1.append(tf.reduce_mean(tf.abs(fake01 - real01), axis=[1, 2, 3]).numpy())
        psnr.append(tf.image.psnr(fake01, real01, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(fake01, real01, max_val=1.0).numpy())
        if features is not None:
            fake_features.append(features(_quantized(fake)))
            real_features.append(features(b))
        n += int(a.shape[0])
        if limit and n >= limit:
            break
    cat = lambda xs: np.concatenate(xs)[:limit] if limit else np.concatenate(xs)  # noqa: E731
    l1, psnr, ssim = cat(l1), cat(psnr), cat(ssim)
    scores = {"n": int(l1.size), "l1": float(l1.mean()), "psnr": float(np.mean(psnr)),
              "ssim": float(ssim.mean()), "data": recipe.data.path or recipe.data.source,
              "split": used}
    if features is not None:
        scores.update(_distribution_scores(cat(fake_features), cat(real_features)),
                      inception_weights=_weights_name(inception_weights))
    return scores


def evaluate_unpaired(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None,
                      *, split: str | None = None, direction: str = "a2b",
                      limit: int | None = None, batch_size: int = 8,
                      inception_weights: str | os.PathLike | None = "imagenet") -> dict:
    """Scores a two-domain run (CycleGAN) by FID and KID of its translations.

    For ``"a2b"``, every held-back image of domain A (``<split>A``, e.g. ``testA``) is
    translated by the run's a2b translator, and the set of translations is compared with
    the set of real images of domain B (``<split>B``); ``"b2a"`` swaps the domains. The
    images are read the way the run's recipe reads them (``data.source``, ``data.path``
    or ``data_path``), each domain once, resized to ``data.image_size`` without crop or
    flip. Translations are rounded to uint8, as saved images are, and both sets are
    embedded by InceptionV3's 2048-d pool features (resized to 299x299, see
    :func:`kstyle.nets.inception.inception_features`), then compared by:

    - ``fid``: ``|mu_t - mu_r|^2 + tr(S_t + S_r - 2 (S_t S_r)^(1/2))``, the Fréchet
      distance of Gaussians fitted to the two sets (:func:`kstyle.metrics.fid`);
    - ``kid`` and ``kid_std``: mean and spread of the unbiased MMD^2 with kernel
      ``(x.y / 2048 + 1)^3`` over 100 random subsets of up to 1000 images of each set
      (:func:`kstyle.metrics.kid`).

    Lower is better for both. Both depend on the numbers of images (FID is biased
    upwards for small sets, KID is not but is noisy), so compare scores of the same
    ``n_translated`` and ``n_real``, which are reported with them.

    Args:
        run_dir: a run folder written by ``kstyle fit`` for an unpaired model kind.
        data_path: the folder holding ``<split>A`` and ``<split>B`` (or a tfds name), read
            as the recipe reads ``data.path`` (default: the recipe's).
        split: split name (default: the recipe's ``data.val_split``; when it has no
            images, ``data.train_split``).
        direction: ``"a2b"`` or ``"b2a"``.
        limit: use at most this many images of each domain.
        batch_size: images per batch.
        inception_weights: ``"imagenet"`` (Keras' cache, or ``KSTYLE_INCEPTION_WEIGHTS``),
            a weights file, or ``"random"``/None, whose scores only smoke-test the code.

    Returns:
        ``{"n_translated", "n_real", "fid", "kid", "kid_std", "direction", "data",
        "split", "inception_weights"}``.

    Raises:
        kstyle.errors.DataError: no images, or fewer than 2 in a domain.
        kstyle.errors.ModelLoadError: the run, its translator for ``direction`` or the
            InceptionV3 weights cannot be loaded.

    Example:
        >>> scores = evaluate_unpaired("saved_models/cyclegan", split="test")  # doctest: +SKIP
        >>> scores["fid"], scores["n_translated"], scores["n_real"]  # doctest: +SKIP

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
        Nash Equilibrium", NeurIPS 2017, https://arxiv.org/abs/1706.08500; Bińkowski et
        al., "Demystifying MMD GANs", ICLR 2018, https://arxiv.org/abs/1801.01401.
    """
    if direction not in ("a2b", "b2a"):
        raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
    run_dir = Path(run_dir)
    recipe = _load_run_recipe(run_dir, data_path)
    translator = load(run_dir, direction)
    ds, used = eval_dataset(recipe, split=split, batch_size=batch_size)
    d = recipe.data
    counts = kdata.unpaired_count(d.source, d.path, split=used,
                                  synthetic_count=d.synthetic_count,
                                  data_dir=d.data_dir or None)
    n_source, n_target = counts if direction == "a2b" else counts[::-1]
    if limit:
        n_source, n_target = min(n_source, limit), min(n_target, limit)
    features = _feature_extractor(inception_weights)
    # One pass yields max(n_a, n_b) pairs, the shorter domain cycling in a fixed order
    # (no shuffle): the first n images of each column are that domain's, each once.
    fake_features, real_features = [], []
    got_source = got_target = 0
    for a, b in ds:
        source, target = (a, b) if direction == "a2b" else (b, a)
        if got_source < n_source:
            fake = translator.inference.translate_batch(source[: n_source - got_source])
            fake_features.append(features(_quantized(fake)))
            got_source += int(fake.shape[0])
        if got_target < n_target:
            target = target[: n_target - got_target]
            real_features.append(features(target))
            got_target += int(target.shape[0])
        if got_source >= n_source and got_target >= n_target:
            break
    fake_features = np.concatenate(fake_features)
    real_features = np.concatenate(real_features)
    scores = _distribution_scores(fake_features, real_features)
    return {"n_translated": len(fake_features), "n_real": len(real_features), **scores,
            "direction": direction, "data": d.path or d.source, "split": used,
            "inception_weights": _weights_name(inception_weights)}


def evaluate_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
                 split: str | None = None, direction: str | None = None,
                 limit: int | None = None, batch_size: int | None = None, fid: bool = False,
                 inception_weights: str | os.PathLike | None = "imagenet") -> dict:
    """Scores a run the way its model kind allows: :func:`evaluate` or :func:`evaluate_unpaired`.

    The kind comes from the run's recipe (``model.kind``), and what it can be scored
    against from its data kind (``kstyle.data.kinds``): runs trained on pairs get L1,
    PSNR and SSIM against their targets (and FID/KID of outputs against targets with
    ``fid``); runs trained on two unpaired domains get FID and KID of translations
    against real target-domain images, always.

    Args:
        run_dir: a run folder written by ``kstyle fit``.
        data_path: the data folder (or dataset name), read as the recipe's ``data.path``.
        split: split or sub-folder (default: the recipe's ``data.val_split``).
        direction: for unpaired runs, ``"a2b"`` (default) or ``"b2a"``; a paired run
            translates only as trained, so anything but None or ``"a2b"`` is an error.
        limit: score at most this many pairs (paired) or images per domain (unpaired).
        batch_size: images per batch (default: 4 paired, 8 unpaired).
        fid: for paired runs, also compute FID and KID.
        inception_weights: InceptionV3 weights for FID/KID (see :func:`evaluate_unpaired`).

    Returns:
        The dict of :func:`evaluate` or of :func:`evaluate_unpaired`, with ``"kind"``.

    Raises:
        kstyle.errors.ModelLoadError: no recipe in ``run_dir``, an unknown model kind, or
            ``direction`` given for a paired run.
        kstyle.errors.DataError: as the two functions.

    Example:
        >>> evaluate_run("saved_models/cyclegan", direction="b2a")["fid"]  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if not (run_dir / runs.RECIPE_FILE).is_file():
        raise ModelLoadError(f"{run_dir}: no {runs.RECIPE_FILE}; expected a run folder "
                             "written by 'kstyle fit'")
    from kstyle.data.kinds import get_data_kind

    options = _load_run_recipe(run_dir, data_path).model
    kind, data_kind = options.kind, get_data_kind(options.data_kind)
    if data_kind.targets == "domain":
        scores = evaluate_unpaired(run_dir, data_path, split=split,
                                   direction=direction or "a2b", limit=limit,
                                   batch_size=batch_size or 8,
                                   inception_weights=inception_weights)
    elif data_kind.targets == "pairs":
        if direction not in (None, runs.DEFAULT_DIRECTION):
            raise ModelLoadError(
                f"{run_dir}: a {kind} run translates one way only (its recipe's "
                f"data.direction); direction {direction!r} is for two-way models such as "
                "CycleGAN")
        scores = evaluate(run_dir, data_path, split=split, batch_size=batch_size or 4,
                          limit=limit, fid=fid, inception_weights=inception_weights)
    else:
        raise DataError(f"{run_dir}: a {kind} run (trained on {data_kind.doc}) has no "
                        "reference images to be scored against")
    return {"kind": kind, **scores}


def _quote(path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'
