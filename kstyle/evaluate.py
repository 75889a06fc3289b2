"""Quality of a trained translator on a paired set: L1, PSNR and SSIM."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from kstyle import api, runs
from kstyle.data import images as kimages
from kstyle.recipes import load_recipe
from kstyle.train import eval_dataset


def evaluate(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
             split: str | None = None, batch_size: int = 4, limit: int | None = None) -> dict:
    """Scores a run's translator on held-back pairs.

    Pairs are read the way the run's recipe reads them (source, direction, derivation),
    from ``data_path`` when given, resized to the training size without augmentation.
    Scores compare uint8 outputs with the targets on [0, 1] values: ``l1`` is the mean
    absolute difference, ``psnr`` in dB (``tf.image.psnr``), ``ssim`` from
    ``tf.image.ssim`` (11x11 Gaussian window), each averaged over images.

    Args:
        run_dir: a run folder written by ``kstyle fit``.
        data_path: folder of pairs (default: the recipe's ``data.path``).
        split: sub-folder or split name (default: the recipe's ``data.val_split``).
        batch_size: images per batch.
        limit: score at most this many pairs.

    Returns:
        ``{"n": ..., "l1": ..., "psnr": ..., "ssim": ..., "data": ..., "split": ...}``.
    """
    run_dir = Path(run_dir)
    recipe = load_recipe(run_dir / runs.RECIPE_FILE,
                         [f"data.path={_quote(data_path)}"] if data_path else [])
    translator = api.load(run_dir)
    ds, used = eval_dataset(recipe, split=split, batch_size=batch_size)
    l1, psnr, ssim = [], [], []
    n = 0
    for a, b in ds:
        fake = translator.model(a, training=False)
        fake01 = tf.cast(kimages.to_uint8(fake), tf.float32) / 255.0
        real01 = tf.cast(kimages.to_uint8(b), tf.float32) / 255.0
        l1.append(tf.reduce_mean(tf.abs(fake01 - real01), axis=[1, 2, 3]).numpy())
        psnr.append(tf.image.psnr(fake01, real01, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(fake01, real01, max_val=1.0).numpy())
        n += int(a.shape[0])
        if limit and n >= limit:
            break
    cat = lambda xs: np.concatenate(xs)[:limit] if limit else np.concatenate(xs)  # noqa: E731
    l1, psnr, ssim = cat(l1), cat(psnr), cat(ssim)
    return {"n": int(l1.size), "l1": float(l1.mean()), "psnr": float(np.mean(psnr)),
            "ssim": float(ssim.mean()), "data": recipe.data.path or recipe.data.source,
            "split": used}


def _quote(path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'
