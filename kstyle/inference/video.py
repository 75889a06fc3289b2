"""Stylizing a video clip with any model, steady from frame to frame, the sound kept.

Frames stream from the file through the model to the output, one at a time (memory does
not grow with the clip). With ``temporal`` on (the default), two things keep the result
from flickering:

- the model's statistics are held steady over the frames (``Inference.clip``: instance-
  norm statistics, AdaIN's content statistics, as a running mean; the style is one code
  for the whole clip);
- the previous stylized frame is carried along the motion: the optical flow between the
  input frames (OpenCV's DIS: no weights to download) warps it onto the new frame, and it
  is blended in, by ``carry``, where the flow is reliable (forward and backward flows
  agree; elsewhere, at occlusions and at the frame's edges, the new frame alone).

A scene cut (the frame's small gray copy far from the last one's) restarts both: nothing
is carried across it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from kstyle.data import video as kvideo

#: The mean absolute difference (0..255) of two frames' 64 px gray copies above which the
#: second starts a new scene.
CUT_THRESHOLD = 40.0


def small_gray(frame: np.ndarray, side: int = 64) -> np.ndarray:
    """A frame as a ``side`` px wide grayscale float copy (for cut detection)."""
    import cv2

    h, w = frame.shape[:2]
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (side, max(1, round(h * side / w))),
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def is_cut(previous: np.ndarray | None, current: np.ndarray) -> bool:
    """Whether ``current`` (a :func:`small_gray` copy) starts a new scene after
    ``previous``."""
    return previous is None or float(np.mean(np.abs(current - previous))) > CUT_THRESHOLD


class Flow:
    """Dense optical flow between consecutive frames, and warping along it."""

    def __init__(self):
        import cv2

        self.cv2 = cv2
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow from frame ``a`` to frame ``b`` (uint8 RGB), ``HxWx2``: pixel ``x`` of
        ``a`` is at ``x + flow[x]`` in ``b``."""
        gray = [self.cv2.cvtColor(f, self.cv2.COLOR_RGB2GRAY) for f in (a, b)]
        return self.dis.calc(gray[0], gray[1], None)

    def warp(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``image`` sampled at ``x + flow[x]`` (bilinear; outside the frame: the edge)."""
        h, w = flow.shape[:2]
        grid = np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0).astype(np.float32)
        return self.cv2.remap(image, grid + flow, None, self.cv2.INTER_LINEAR,
                              borderMode=self.cv2.BORDER_REPLICATE)

    def backward_and_mask(self, previous: np.ndarray, current: np.ndarray):
        """``(flow, mask)``: the flow from ``current`` back to ``previous`` (to warp the
        previous frame onto the current), and where it is reliable (1.0): the forward
        flow, followed from where the backward one lands, comes back (Sundaram et al.,
        ECCV 2010; as Ruder et al. and Lai et al. use it), and the point it lands on is
        inside the frame."""
        backward = self.flow(current, previous)
        forward = self.flow(previous, current)
        there = self.warp(forward, backward)  # the forward flow at x + backward[x]
        total = backward + there
        magnitude = np.sum(backward**2, -1) + np.sum(there**2, -1)
        consistent = np.sum(total**2, -1) <= 0.01 * magnitude + 0.5
        h, w = backward.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        inside = ((xs + backward[..., 0] >= 0) & (xs + backward[..., 0] <= w - 1)
                  & (ys + backward[..., 1] >= 0) & (ys + backward[..., 1] <= h - 1))
        return backward, (consistent & inside).astype(np.float32)

    def carried(self, previous: np.ndarray, current: np.ndarray, result: np.ndarray):
        """``(warped, mask)``: ``result`` (of ``previous``) moved onto ``current`` along
        the flow, float32, and where that flow is reliable (see
        :meth:`backward_and_mask`)."""
        backward, mask = self.backward_and_mask(previous, current)
        return self.warp(result, backward).astype(np.float32), mask


def steady_frames(run, frames, *, temporal: bool = True, carry: float = 0.5, window=8):
    """The stylized frames of a clip's ``frames``.

    Args:
        run: the model's clip function (``Inference.clip``: ``run(frame, new_scene)``),
            or any ``frame -> frame`` with ``temporal`` off.
        frames: uint8 RGB frames.
        temporal: hold statistics steady and carry the previous result along the motion.
        carry: the weight of the previous stylized frame, warped, where the flow is
            reliable (0: statistics only).
    """
    flow = Flow() if temporal and carry > 0 else None
    previous = previous_out = previous_small = None
    for frame in frames:
        if not temporal:
            yield run(frame)
            continue
        small = small_gray(frame)
        cut = is_cut(previous_small, small)
        out = run(frame, new_scene=cut)
        if flow is not None and not cut:
            warped, mask = flow.carried(previous, frame, previous_out)
            weight = (carry * mask)[..., None]
            out = np.clip(np.round((1 - weight) * out + weight * warped), 0,
                          255).astype(np.uint8)
        previous, previous_out, previous_small = frame, out, small
        yield out


class Progress:
    """Frames done of the total, frames per second and time left, on stderr: one line
    redrawn at most four times a second on a terminal, a line per quarter otherwise."""

    def __init__(self, total: int, name: str, enabled: bool = True):
        self.total, self.name, self.enabled = total, name, enabled
        self.done, self.start, self.shown = 0, time.monotonic(), 0.0
        self.tty = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        last = self.done == self.total
        if self.tty and not last and now - self.shown < 0.25:
            return
        quarter = self.total and self.done * 4 // self.total != (self.done - 1) * 4 // self.total
        if not self.tty and not (last or quarter):
            return
        self.shown = now
        fps = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / fps if self.total else 0
        line = (f"{self.name}: frame {self.done}/{self.total or '?'}, {fps:.1f} fps, "
                f"{int(left) // 60}:{int(left) % 60:02d} left")
        sys.stderr.write(("\r" + line + ("\n" if last else "")) if self.tty else line + "\n")
        sys.stderr.flush()


def stylize_video(stylizer, source, dest, *, temporal: bool = True, carry: float = 0.5,
                  window: int = 8, progress: bool = True, log=print, **inputs) -> Path:
    """Stylizes a video file with ``stylizer`` (a :class:`kstyle.Stylizer`) into ``dest``.

    The output keeps the frame count, frame rate, picture (odd sides padded by one
    pixel for the encoder) and the audio track (copied as it is where the container
    takes it). Written under a temporary name: a killed run leaves no finished-looking
    file.

    Args:
        temporal: hold the model's statistics steady and carry each result along the
            motion (see the module's docstring); off: each frame alone.
        carry: how much of the previous result, warped, goes into each frame (0..1).
        window: about how many frames the statistics' running mean spans.
        progress: a progress line on stderr.
        **inputs: what the model takes besides the image (``style=``, ``strength=``).

    Returns:
        ``dest``.
    """
    kvideo.check_installed()
    inputs = stylizer.inference.check(inputs)
    info = kvideo.clip_info(source)
    if temporal:
        run = stylizer.inference.clip(window, **inputs)
    else:
        def run(frame):
            return stylizer.stylize_array(frame, **inputs)
    bar = Progress(info.frames, Path(source).name, progress)

    def counted(frames):
        for frame in frames:
            yield frame
            bar.step()

    frames = steady_frames(run, kvideo.read_frames(source), temporal=temporal, carry=carry,
                           window=window)
    out = kvideo.write_video(counted(frames), source, dest, log=log)
    if progress and bar.tty and bar.done != bar.total:
        sys.stderr.write("\n")  # the frame count was an estimate
    return out


def flicker(original, stylized) -> dict:
    """How much a stylized clip flickers, and how far it is from its original.

    ``warping_error``: the mean over consecutive frames of the occlusion-masked mean
    squared difference between a stylized frame and the previous stylized frame warped
    by the flow of the original frames (Lai et al., "Learning Blind Video Temporal
    Consistency", ECCV 2018), pixels in [0, 1]; frames after a scene cut are left out.
    ``input_distance``: the mean absolute difference between stylized and original
    frames (0..1): a method cannot lower the first by stylizing less without raising
    the second... by much.

    Args:
        original, stylized: video files of one clip (the stylized one may be padded by a
            pixel: it is cropped to the original's size).

    Returns:
        ``{"warping_error", "input_distance", "frames", "pairs"}``.
    """
    kvideo.check_installed()
    flow = Flow()
    errors, distances = [], []
    previous = previous_out = previous_small = None
    frames = 0
    for frame, out in zip(kvideo.read_frames(original), kvideo.read_frames(stylized),
                          strict=False):
        frames += 1
        out = out[:frame.shape[0], :frame.shape[1]]
        distances.append(float(np.mean(np.abs(out.astype(np.float32) - frame)) / 255.0))
        small = small_gray(frame)
        if not is_cut(previous_small, small):
            warped, mask = flow.carried(previous, frame, previous_out)
            squared = np.sum(((out.astype(np.float32) - warped) / 255.0) ** 2, axis=-1)
            if mask.sum() > 0:
                errors.append(float((squared * mask).sum() / mask.sum()))
        previous, previous_out, previous_small = frame, out, small
    return {"warping_error": float(np.mean(errors)) if errors else 0.0,
            "input_distance": float(np.mean(distances)) if distances else 0.0,
            "frames": frames, "pairs": len(errors)}
