"""The ``kstyle`` command line: parse, call the library, print.

TensorFlow is imported inside each command, so ``kstyle --help`` answers at once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from kstyle import __version__, quiet
from kstyle.errors import KstyleError
from kstyle.models import DEFAULT_KIND


def _quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def handle_errors(func):
    """Turns the library's typed errors into a one-line message and exit code 2 (with
    ``--debug``, the traceback as well)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KstyleError as e:
            if quiet.debug():
                raise
            error = UserError(str(e))
            error.exit_code = getattr(e, "exit_code", UserError.exit_code)
            raise error from None
        except OSError as e:  # a path that cannot be written or read, a full disk
            if quiet.debug():
                raise
            where = f"{e.filename}: " if e.filename else ""
            raise UserError(f"{where}{e.strerror or e} (run with --debug for the "
                            "traceback)") from None

    return wrapper


class UserError(click.ClickException):
    """A problem with the user's input: printed as 'Error: ...', exit code 2 (or the
    ``exit_code`` of the error it reports: 75 for a lost worker)."""

    exit_code = 2


def gatys_options(command):
    """Adds a ``--style`` option to ``command`` for each field of GatysOptions (but the
    lists of layers), with its default and doc: they are written there only."""
    import dataclasses

    from kstyle.models.gatys_options import INITS, GatysOptions

    defaults = GatysOptions()
    for f in reversed(dataclasses.fields(GatysOptions)):
        default = getattr(defaults, f.name)
        if isinstance(default, list) or f.name == "style_layer_weights":
            continue
        help = f"--style: {f.metadata['doc']}."
        flag = "--" + f.name.replace("_", "-")
        if f.name == "jit_compile":
            option = click.option("--jit/--no-jit", f.name, default=default, show_default=True,
                                  help=help)
        elif isinstance(default, bool):
            option = click.option(flag, f.name, is_flag=True, default=default, help=help)
        elif f.name == "init":
            option = click.option(flag, f.name, type=click.Choice(INITS), default=default,
                                  show_default=True, help=help)
        else:
            kind = {"int": int, "int | None": int, "float": float}.get(f.type, str)
            option = click.option(flag, f.name, type=kind, default=default,
                                  show_default=default not in (0, ""), help=help,
                                  metavar="imagenet|PATH" if f.name == "vgg_weights" else None)
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kstyle")
@click.option("--debug", is_flag=True, envvar="KSTYLE_DEBUG",
              help="Show tracebacks and TensorFlow's own log lines (also KSTYLE_DEBUG=1).")
def main(debug):
    """kstyle: image style transfer and image-to-image translation with Keras.

    \b
    Train a model from a recipe, then use it:
      kstyle fit recipes/quickstart.toml
      kstyle stylize photo.jpg --model saved_models/quickstart
      kstyle eval saved_models/quickstart
    Or give a painting: neural style transfer by optimization (Gatys et al.):
      kstyle stylize photo.jpg --style starry_night.jpg
    """
    if debug:
        os.environ["KSTYLE_DEBUG"] = "1"


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="TABLE.KEY=VALUE",
              help="Override a recipe key, e.g. --set train.epochs=5 (repeatable). "
                   "See 'kstyle recipe keys'.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def fit(recipe, overrides, quiet):
    """Train (or resume) the model described by RECIPE, a TOML file.

    The run goes to saved_models/<recipe name>/ (or train.out_dir). Running the same
    command again resumes from the last checkpoint. Ctrl-C saves a checkpoint first.
    """
    _quiet_tf()
    from kstyle.recipes import load_recipe
    from kstyle.train import fit as fit_recipe

    r = load_recipe(recipe, overrides)
    click.echo(f"kstyle fit: {r.name} ({r.model.kind}) -> {r.run_dir}")
    result = fit_recipe(r, verbose=0 if quiet else "auto")
    if result.interrupted:
        sys.exit(result.exit_code)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--model", "-m", "model", type=click.Path(),
              help="A published model's name (kstyle models; downloaded once), a run "
                   "folder written by 'kstyle fit' or 'kstyle import', a .keras file, or an "
                   "export (.tflite or .onnx file, or SavedModel folder): one forward pass. "
                   "Neither --model nor --style: the published model $KSTYLE_DEFAULT_MODEL "
                   "(default mosaic).")
@click.option("--style", "-s", "styles", multiple=True, type=click.Path(dir_okay=False),
              help="Style image (repeatable): optimize each input to take on its style "
                   "(Gatys et al.) instead of using a trained model; with --model of an "
                   "adain run, one forward pass in this style.")
@click.option("--out", "-o", type=click.Path(), default="stylized", show_default=True,
              help="Folder for the results (PNG, named after the inputs), or a file name "
                   "(.png, .jpg) for a single input.")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), default="a2b",
              show_default=True, help="--model: for models that translate both ways.")
@click.option("--skip-existing", is_flag=True,
              help="Leave inputs whose result is already in --out (results are written "
                   "whole or not at all): an interrupted folder goes on where it stopped.")
@click.option("--overwrite", is_flag=True,
              help="Replace results that exist in --out (without it, or --skip-existing, "
                   "existing results stop the command before anything is written). A "
                   "result never replaces an input; inputs of one name (a.jpg, a.png) "
                   "get results that keep their extension (a.jpg.png, a.png.png).")
@click.option("--tile", type=click.IntRange(min=0), default=None,
              help="--model: translate in overlapping tiles of this side, with instance-norm "
                   "statistics (adain: content statistics) of the whole image (default: 512 "
                   "px tiles above 4 MP; 0: never).")
@click.option("--blend", type=float, multiple=True,
              help="--style: weight of each style, in --style order (default equal).")
@click.option("--strength", type=click.FloatRange(0, 1), default=None,
              help="--model that takes a strength (adain): how much style, from 0 (the "
                   "content) to 1 (full style, the default).")
@click.option("--input", "extra_inputs", multiple=True, metavar="NAME=FILE|NUMBER",
              help="--model: another input the model takes, by name (repeatable): a "
                   "file for an image, a number for a scalar.")
@click.option("--no-temporal", "temporal", is_flag=True, flag_value=False, default=True,
              help="Video: stylize each frame alone (default: statistics held steady "
                   "and each result carried along the motion, against flicker).")
@click.option("--carry", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Video: how much of the previous result, moved along the optical "
                   "flow, goes into each frame (0: statistics only).")
@gatys_options
@handle_errors
def stylize(inputs, model, styles, out, direction, skip_existing, overwrite, tile, blend,
            strength, extra_inputs, temporal, carry, **style_options):
    """Stylize INPUTS (image files, video files, or folders of them).

    \b
    With a published model by name (downloaded and converted once, then offline;
    'kstyle models' lists them), or a model you trained, one forward pass at any
    size (padded to the network's size multiple and cropped back):
      kstyle stylize photo.jpg                      # the default published model
      kstyle stylize photo.jpg --model style_vangogh
      kstyle stylize photo.jpg --model saved_models/quickstart
    With a style image, neural style transfer by optimization (Gatys et al.):
      kstyle stylize photo.jpg --style starry_night.jpg --steps 300 --size 512
      kstyle stylize photo.jpg -s wave.jpg -s udnie.jpg --blend 0.7 --blend 0.3
    With both, a model that takes a style (adain) in one pass, for any style image:
      kstyle stylize photos/ --model saved_models/adain --style scream.jpg --strength 0.8
    A model that takes other inputs gets them by name (a missing one is named):
      kstyle stylize photo.jpg --model saved_models/my_run --input mask=mask.png
    A video, with any model: frame by frame without flicker, the sound kept:
      kstyle stylize clip.mp4 --model mosaic            # -> stylized/clip.mp4
      kstyle stylize clip.mp4 -m saved_models/adain -s wave.jpg --no-temporal
    """
    _quiet_tf()
    if not model and not styles:
        from kstyle.inference.zoo import DEFAULT_ENV, default_model

        model = default_model()
        click.echo(f"No --model or --style: stylizing with the published model {model!r} "
                   f"(${DEFAULT_ENV} to change; 'kstyle models' lists them)", err=True)
    ctx = click.get_current_context()
    given = sorted(name for name in style_options
                   if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT))
    if strength is not None and not model:
        raise click.UsageError("--strength needs --model (a model that takes a strength)")
    from kstyle import api
    from kstyle.data.images import IMAGE_EXTENSIONS, ImageRefused, list_images
    from kstyle.data.video import VIDEO_EXTENSIONS, is_video, result_suffix

    files = []
    for item in inputs:  # a folder's images and video clips, or a file
        files += (list_images(item, (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS))
                  if Path(item).is_dir() else [item])
    videos = [f for f in files if is_video(f)]
    if videos and not model:
        raise click.UsageError(f"{videos[0]}: a video is stylized by a model: give --model "
                               "(with --style for one that takes a style)")
    to_file = Path(out).suffix.lower() in (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS)
    if to_file and len(files) > 1:
        raise click.UsageError(f"--out {out} names one file, but there are {len(files)} "
                               "inputs: give a folder")
    if not model:
        def function(src, out):
            frames = out.parent / f"{out.stem}_frames" if style_options["save_every"] else None
            return api.transfer_style(src, style=list(styles), out=out, blend=list(blend) or None,
                                      frames=frames, **style_options)
    else:
        stylizer = api.load(model, direction, tile)
        function = functools.partial(stylizer, temporal=temporal, carry=carry,
                                     **_model_inputs(stylizer, model, styles, blend,
                                                     strength, extra_inputs, given))
    folder = Path(out).parent if to_file else Path(out)
    from kstyle import runs
    from kstyle.data.outputs import OutputExists, check_not_an_input, plan

    for line in runs.clean_temporaries(folder):  # what an interrupted stylize left
        click.echo(f"{folder}: {line} (left by an interrupted run)")
    if to_file:
        check_not_an_input(out, files[0])
        exists = Path(out).exists()
        if exists and not (overwrite or skip_existing):
            raise OutputExists(f"{out} already exists: give --overwrite to replace it")
        destinations = [Path(out)]
    else:
        destinations, notes = plan(files, out, overwrite=overwrite,
                                   skip_existing=skip_existing, suffix=result_suffix)
        for note in notes:
            click.echo(note)
    refused = []
    for src, dest in zip(files, destinations):
        if skip_existing and dest.is_file():
            click.echo(f"{src} -> {dest} (already there)")
            continue
        try:
            function(src, out=dest)
        except ImageRefused as e:
            if len(files) == 1 or Path(e.path) != Path(src):
                raise  # one input, or another file (a style image): nothing else can work
            refused.append(e)
            click.echo(f"{src}: not stylized: {e.reason}", err=True)
            continue
        click.echo(f"{src} -> {dest}")
    if refused:
        raise UserError(f"{len(refused)} of {len(files)} inputs could not be read (listed "
                        f"above); the other results are in {folder}")


#: The flags that give a model's common inputs; any other goes by --input NAME=VALUE.
INPUT_FLAGS = {"style": "--style", "strength": "--strength", "blend": "--blend",
               "preserve_color": "--preserve-color"}


def _flag(name: str) -> str:
    return INPUT_FLAGS.get(name, f"--input {name}=...")


def _model_inputs(stylizer, model, styles, blend, strength, extra_inputs, given) -> dict:
    """The keyword inputs of ``stylizer`` from the command line; UsageError for a flag the
    model does not take, or an input it needs and was not given."""
    inputs = {}
    if styles:
        inputs["style"] = list(styles)
    if blend:
        inputs["blend"] = list(blend)
    if strength is not None:
        inputs["strength"] = strength
    if "preserve_color" in given and "preserve_color" in stylizer.inputs:
        inputs["preserve_color"] = True
    for item in extra_inputs:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--input {item}: expected NAME=FILE or NAME=NUMBER")
        try:
            inputs[name] = float(value)
        except ValueError:
            inputs[name] = value
    takes = stylizer.inputs
    unknown = [name for name in inputs if name not in takes]
    optimization = [n for n in given if n not in takes]
    if unknown or optimization:
        flags = ", ".join(_flag(n) for n in unknown)
        where = (f"--model {model} takes no {flags} (it takes: "
                 f"{', '.join(_flag(n) for n in takes) or 'the image alone'})")
        if "style" in unknown:
            where += "; --style without --model optimizes each input instead"
        if optimization:
            where = "; ".join(([where] if unknown else []) + [
                ", ".join("--" + n.replace("_", "-") for n in optimization)
                + ": for --style without --model (optimization)"])
        raise click.UsageError(where)
    needed = [p for p in stylizer.signature.main.inputs[1:]
              if p.default is None and p.name not in inputs]
    if needed:
        raise click.UsageError(f"--model {model} needs " + "; ".join(
            f"{_flag(p.name)} ({p.doc})" for p in needed))
    if len(inputs.get("style", [])) == 1 and "blend" not in takes:
        inputs["style"] = inputs["style"][0]  # one image, for a model of one style input
    return inputs


@main.command(name="eval")
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--video", nargs=2, type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="ORIGINAL STYLIZED",
              help="Score a stylized clip instead: its flicker (warping error) and its "
                   "distance from the original.")
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="Data folder (or dataset name), read as the run's recipe reads data.path: "
                   "pairs for paired runs, <split>A/ and <split>B/ for unpaired ones "
                   "(default: the recipe's data.path).")
@click.option("--split", default=None, help="Sub-folder / split (default: data.val_split; "
              "when absent, the folder itself for pairs, else data.train_split).")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), default=None,
              help="Unpaired runs (CycleGAN): translate A and compare with real B (a2b, "
                   "default), or the reverse.")
@click.option("--fid", "with_fid", is_flag=True,
              help="Paired runs: also FID and KID of the outputs against the targets "
                   "(unpaired runs always get them).")
@click.option("--inception-weights", default="imagenet", show_default=True,
              metavar="imagenet|random|PATH",
              help="InceptionV3 weights for FID/KID: 'imagenet' (Keras cache ~/.keras/models/ "
                   "or $KSTYLE_INCEPTION_WEIGHTS), a weights file, or 'random' (smoke tests "
                   "only).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Score at most this many pairs (paired) or images per domain (unpaired).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="JSON file for the scores (default: RUN_DIR/eval.json).")
@handle_errors
def evaluate(run_dir, video, data_path, split, direction, with_fid, inception_weights,
             limit, out):
    """Score a trained translator, or a stylized clip.

    \b
    Paired runs (pix2pix): L1, PSNR and SSIM against the targets (--fid adds FID/KID).
    Unpaired runs (CycleGAN): FID and KID of the translations of <split>A against the
    real images of <split>B (--direction b2a: the reverse), on InceptionV3 features.
    Lower FID/KID is better; both depend on the number of images, so compare equal N.
    \b
    A clip (--video ORIGINAL STYLIZED): the warping error (Lai et al., ECCV 2018: the
    occlusion-masked difference between each stylized frame and the one before, moved
    along the original's optical flow; lower flickers less) and the mean distance
    from the original (so that stylizing less does not pass for steadiness).
    """
    _quiet_tf()
    from kstyle import runs

    if video:
        from kstyle.inference.video import flicker

        scores = flicker(*video)
        click.echo(f"{video[1]}: warping error {scores['warping_error']:.5f} over "
                   f"{scores['pairs']} frame pairs, distance from the original "
                   f"{scores['input_distance']:.4f} ({scores['frames']} frames)")
        if out:
            runs.write_json(Path(out), {**scores, "original": video[0],
                                        "stylized": video[1]})
            click.echo(f"wrote {out}")
        return
    if run_dir is None:
        raise click.UsageError("give RUN_DIR (a trained run), or --video ORIGINAL STYLIZED")
    from kstyle.evaluate import evaluate_run

    random_weights = inception_weights == "random"
    scores = evaluate_run(run_dir, data_path, split=split, direction=direction, limit=limit,
                          fid=with_fid, inception_weights=inception_weights)
    where = f"{scores['data']} [{scores['split']}]"
    if "n_translated" in scores:
        line = (f"{where} {scores['direction']}: n_translated={scores['n_translated']}, "
                f"n_real={scores['n_real']}: ")
    else:
        line = (f"{where}, n={scores['n']}: L1 {scores['l1']:.4f}  PSNR {scores['psnr']:.2f} dB"
                f"  SSIM {scores['ssim']:.4f}  ")
    if "fid" in scores:
        line += f"FID {scores['fid']:.4g}  KID {scores['kid']:.4g} +- {scores['kid_std']:.2g}"
    click.echo(line.rstrip())
    if random_weights and "fid" in scores:
        click.echo("NOTE: --inception-weights random: these FID/KID come from an untrained "
                   "InceptionV3; they only test the pipeline and are NOT comparable to "
                   "published FID or to scores with ImageNet weights.", err=True)
    dest = Path(out) if out else Path(run_dir) / "eval.json"
    runs.write_json(dest, scores)
    click.echo(f"wrote {dest}")


@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx):
    """List the published models kstyle gets by name, and which are cached.

    \b
    Each is downloaded once (with a progress bar), converted and cached, then used
    offline: kstyle stylize photo.jpg --model horse2zebra. The cache is $KSTYLE_HOME
    (default: kstyle/ in Keras' cache folder, ~/.keras); $KSTYLE_ZOO_MIRROR (a URL or
    folder holding NAME/FILE.pth) replaces the official URLs.
    """
    if ctx.invoked_subcommand is not None:
        return
    _quiet_tf()
    from kstyle.inference.zoo import home, listing

    rows = listing()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        takes = f" (takes {', '.join(r['inputs'])})" if r["inputs"] else ""
        state = "cached" if r["cached"] else f"{r['size'] / 1e6:4.0f} MB"
        click.echo(f"{r['name']:<{width}}  {r['kind']:<10}  {state:>7}  {r['does']}{takes}")
    click.echo(f"\ncache: {home()}")


@models.command(name="fetch")
@click.argument("names", nargs=-1, required=True)
@handle_errors
def models_fetch(names):
    """Download and convert published models now (for use offline later)."""
    _quiet_tf()
    from kstyle.inference.zoo import fetch

    for name in names:
        click.echo(f"{name}: {fetch(name, log=click.echo)}")


@main.command()
@click.argument("models", nargs=-1, metavar="[MODEL|NAME=MODEL]...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", envvar="KSTYLE_SERVE_TOKEN", default=None,
              help="Require 'Authorization: Bearer TOKEN' on the API (env "
                   "KSTYLE_SERVE_TOKEN); the page takes it as URL#token=TOKEN.")
@click.option("--max-queue", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images queued or running at most; past it, 503 with Retry-After.")
@click.option("--max-batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Most same-shape images of one model run together (1: none; on a "
                   "CPU, where one image already uses every core, batching does not pay).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a request may wait for its result (504).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=32.0,
              show_default=True, help="Largest request body (413).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=25_000_000,
              show_default=True, help="Largest image, read from its header before "
                                       "decoding (413).")
@handle_errors
def serve(models, host, port, token, max_queue, max_batch, timeout, max_upload_mb,
          max_pixels):
    """Serve models over HTTP: a web page to try them, and an API.

    \b
    MODEL is a run folder, an exported file or a published model's name (kstyle
    models); NAME=MODEL names it in URLs. Default: the default published model.
      kstyle serve                                 # the page at http://127.0.0.1:8000/
      kstyle serve mosaic saved_models/my_run adain=saved_models/adain
    \b
    API (JSON errors: {"error": "..."}):
      GET  /v1/models                   the models, their inputs and origin
      POST /v1/models/NAME:stylize      multipart: image (+ style, strength) -> PNG
                                        (JPEG or WebP by Accept)
      POST /v1/models/NAME:predict      TensorFlow Serving's REST shape:
                                        {"instances": [{"b64": ...}]} -> {"predictions": ...}
      GET  /healthz, /readyz, /openapi.json
    \b
      curl -F image=@photo.jpg http://127.0.0.1:8000/v1/models/mosaic:stylize -o out.png
    \b
    SIGTERM or Ctrl-C: stops taking requests, finishes those in flight, exits 0.
    Needs pip install "kstyle[serve]".
    """
    _quiet_tf()
    from kstyle.server import serve as run_server
    from kstyle.server.app import Settings

    settings = Settings(max_images=max_queue, max_requests=2 * max_queue,
                        max_batch=max_batch, timeout=timeout,
                        max_upload=int(max_upload_mb * 2**20), max_pixels=max_pixels,
                        token=token or None)
    run_server(list(models), host=host, port=port, settings=settings, log=click.echo)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--saved-model", "saved_model", is_flag=True,
              help="Write a SavedModel in TensorFlow Serving's layout, NAME/1/ (every "
                   "endpoint a signature, uint8 images in and out; serving_default: image "
                   "files in, PNG out, for TensorFlow Serving's REST API).")
@click.option("--tflite", is_flag=True,
              help="Write a LiteRT .tflite file (uint8 [N, H, W, 3] in and out, H and W "
                   "dynamic). None of --saved-model/--tflite/--onnx: the first two.")
@click.option("--onnx", is_flag=True,
              help="Write an ONNX file (float32, uint8 in and out, H and W dynamic; needs "
                   "pip install 'kstyle[onnx]').")
@click.option("--quantize", type=click.Choice(["none", "fp16", "dynamic", "int8"]),
              default="none", show_default=True,
              help="For the .tflite file: float16 weights, int8 weights (dynamic range), or "
                   "int8 weights and activations calibrated on real images.")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), default=None,
              help="For models that translate both ways (default a2b).")
@click.option("--check-images", multiple=True, type=click.Path(exists=True),
              help="Images (files or folders) to check the export on, and to calibrate "
                   "int8 with (default: the run's samples/inputs).")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for the files (default: RUN_DIR/export).")
@handle_errors
def export(run_dir, saved_model, tflite, onnx, quantize, direction, check_images, out):
    """Export the inference network of a trained run (or a published model, by name)
    for servers and phones.

    \b
    Writes only the translator (never a discriminator), wrapped so that it takes and
    returns uint8 images of any size; its metadata (size multiple, direction, input
    derivation) goes with it. Each file is checked against the Keras model on real
    images, and is not written if it differs too much:
      kstyle export saved_models/quickstart
      kstyle export saved_models/quickstart --tflite --quantize fp16
      kstyle export saved_models/quickstart --onnx
      kstyle stylize photo.jpg --model saved_models/quickstart/export/translator.tflite
    """
    _quiet_tf()
    from kstyle.export import export_run

    if not (saved_model or tflite or onnx):
        saved_model = tflite = True
    export_run(run_dir, out, saved_model=saved_model, tflite=tflite, onnx=onnx,
               quantize=quantize,
               direction=direction, images=list(check_images) or None, log=click.echo)


@main.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--arch", default=None, metavar="NAME",
              help="The generators' architecture, checked against what the files hold: "
                   "resnet_9blocks, resnet_6blocks, unet_256, unet_128, transformer_net, "
                   "adain_decoder (default: read from the files).")
@click.option("--vgg", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With the AdaIN reference's decoder.pth: its vgg_normalised.pth, the "
                   "encoder the decoder was trained with.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Run folder to write (default: saved_models/<name of the first file>).")
@handle_errors
def import_command(files, arch, vgg, out):
    """Convert reference PyTorch weights (.pth) into a kstyle run folder.

    \b
    FILES are state dicts saved by junyanz/pytorch-CycleGAN-and-pix2pix: one generator
    (a published horse2zebra.pth, or a latest_net_G.pth) for a one-way translator, or a
    CycleGAN's latest_net_G_A.pth and latest_net_G_B.pth for both ways, each with its
    discriminators (_D_A / _D_B, or _D: basic, n_layers or pixel) if you have them; or a
    pytorch/examples fast neural style model (candy.pth, mosaic.pth, rain_princess.pth,
    udnie.pth); or naoto0804/pytorch-AdaIN's decoder.pth with --vgg vgg_normalised.pth
    (any style in one pass). The files are read without PyTorch, and without running
    anything in them: a file that asks to is refused.
      kstyle import horse2zebra.pth --out saved_models/horse2zebra
      kstyle stylize horse.jpg --model saved_models/horse2zebra
      kstyle import mosaic.pth && kstyle stylize photo.jpg --model saved_models/mosaic
      kstyle import checkpoints/maps/latest_net_G_A.pth checkpoints/maps/latest_net_G_B.pth
      kstyle import decoder.pth --vgg vgg_normalised.pth --out saved_models/adain
      kstyle stylize photo.jpg --model saved_models/adain --style scream.jpg
    """
    _quiet_tf()
    from kstyle import runs
    from kstyle.importers.convert import import_weights

    run_dir = import_weights(files, out, arch=arch, vgg=vgg, log=click.echo)
    from kstyle.models import get_inference

    signature = get_inference(runs.read_run_info(run_dir).get("kind")).signature
    needed = "".join(f" {_flag(p.name).removesuffix('...')}{p.name.upper()}"
                     if p.name not in INPUT_FLAGS else f" {_flag(p.name)} {p.name.upper()}"
                     for p in signature.main.inputs[1:] if p.default is None)
    click.echo(f"try it: kstyle stylize IMAGE --model {run_dir}{needed}")


@main.group()
def recipe():
    """Inspect recipes and their keys."""


@recipe.command()
@click.option("--kind", default=DEFAULT_KIND, show_default=True, help="Model kind.")
def keys(kind):
    """List every recipe key with its type, default and meaning."""
    from kstyle.models import KINDS
    from kstyle.recipes import describe_keys

    if kind not in KINDS:
        raise click.BadParameter(f"{kind!r}; valid kinds: {', '.join(KINDS)}",
                                 param_hint="--kind")
    click.echo(describe_keys(kind))


@recipe.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="TABLE.KEY=VALUE",
              help="Override a recipe key (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@handle_errors
def show(path, overrides, as_json):
    """Validate a recipe and print it fully resolved."""
    from kstyle.recipes import load_recipe

    r = load_recipe(path, overrides)
    click.echo(json.dumps(r.to_dict(), indent=2) if as_json else r.to_toml(), nl=False)


@main.group()
def data():
    """Check data folders before training."""


_LAYOUT_HELP = ("How PATH is laid out: ab (side-by-side A|B files), folders (<split>A/ and "
                "<split>B/ paired by file name, or A/ and B/), unpaired (<split>A/ and "
                "<split>B/ of a CycleGAN set), photos (one folder of photos); auto detects it. "
                "A RECIPE's data.source and model.kind decide instead.")


@data.command()
@click.argument("target", metavar="PATH|RECIPE", type=click.Path(exists=True))
@click.option("--layout", type=click.Choice(["auto", "ab", "folders", "unpaired", "photos"]),
              default="auto", show_default=True, help=_LAYOUT_HELP)
@click.option("--set", "overrides", multiple=True, metavar="TABLE.KEY=VALUE",
              help="With a RECIPE: override a recipe key (repeatable).")
@click.option("--all", "show_all", is_flag=True,
              help="One row for every file, those used as they are included.")
@handle_errors
def check(target, layout, overrides, show_all):
    """Report what 'kstyle fit' would do with each image of a data folder.

    \b
    PATH is a data folder in any layout fit reads (each sub-folder a split), RECIPE a
    recipe file whose data.source, data.path, train_split and val_split are checked:
      kstyle data check datasets/facades
      kstyle data check recipes/pix2pix.toml --set data.path=/data/facades
    One row per file that is not simply used: converted (EXIF rotation, CMYK, 16-bit,
    palette, grayscale, alpha: how), refused (truncated, not an image, too big or too
    small, wrong AB aspect, no partner: why), a partner of another size, the same bytes
    in another split (SHA-1 of the file, so re-encoded copies are not found). Then one
    summary line. Files without a partner count as refused, as in fit. Exit code 0 when
    no file is refused, 1 otherwise.
    """
    _quiet_tf()
    from kstyle.data.check import check_data

    splits = None
    if Path(target).is_file():
        from kstyle.data.paired import resolve_path
        from kstyle.recipes import load_recipe

        r = load_recipe(target, overrides)
        d = r.data
        if d.source in ("tfds", "synthetic"):
            what = ("tensorflow-datasets checks its images when it builds the dataset"
                    if d.source == "tfds" else "its images are generated in memory")
            click.echo(f"{target}: data.source = {d.source!r}: {what}; nothing to check here.")
            return
        from kstyle.data.kinds import get_data_kind

        layout = get_data_kind(r.model.data_kind).layout(d.source)
        root, splits = resolve_path(d.source, d.path), [d.train_split, d.val_split]
    elif overrides:
        raise click.UsageError("--set needs a RECIPE file, not a folder")
    else:
        root = target
    result = check_data(root, layout=layout, splits=splits)
    shown = "none (the folder itself)" if result.splits == [""] else ", ".join(result.splits)
    click.echo(f"{result.root}: layout {result.layout}, splits: {shown}")
    rows = [row for row in result.rows if show_all or not row.plain]
    if rows:
        files = [os.path.relpath(row.report.path, result.root) for row in rows]
        width = max(len("FILE"), *(len(f) for f in files))
        click.echo(f"{'STATUS':<10} {'FILE':<{width}}  REASON")
        for row, name in zip(rows, files, strict=True):
            why = "; ".join(filter(None, [row.report.reason, *row.notes]))
            click.echo(f"{row.report.status:<10} {name:<{width}}  {why}".rstrip())
    click.echo(result.summary())
    if result.refused:
        click.echo("fit stops on refused files; with data.bad_images = \"skip\" it trains "
                   "without them (and their partners).")
        sys.exit(1)


def run():
    """The ``kstyle`` command: :func:`main` with TensorFlow's C++ log lines filtered from
    the terminal (``kstyle.quiet``; ``--debug`` keeps them)."""
    if "--debug" in sys.argv[1:]:
        os.environ["KSTYLE_DEBUG"] = "1"
    quiet.filter_stderr()
    main()


if __name__ == "__main__":
    run()
