"""The fixed input of the network fixtures: the same float32 numbers in every process."""

import numpy as np


def probe(height: int, width: int, channels: int = 3) -> np.ndarray:
    """A ``[1, height, width, channels]`` float32 image in [-1, 1] with detail at every
    scale (so that a padding off by one pixel shows)."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(channels),
                          indexing="ij")
    image = np.sin(0.37 * y + 0.11 * x + 1.3 * c) * np.cos(0.05 * x * y / (1 + c))
    return image[None].astype(np.float32)


#: Output corners stored by the fixtures of large outputs: top-left and bottom-right.
CORNER = 24


def corners(output: np.ndarray) -> dict[str, np.ndarray]:
    """What a fixture keeps of a ``[1, H, W, C]`` output: both corners and the mean."""
    return {"top_left": output[0, :CORNER, :CORNER], "bottom_right": output[0, -CORNER:, -CORNER:],
            "mean": output[0].mean(axis=(0, 1))}
