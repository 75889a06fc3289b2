"""Quality parity with the PyTorch reference: both trained side by side, scored alike.

Trains junyanz/pytorch-CycleGAN-and-pix2pix (run as its own ``train.py`` / ``test.py``, in
its own Python environment) and kstyle on the same data, with the same settings and number
of steps, for several seeds each; then one scorer (scikit-image PSNR and SSIM, mean |diff|
on [-1, 1]) scores every translation of held-back images that neither side trained on, and
prints one table with each seed, the means and spreads, and the training time per step.
A side-by-side grid of held-back images goes to ``OUT/<task>_grid.png``.

    python bench/parity.py --reference ../pytorch-CycleGAN-and-pix2pix \\
        --torch-python ../torchenv/bin/python --seeds 0 1 2
    python bench/parity.py --task cyclegan --reference ... --torch-python ... --seeds 0
    python bench/parity.py --only kstyle --seeds 0 --tag nodrop_ --set model.dropout=0.0

Tasks:
    pix2pix   photo -> outline on ../shared/data/paired_person_outline (train/ 86 pairs,
              val/ 40 held back), 256 px, the paper's settings: U-Net 256 with dropout,
              70x70 PatchGAN, batch norm, vanilla GAN, lambda_L1 100, Adam 2e-4 / 0.5,
              batch 1, 286 -> 256 crops and flips; 5 epochs.
    cdae      gray -> colour photos (../shared/data/horse2zebra, train 390, test 98), 128 px,
              batch 1: kstyle's CDAE (recipes/colorize.toml) against the reference's
              colorization model (its pix2pix from Lab's L to a, b); 3 epochs.
    cyclegan  a known answer: horses -> the same horses through a fixed colour and tone
              mapping (`tone_map`), trained unpaired on two disjoint halves of
              ../shared/data/horse2zebra/trainA, scored on testA; 128 px, 6-block ResNets,
              LSGAN, cycle 10, identity 0.5, 50-image pools; 10 epochs of 100 steps.
    cut       the same known answer with CUT (recipes/cut.toml's settings at 128 px and 6
    fastcut   blocks) against taesungp/contrastive-unpaired-translation's CUT and FastCUT
              (--reference is then that checkout); 10 epochs of 100 steps.

The learning rate is constant on both sides (the reference's ``--lr_policy step`` with a
step beyond the run: its ``linear`` policy with ``--n_epochs_decay 0`` trains its last
epoch at lr 0). The reference's checkout is the upstream commit e19f22f (bench/README.md
says where to get it and its environment). Each training run is a subprocess of its own,
one after the other; a run whose outputs are already in OUT is reused unless ``--fresh``
is given, so an interrupted benchmark goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "paired_person_outline"
LAUNCHER = Path(__file__).resolve().parent / "reference_launcher.py"


# --------------------------------------------------------------------------- tasks


def _images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                  key=lambda p: (len(p.stem), p.stem))


def _rgb(path: Path, size: int | None = None) -> np.ndarray:
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if size and image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return np.asarray(image)


def tone_map(image: np.ndarray) -> np.ndarray:
    """The known answer of the unpaired task: a fixed, invertible colour and tone mapping.

    Channels rotate (R, G, B) -> (B, R, G) and every value goes through gamma 0.6; its
    inverse is gamma 1 / 0.6 and the opposite rotation.
    """
    x = (image.astype(np.float64) / 255.0) ** 0.6
    return np.clip(np.round(x[..., [2, 0, 1]] * 255.0), 0, 255).astype(np.uint8)


class _Task:
    #: Arguments of bench/reference_launcher.py that fix the reference's environment for
    #: this task (dropped by ``--reference-as-is``).
    launcher_args: tuple[str, ...] = ()

    @staticmethod
    def naive_answer(image):
        """The answer of a model that learned nothing: its input."""
        return image


class Pix2PixTask(_Task):
    """pix2pix on an AB folder: ``train/`` to learn from, ``val/`` held back."""

    name = "pix2pix"
    recipe = REPO / "recipes" / "pix2pix.toml"
    reference_model = ["--model", "pix2pix", "--direction", "AtoB"]
    output_suffix = "_fake_B.png"

    def __init__(self, args):
        self.data = args.data.resolve()
        self.val_split = args.val_split
        for split in ("train", self.val_split):
            if not (self.data / split).is_dir():
                raise SystemExit(f"{self.data} needs train/ and {self.val_split}/ folders of "
                                 "AB images (A left, B right)")
        self.steps_per_epoch = len(_images(self.data / "train"))

    def held_back(self, limit=None):
        """(name, input, target) uint8 triples of the held-back split."""
        pairs = []
        for path in _images(self.data / self.val_split)[:limit]:
            ab = _rgb(path)
            half = ab.shape[1] // 2
            pairs.append((path.stem, ab[:, :half], ab[:, half:2 * half]))
        return pairs

    def reference_train_args(self):
        return ["--dataroot", str(self.data), *self.reference_model]

    def reference_test_args(self):
        return ["--dataroot", str(self.data), *self.reference_model, "--phase", self.val_split,
                "--load_size", "256", "--crop_size", "256"]

    def kstyle_overrides(self):
        return [f'data.path="{self.data}"', "data.direction=a2b",
                f'data.val_split="{self.val_split}"']

    def describe(self):
        return (f"{self.data.name}, {self.steps_per_epoch} training pairs (A -> B), "
                f"held back: {self.val_split}/")


class CycleGANTask(_Task):
    """CycleGAN on a task with a known answer, at a size a CPU can afford.

    Domain A: half of the horse photos of ``--data`` (horse2zebra ``trainA``); domain B:
    the other half, through `tone_map`. Trained unpaired, so no B image is the answer to
    any A image; the held-back horses (``testA``) are translated and scored against their
    own tone-mapped versions. Images are brought to ``--size`` px (bicubic) once, then both
    sides load them at ``size * 286 / 256`` and crop ``size``, as the reference does at 256.
    """

    name = "cyclegan"
    recipe = REPO / "recipes" / "cyclegan.toml"
    output_suffix = "_fake_B.png"

    def __init__(self, args):
        source = args.data.resolve()
        if not (source / "trainA").is_dir() or not (source / "testA").is_dir():
            raise SystemExit(f"{source} needs trainA/ and testA/ (the horse2zebra layout)")
        self.size = args.size
        self.load = round(args.size * 286 / 256)
        self.blocks = 6 if args.size < 256 else 9
        self.data = (args.out / f"tone_map_{args.size}").resolve()
        train = _images(source / "trainA")
        test = _images(source / "testA")
        half = len(train) // 2
        layout = {"trainA": (train[:half], False), "trainB": (train[half:], True),
                  "testA": (test, False), "testB": (test, True)}
        for folder, (files, mapped) in layout.items():
            target = self.data / folder
            if target.is_dir() and len(list(target.iterdir())) == len(files):
                continue
            target.mkdir(parents=True, exist_ok=True)
            from PIL import Image

            for path in files:
                image = _rgb(path, self.size)
                Image.fromarray(tone_map(image) if mapped else image).save(
                    target / f"{path.stem}.png")
        self.steps_per_epoch = half

    def held_back(self, limit=None):
        return [(p.stem, _rgb(p), _rgb(self.data / "testB" / p.name))
                for p in _images(self.data / "testA")[:limit]]

    def _net(self):
        return ["--model", "cycle_gan", "--netG", f"resnet_{self.blocks}blocks"]

    def reference_train_args(self):
        return ["--dataroot", str(self.data), *self._net(), "--load_size", str(self.load),
                "--crop_size", str(self.size)]

    def reference_test_args(self):
        return ["--dataroot", str(self.data), *self._net(), "--phase", "test",
                "--load_size", str(self.size), "--crop_size", str(self.size)]

    def kstyle_overrides(self):
        return ["data.source=folders", f'data.path="{self.data}"', "data.train_split=train",
                "data.val_split=test", f"data.image_size={self.size}",
                f"data.load_size={self.load}", f"model.num_blocks={self.blocks}"]

    def describe(self):
        return (f"horses -> tone-mapped horses (known answer), {self.size} px, "
                f"{self.blocks}-block ResNets, {self.steps_per_epoch} images per domain, "
                "held back: testA")


class CUTTask(CycleGANTask):
    """CUT on CycleGAN's known-answer task (same data, size and generator).

    The reference is taesungp/contrastive-unpaired-translation, run with strided
    convolutions and transposed convolutions (``--no_antialias --no_antialias_up``: the
    ResNet kstyle's CUT shares with CycleGAN, where the reference's default blurs before
    and after resampling), and PatchNCE on the same five layers: at indices 0, 4, 7, 10
    and 14 of that generator (the padded input, the two downsampling convolutions, the
    first and the fifth residual block; its own default, 0,4,8,12,16, names them in the
    blurred generator). Its results are ``images/fake_B/<name>.png``.

    The reference runs with ``--contiguous-norm-grads`` (bench/reference_launcher.py): its
    PatchNCE gradients reach the instance norms with channels-last strides, for which
    PyTorch's CPU instance-norm backward is wrong. ``--reference-as-is`` runs it without.
    """

    launcher_args = ("--contiguous-norm-grads",)
    name = "cut"
    mode = "CUT"
    recipe = REPO / "recipes" / "cut.toml"
    output_suffix = ".png"
    reference_repo = "taesungp/contrastive-unpaired-translation"

    def _net(self):
        return ["--model", "cut", "--CUT_mode", self.mode, "--netG",
                f"resnet_{self.blocks}blocks", "--no_antialias", "--no_antialias_up",
                "--nce_layers", "0,4,7,10,14"]

    def reference_images(self, images: Path) -> Path:
        return images / "fake_B"

    def after_reference_train(self, args, checkpoints: Path) -> None:
        """Its train.py wraps the networks in ``DataParallel`` even on a CPU and saves
        their weights as ``module.<key>``, which its test.py (unwrapped) cannot load: the
        saved files get their keys without that prefix (the weights unchanged)."""
        script = ("import sys, torch\n"
                  "for path in sys.argv[1:]:\n"
                  "    state = torch.load(path, map_location='cpu')\n"
                  "    torch.save({k.removeprefix('module.'): v for k, v in state.items()}, path)")
        subprocess.run([args.torch_python, "-c", script,
                        *map(str, sorted(checkpoints.glob("*_net_*.pth")))], check=True)

    def describe(self):
        return super().describe().replace("ResNets", "ResNet generator")


class FastCUTTask(CUTTask):
    """FastCUT on the same task: the reference's ``--CUT_mode FastCUT``."""

    name = "fastcut"
    mode = "FastCUT"
    recipe = REPO / "recipes" / "fastcut.toml"


def _in_colour(path: Path) -> bool:
    """Whether a photo's channels differ anywhere by more than 2 levels."""
    image = _rgb(path).astype(np.int16)
    return bool(np.abs(image - image[..., :1]).max() > 2)


class CDAETask(_Task):
    """Colorization: kstyle's CDAE against the reference's ``--model colorization``.

    The nearest published baseline of the cross-domain autoencoder GAN: the reference's
    colorization model is its pix2pix (U-Net, PatchGAN, batch norm, vanilla GAN, L1) from
    the L channel of Lab to its a and b channels, so it keeps the input's lightness
    exactly; kstyle's CDAE runs ``recipes/colorize.toml`` (two U-Nets, instance norm,
    LSGAN + target + reconstruction losses, its own Adam settings) from a gray image to
    RGB. Both learn from the colour photos of ``--data`` (horse2zebra ``trainA`` +
    ``trainB``; black-and-white ones are left out on both sides), at
    ``--size`` px (``size * 286 / 256`` loads, random crops and flips), batch 1; the
    held-back ``testA`` + ``testB`` photos, brought to ``--size`` px, are the answers.
    """

    name = "cdae"
    recipe = REPO / "recipes" / "colorize.toml"
    output_suffix = "_fake_B_rgb.png"

    @staticmethod
    def naive_answer(image):
        """The gray image the models see (the input is the photo; both make it gray)."""
        gray = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.repeat(np.round(gray)[..., None], 3, axis=-1).astype(np.uint8)

    def __init__(self, args):
        source = args.data.resolve()
        self.size = args.size
        self.load = round(args.size * 286 / 256)
        self.data = (args.out / "colorize").resolve()
        layout = {"train": ("trainA", "trainB"), "test": ("testA", "testB")}
        for split, folders in layout.items():
            # Photos without colour (the black-and-white zebra photos) have nothing to
            # learn and would score an infinite PSNR as their own gray version.
            files = [p for folder in folders for p in _images(source / folder)
                     if _in_colour(p)]
            if not files:
                raise SystemExit(f"{source} needs {' and '.join(folders)}/ photos")
            target = self.data / split
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                link = target / path.name
                if not link.exists():
                    link.symlink_to(path)
        self.steps_per_epoch = len(_images(self.data / "train"))
        self.unet = f"unet_{self.size}"

    def held_back(self, limit=None):
        return [(p.stem, _rgb(p, self.size), _rgb(p, self.size))
                for p in _images(self.data / "test")[:limit]]

    def reference_train_args(self):
        return ["--dataroot", str(self.data), "--model", "colorization", "--netG", self.unet,
                "--load_size", str(self.load), "--crop_size", str(self.size)]

    def reference_test_args(self):
        return ["--dataroot", str(self.data), "--model", "colorization", "--netG", self.unet,
                "--phase", "test", "--load_size", str(self.size), "--crop_size", str(self.size)]

    def kstyle_overrides(self):
        return ["data.source=photos", f'data.path="{self.data}"', "data.train_split=train",
                "data.val_split=test", "data.derive=gray", "data.direction=a2b",
                f"data.image_size={self.size}", f"data.load_size={self.load}",
                "data.batch_size=1", f"model.num_downs={self.size.bit_length() - 1}",
                f"train.steps_per_epoch={self.steps_per_epoch}"]

    def describe(self):
        return (f"gray -> colour photos at {self.size} px, {self.steps_per_epoch} training "
                "photos (horse2zebra train), held back: the test photos")


TASKS = {task.name: task for task in (Pix2PixTask, CycleGANTask, CDAETask, CUTTask,
                                        FastCUTTask)}


def score(outputs: dict, pairs) -> dict:
    """Mean L1 on [-1, 1], PSNR (dB) and SSIM of ``outputs[name]`` against each target."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    l1, psnr, ssim = [], [], []
    for name, _, target in pairs:
        out = outputs[name]
        if out.shape != target.shape:
            raise SystemExit(f"{name}: output {out.shape} but target {target.shape}")
        l1.append(np.mean(np.abs(out.astype(np.float64) - target)) / 127.5)
        psnr.append(peak_signal_noise_ratio(target, out, data_range=255))
        ssim.append(structural_similarity(target, out, channel_axis=2, data_range=255))
    return {"l1": float(np.mean(l1)), "psnr": float(np.mean(psnr)),
            "ssim": float(np.mean(ssim)), "images": len(pairs)}


def read_png_folder(folder: Path, suffix: str) -> dict:
    return {p.name[: -len(suffix)]: _rgb(p) for p in folder.glob(f"*{suffix}")}


# --------------------------------------------------------------------------- the reference


def _run_logged(command: list[str], log: Path, what: str) -> None:
    """Runs ``command`` with its output in ``log``; on failure, exits naming the log."""
    try:
        with open(log, "w") as f:
            subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        tail = log.read_text().splitlines()[-5:] if log.is_file() else []
        raise SystemExit(f"{what} failed ({error}); its output is in {log}:\n"
                         + "\n".join(tail)) from None


DEFAULT_EPOCHS = {"pix2pix": 5, "cyclegan": 10, "cdae": 3, "cut": 10, "fastcut": 10}


def run_name(args, task, seed: int, tag: str = "") -> str:
    """A run's folder name: the task, a tag, the epochs when not the task's default, the seed.

    Runs of other lengths get folders of their own, so that a finished run is only reused
    for the schedule it was trained with."""
    epochs = "" if args.epochs == DEFAULT_EPOCHS[task.name] else f"{args.epochs}ep_"
    return f"{task.name}_{tag}{epochs}seed{seed}"


def reference_run_name(args, task, seed: int) -> str:
    """The reference run's folder name; runs without the task's launcher fixes
    (``--reference-as-is``) are kept apart, as ``<task>_asis_...``."""
    return run_name(args, task, seed, "asis_" if args.reference_as_is and task.launcher_args
                    else "")


def launcher_args(args, task, seed: int) -> list[str]:
    """The reference launcher's own arguments (before the reference's script)."""
    fixes = [] if args.reference_as_is else list(task.launcher_args)
    return [args.torch_python, str(LAUNCHER), "--seed", str(seed), *fixes]


def reference_train(args, task, seed: int) -> dict:
    """Trains the reference in its own environment; returns its timing."""
    name = reference_run_name(args, task, seed)
    folder = args.out / "reference"
    done = folder / name / "timing.json"
    if done.is_file() and not args.fresh:
        return json.loads(done.read_text())
    command = [
        *launcher_args(args, task, seed), str(Path(args.reference) / "train.py"),
        *task.reference_train_args(),
        "--name", name, "--gpu_ids", "-1", "--display_id", "0", "--no_html",
        "--checkpoints_dir", str(folder),
        "--n_epochs", str(args.epochs), "--n_epochs_decay", "0",
        "--lr_policy", "step", "--lr_decay_iters", "1000000",
        "--save_epoch_freq", str(args.epochs), *args.ref_arg,
    ]
    log = folder / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"reference, seed {seed}: training ({log})", flush=True)
    start = time.time()
    _run_logged(command, log, f"the reference's train.py (seed {seed})")
    seconds = time.time() - start
    if hasattr(task, "after_reference_train"):
        task.after_reference_train(args, folder / name)
    lines = log.read_text().splitlines()
    epochs = [float(line.split("Time Taken:")[1].split()[0])
              for line in lines if "Time Taken:" in line]
    losses = [line for line in lines if line.startswith("(epoch:")]
    timing = {"seconds": seconds, "epoch_seconds": epochs, "last_losses": losses[-3:]}
    done.write_text(json.dumps(timing, indent=1))
    return timing


def reference_outputs(args, task, seed: int, eval_mode: bool) -> dict:
    """The reference's translations of the held-back inputs (its test.py)."""
    name = reference_run_name(args, task, seed)
    folder = args.out / "reference"
    results = folder / ("results_eval" if eval_mode else "results_train")
    phase = task.val_split if task.name == "pix2pix" else "test"
    images = results / name / f"{phase}_latest" / "images"
    if not images.is_dir() or args.fresh:
        command = [
            *launcher_args(args, task, seed), str(Path(args.reference) / "test.py"),
            *task.reference_test_args(),
            "--name", name, "--gpu_ids", "-1", "--checkpoints_dir", str(folder),
            "--results_dir", str(results), "--num_test", "100000",
            *(["--eval"] if eval_mode else []),
        ]
        _run_logged(command, folder / f"{name}_test.log",
                    f"the reference's test.py (seed {seed})")
    return read_png_folder(getattr(task, "reference_images", lambda f: f)(images),
                           task.output_suffix)


# --------------------------------------------------------------------------- kstyle


class _Timer:
    """A Keras callback recording each epoch's and each batch's wall time."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.epochs, self.batches = [], []

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.epochs.append(time.perf_counter() - self._epoch)

            def on_train_batch_begin(self, batch, logs=None):
                self._batch = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.batches.append(time.perf_counter() - self._batch)

        return Timer()


def kstyle_train_worker(recipe: str, overrides: list[str], timing_file: Path) -> None:
    """Runs in its own process: trains kstyle, writes its timing."""
    from kstyle.train import fit

    timer = _Timer()
    start = time.time()
    fit(recipe, overrides, callbacks=[timer], verbose=0)
    timing_file.write_text(json.dumps({"seconds": time.time() - start,
                                       "epoch_seconds": timer.epochs,
                                       "batch_seconds": timer.batches}))


def kstyle_train(args, task, seed: int) -> tuple[Path, dict]:
    run_dir = args.out / "kstyle" / run_name(args, task, seed, args.tag)
    done = run_dir / "timing.json"
    if done.is_file() and not args.fresh:
        return run_dir, json.loads(done.read_text())
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"kstyle, seed {seed}: training ({run_dir})", flush=True)
    overrides = [*task.kstyle_overrides(), f"data.seed={seed}", f"train.seed={seed}",
                 f"train.epochs={args.epochs}", "train.lr_policy=constant",
                 f'train.out_dir="{run_dir}"', *args.overrides]
    payload = json.dumps({"recipe": str(args.recipe or task.recipe), "overrides": overrides,
                          "timing": str(done)})
    subprocess.run([sys.executable, __file__, "--worker", payload], check=True)
    return run_dir, json.loads(done.read_text())


def kstyle_outputs(run_dir: Path, pairs, training: bool = False) -> dict:
    """kstyle's translations of the held-back pairs: the saved translator, uint8 in/out."""
    import kstyle

    translator = kstyle.load(run_dir)
    if not training:
        return {name: translator(a) for name, a, _ in pairs}
    import tensorflow as tf

    outputs = {}
    for name, a, _ in pairs:
        x = tf.convert_to_tensor(a[None], tf.float32) / 127.5 - 1.0
        y = translator.model(x, training=True)[0].numpy()
        outputs[name] = np.clip(np.round((y + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return outputs


# --------------------------------------------------------------------------- report


def ms_per_step(timing: dict, steps_per_epoch: int) -> float:
    """Median epoch time past the first (start-up, tracing), per step, in ms."""
    epochs = timing["epoch_seconds"][1:] or timing["epoch_seconds"]
    return 1000.0 * statistics.median(epochs) / steps_per_epoch


def spread(values):
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd


def write_grid(path: Path, pairs, columns: dict, naive, rows: int = 4) -> None:
    """One row per held-back pair: input, each system's output, target."""
    from PIL import Image, ImageDraw

    names = [name for name, _, _ in pairs][:rows]
    by_name = {name: (a, b) for name, a, b in pairs}
    heads = ["input", *columns, "target"]
    size = 256
    grid = Image.new("RGB", (size * len(heads), 20 + size * len(names)), "white")
    draw = ImageDraw.Draw(grid)
    for c, head in enumerate(heads):
        draw.text((c * size + 4, 4), head, fill="black")
    for r, name in enumerate(names):
        a, b = by_name[name]
        images = [naive(a), *(outputs[name] for outputs in columns.values()), b]
        for c, image in enumerate(images):
            tile = Image.fromarray(image).resize((size, size))
            grid.paste(tile, (c * size, 20 + r * size))
    grid.save(path)


def cpu_name() -> str:
    """The CPU's name, family/model and the vector features that decide TF's speed."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        import platform

        return platform.processor() or "unknown CPU"
    field = dict(re.findall(r"^(model name|cpu family|model|flags)\s*:\s*(.*)$", text, re.M))
    flags = set(field.get("flags", "").split())
    features = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"{field.get('model name', '?')}, family {field.get('cpu family', '?')} model "
            f"{field.get('model', '?')}, {' '.join(features) or 'no AVX2'}, {os.cpu_count()} cores")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="pix2pix")
    parser.add_argument("--reference", help="checkout of junyanz/pytorch-CycleGAN-and-pix2pix "
                        "(--task cut, fastcut: of taesungp/contrastive-unpaired-translation)")
    parser.add_argument("--torch-python", default=os.environ.get("KSTYLE_TORCH_PYTHON", "python3"),
                        help="the Python of the reference's environment "
                             "(default $KSTYLE_TORCH_PYTHON or python3)")
    parser.add_argument("--data", type=Path, default=None,
                        help="pix2pix: AB folder with train/ and the held-back split (default "
                             "../shared/data/paired_person_outline); cyclegan: a folder with "
                             "trainA/ and testA/ photos, cdae: trainA/ trainB/ testA/ testB/ "
                             "photos (default ../shared/data/horse2zebra)")
    parser.add_argument("--val-split", default="val", help="pix2pix: the held-back split")
    parser.add_argument("--size", type=int, default=128, help="cyclegan, cdae: image size")
    parser.add_argument("--recipe", default=None, help="kstyle recipe (default: the task's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of both (default: pix2pix 5, cyclegan 10, cdae 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", choices=("both", "kstyle", "reference"), default="both")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="kstyle recipe override, table.key=value (repeatable)")
    parser.add_argument("--tag", default="", help="prefix of kstyle's run folders in OUT, so "
                        "that runs with other --set overrides are kept apart")
    parser.add_argument("--reference-as-is", action="store_true",
                        help="run the reference without the launcher's fixes for the task "
                        "(CUT: PyTorch's instance-norm gradient; runs named <task>_asis_...)")
    parser.add_argument("--ref-arg", action="append", default=[],
                        help="extra argument for the reference's train.py (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="score at most N held-back pairs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "parity")
    parser.add_argument("--fresh", action="store_true", help="retrain even if outputs exist")
    parser.add_argument("--train-mode", action="store_true",
                        help="also score kstyle with its networks called with training=True")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        return kstyle_train_worker(job["recipe"], job["overrides"], Path(job["timing"]))

    if args.only != "kstyle" and not args.reference:
        parser.error("--reference is needed unless --only kstyle")
    repo = getattr(TASKS[args.task], "reference_repo",
                   "junyanz/pytorch-CycleGAN-and-pix2pix at e19f22f")
    if args.only != "kstyle" and not (Path(args.reference) / "train.py").is_file():
        parser.error(f"--reference {args.reference}: no train.py there; check out {repo} "
                     "(bench/README.md)")
    shared = REPO.parent / "shared" / "data"
    if args.data is None:
        args.data = shared / ("paired_person_outline" if args.task == "pix2pix" else "horse2zebra")
    if args.task == "cdae" and args.size not in (128, 256):
        parser.error("--task cdae needs --size 128 or 256 (the reference's unet_128, unet_256)")
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS[args.task]
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    task = TASKS[args.task](args)
    pairs = task.held_back(args.limit)
    steps = task.steps_per_epoch
    rows, grid = [], {}
    mine = f"kstyle {args.tag}".strip()

    for seed in args.seeds:
        if args.only != "kstyle":
            timing = reference_train(args, task, seed)
            unpaired = task.name in ("cyclegan", "cut", "fastcut")
            for eval_mode in (True, False) if not unpaired else (True,):
                outputs = reference_outputs(args, task, seed, eval_mode)
                mode = "--eval" if eval_mode else "train mode"
                rows.append({"system": f"reference ({mode})", "seed": seed,
                             **score(outputs, pairs), "ms_per_step": ms_per_step(timing, steps)})
                if eval_mode:
                    grid.setdefault("reference", outputs)
        if args.only != "reference":
            run_dir, timing = kstyle_train(args, task, seed)
            outputs = kstyle_outputs(run_dir, pairs)
            rows.append({"system": mine, "seed": seed, **score(outputs, pairs),
                         "ms_per_step": ms_per_step(timing, steps)})
            grid.setdefault("kstyle", outputs)
            if args.train_mode:
                rows.append({"system": f"{mine} (training=True)", "seed": seed,
                             **score(kstyle_outputs(run_dir, pairs, training=True), pairs),
                             "ms_per_step": float("nan")})
    baseline = score({name: task.naive_answer(a) for name, a, _ in pairs}, pairs)

    print(f"\n{task.name} parity: {task.describe()}; {args.epochs} epochs "
          f"({args.epochs * steps} steps) each; {len(pairs)} held-back images")
    print(f"CPU: {cpu_name()}")
    head = f"{'system':34} {'seed':>4} {'L1':>7} {'PSNR dB':>8} {'SSIM':>7} {'ms/step':>8}"
    print(head)
    print("-" * len(head))
    for row in rows:
        print(f"{row['system']:34} {row['seed']:>4} {row['l1']:7.4f} {row['psnr']:8.2f} "
              f"{row['ssim']:7.4f} {row['ms_per_step']:8.0f}")
    print("-" * len(head))
    for system in dict.fromkeys(row["system"] for row in rows):
        chosen = [row for row in rows if row["system"] == system]
        parts = []
        for key, fmt in (("l1", ".4f"), ("psnr", ".2f"), ("ssim", ".4f")):
            mean, sd = spread([row[key] for row in chosen])
            parts.append(f"{key} {mean:{fmt}} ± {sd:{fmt}}")
        speed = [r["ms_per_step"] for r in chosen if r["ms_per_step"] == r["ms_per_step"]]
        tail = f", {statistics.median(speed):.0f} ms/step" if speed else ""
        print(f"{system:34} mean ± sd over {len(chosen)} seeds: {', '.join(parts)}{tail}")
    naive = "the gray input as the answer" if task.name == "cdae" else "the input as the answer"
    print(f"{naive:34}      {baseline['l1']:7.4f} {baseline['psnr']:8.2f} "
          f"{baseline['ssim']:7.4f}")
    ref = [r["ms_per_step"] for r in rows if r["system"] == "reference (--eval)"]
    ours = [r["ms_per_step"] for r in rows if r["system"] == mine]
    if ref and ours:
        print(f"training time per step, kstyle / reference: "
              f"{statistics.median(ours) / statistics.median(ref):.2f}")
    if grid:
        write_grid(args.out / f"{task.name}_grid.png", pairs, grid, task.naive_answer)
        print(f"grid: {args.out / f'{task.name}_grid.png'}")
    (args.out / f"{task.name}_results.json").write_text(json.dumps(
        {"rows": rows, "baseline": baseline, "cpu": cpu_name(), "epochs": args.epochs,
         "overrides": args.overrides}, indent=1))


if __name__ == "__main__":
    main()
