"""Distances between two sets of image features: FID and KID (pure numpy, float64).

Both compare the distributions of embeddings (InceptionV3 pool features, see
:func:`kstyle.nets.inception.inception_features`) of two image sets, such as translated
images and real images of the target domain; neither needs the sets to be paired.
"""

from __future__ import annotations

import numpy as np


def _as_features(features, name: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be an [N, D] array with N >= 2, got shape {x.shape}")
    return x


def _psd_eigenvalues(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD matrix, rounding noise set to 0.

    Eigenvalues below ``D * eps * max|lambda|`` (the rank tolerance of
    ``numpy.linalg.matrix_rank``) cannot be told from 0, negative ones included; taking
    their square roots would turn ``1e-16``-sized noise into ``1e-8``-sized errors, which
    add up over the thousands of null directions of a covariance from few samples.
    """
    matrix = 0.5 * (matrix + matrix.T)
    values, vectors = np.linalg.eigh(matrix)
    tol = matrix.shape[0] * np.finfo(np.float64).eps * max(np.abs(values).max(), 0.0)
    return np.where(values > tol, values, 0.0), vectors


def _trace_sqrt(matrix: np.ndarray) -> float:
    """``tr(M^(1/2))`` of a symmetric PSD matrix: the sum of its eigenvalues' roots."""
    values, _ = _psd_eigenvalues(matrix)
    return float(np.sqrt(values).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between two Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``

    ``tr((S1 S2)^(1/2))`` is computed without a general matrix square root: ``S1 S2`` is
    similar to the symmetric PSD matrix ``S1^(1/2) S2 S1^(1/2)``, so it is the sum of the
    square roots of that matrix's eigenvalues (``numpy.linalg.eigh``; ``S1^(1/2)`` by
    ``eigh`` too). Eigenvalues within rounding of 0 (below ``D * eps * max|lambda|``),
    negative ones included, are taken as 0. Computed in float64.

    Args:
        mu1: mean, shape [D].
        sigma1: covariance, shape [D, D], symmetric positive semi-definite.
        mu2: mean, shape [D].
        sigma2: covariance, shape [D, D].

    Returns:
        The squared distance ``d^2`` (what "FID" reports), a float >= 0 up to rounding.

    Example:
        >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
        4.0

    Reference:
        Dowson & Landau, "The Fréchet distance between multivariate normal
        distributions", J. Multivariate Analysis 1982; Heusel et al., "GANs Trained by a
        Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017,
        https://arxiv.org/abs/1706.08500.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (
            mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma "
                         f"{sigma1.shape}, {sigma2.shape}")
    values, vectors = _psd_eigenvalues(sigma1)
    sqrt_sigma1 = (vectors * np.sqrt(values)) @ vectors.T
    tr_covmean = _trace_sqrt(sqrt_sigma1 @ sigma2 @ sqrt_sigma1)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid(features_a, features_b) -> float:
    """Fréchet Inception Distance between two sets of features.

    Fits a Gaussian to each set (mean and unbiased covariance, ``numpy.cov``) and returns
    their Fréchet distance (see :func:`frechet_distance`):

    ``FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``

    When a set has fewer samples than features (N <= D, e.g. 100 test images and 2048
    Inception features), ``tr((S_a S_b)^(1/2))`` is computed in that set's sample space:
    with ``C`` its [N, D] centred features, ``S_a = C^T C / (N - 1)``, and ``S_a S_b`` has
    the non-zero eigenvalues of the [N, N] symmetric PSD matrix ``C S_b C^T / (N - 1)``
    (``XY`` and ``YX`` share them). The result equals :func:`frechet_distance` of the
    moments, without the two [D, D] eigen-decompositions (seconds each at D = 2048).

    FID is biased by the set sizes (it falls as N grows): compare scores computed on the
    same numbers of images. Papers use 10k-50k images.

    Args:
        features_a: [N_a, D] features of one set (e.g. translated images), N_a >= 2.
        features_b: [N_b, D] features of the other (e.g. real images), N_b >= 2.

    Returns:
        FID as a float.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(100, 8))
        >>> round(fid(x, x + 1.0), 6)  # a shift c moves only the means: |c|^2
        8.0

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
        Nash Equilibrium", NeurIPS 2017, https://arxiv.org/abs/1706.08500.
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    small, other_sigma = (a, sigma_b) if len(a) <= len(b) else (b, sigma_a)
    if len(small) > a.shape[1]:
        return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    centred = small - small.mean(axis=0)
    tr_covmean = _trace_sqrt(centred @ other_sigma @ centred.T / (len(small) - 1))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * tr_covmean)


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples under k(x, y) = (x.y / D + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel.

    With ``k(x, y) = (x.y / D + 1)^3`` and two samples ``x_1..x_m``, ``y_1..y_m``:

    ``MMD^2 = sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) / (m (m-1))
    - 2 sum_{i,j} k(x_i, y_j) / m^2``

    computed on ``subsets`` pairs of random subsets of ``m = min(subset_size, N_a,
    N_b)`` features each (drawn without replacement within a subset), and averaged.
    The estimate is unbiased, so it can be slightly negative when the sets match.

    Args:
        features_a: [N_a, D] features of one set, N_a >= 2.
        features_b: [N_b, D] features of the other, N_b >= 2.
        subsets: number of subset pairs averaged.
        subset_size: features per subset (capped at min(N_a, N_b)).
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` of MMD^2 over the subsets.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 8))
        >>> mean, std = kid(x, x + 1.0, subsets=10)
        >>> mean > 0
        True

    Reference:
        Bińkowski et al., "Demystifying MMD GANs", ICLR 2018,
        https://arxiv.org/abs/1801.01401.
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, "
                         f"{subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    scores = np.array([
        _polynomial_mmd2(a[rng.choice(a.shape[0], m, replace=False)],
                         b[rng.choice(b.shape[0], m, replace=False)])
        for _ in range(subsets)])
    return float(scores.mean()), float(scores.std())
