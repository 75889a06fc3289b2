"""Published models by name, against a local HTTP server standing in for the hosts.

The server (started here, on 127.0.0.1) serves the reference networks of tests/pth/ --
files the reference code wrote -- under the published names, answers byte ranges, and
can cut a download off midway. No other network is used: the real hosts are unreachable
from the test machines, so the manifest's URLs are pointed at the server.
"""

import io
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "pth"
sys.path.insert(0, str(FIXTURES))
from probe import probe  # noqa: E402

#: Published name -> (file, fixture): a CycleGAN generator, and AdaIN's two files.
SERVED = {"horse2zebra": [("horse2zebra.pth", "resnet_6blocks_instance")],
          "adain": [("decoder.pth", "adain_decoder"), ("vgg_normalised.pth", "adain_vgg")]}


class Server:
    """A file server on 127.0.0.1 with byte ranges, request logs and cut-off downloads."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}  # path -> bytes sent before the next download drops
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match:
                    start = int(match[1])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                cut = server.cut.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    for name, files in SERVED.items():
        for file, fixture in files:
            s.files[f"/{name}/{file}"] = (FIXTURES / f"{fixture}.pth").read_bytes()
    yield s
    s.stop()


@pytest.fixture
def zoo_env(tmp_path, monkeypatch, server):
    """A fresh cache, and the manifest's URLs pointed at the local server."""
    from kstyle.inference import zoo

    monkeypatch.setenv(zoo.HOME_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(zoo.MIRROR_ENV, raising=False)
    published = {name: zoo.Published(
        e.name, e.kind, e.does, e.source, e.licence,
        tuple(zoo.WeightsFile(f.name, (f"{server.url}/{name}/{f.name}",), f.size)
              for f in e.files)) for name, e in zoo.models().items()}
    monkeypatch.setattr(zoo.manifest, "models", lambda: published)
    return zoo


def test_the_manifest_lists_every_published_model():
    from kstyle.inference import zoo
    from kstyle.models import KINDS

    models = zoo.models()
    assert len(models) == 18 + 5 + 4 + 1
    assert {"horse2zebra", "style_vangogh", "edges2shoes", "pix2pix_sat2map", "sat2map",
            "mosaic", "adain"} <= set(models)
    for entry in models.values():
        assert entry.kind in KINDS and entry.files and entry.does and entry.licence
        assert all(f.urls and f.size > 0 for f in entry.files)
    assert models["pix2pix_sat2map"].files[0].name == "sat2map.pth"
    assert [f.name for f in models["adain"].files] == ["decoder.pth", "vgg_normalised.pth"]
    # An archive is downloaded once for the model.
    assert models["mosaic"].size == models["mosaic"].files[0].size


def test_a_model_by_name_downloads_converts_and_stylizes_as_the_reference(zoo_env, server):
    import kstyle

    stylizer = kstyle.load("horse2zebra")
    run = zoo_env.run_dir("horse2zebra")
    assert json.loads((run / "run.json").read_text())["name"] == "horse2zebra"
    output = np.asarray(stylizer.model(probe(32, 32, 3), training=False))[0]
    with np.load(FIXTURES / "nets.npz") as expected:
        np.testing.assert_allclose(output, expected["resnet_6blocks_instance/all"],
                                   atol=1e-5, rtol=0)
    photo = np.random.default_rng(0).integers(0, 256, (30, 41, 3), np.uint8)
    assert kstyle.stylize(photo, model="horse2zebra").shape == photo.shape
    # Recorded at download: the file's size and sha256, and the run's files.
    record = json.loads((run / "zoo.json").read_text())
    data = (FIXTURES / "resnet_6blocks_instance.pth").read_bytes()
    assert record["downloads"]["horse2zebra.pth"]["size"] == len(data)
    assert "translator.keras" in record["files"]
    # From then on, offline: the server is gone, the model still loads.
    server.stop()
    got = kstyle.stylize(photo, model="horse2zebra")
    assert got.shape == photo.shape


def test_an_uncached_model_offline_is_one_line_naming_the_ways_out(zoo_env, server):
    import kstyle
    from kstyle.errors import ModelLoadError

    server.stop()
    with pytest.raises(ModelLoadError) as info:
        kstyle.load("adain")
    message = str(info.value)
    assert "\n" not in message and "adain: could not download decoder.pth" in message
    assert "/adain/decoder.pth" in message and "KSTYLE_ZOO_MIRROR" in message
    assert "kstyle import" in message
    assert not zoo_env.run_dir("adain").exists()


def test_a_download_cut_off_midway_resumes(zoo_env, server):
    from kstyle.errors import ModelLoadError

    size = len(server.files["/horse2zebra/horse2zebra.pth"])
    server.cut["/horse2zebra/horse2zebra.pth"] = size // 3
    with pytest.raises(ModelLoadError, match="closed after"):
        zoo_env.fetch("horse2zebra", log=lambda line: None, progress=False)
    downloads = zoo_env.home() / "downloads" / "horse2zebra"
    assert not (downloads / "horse2zebra.pth").exists()  # nothing that looks complete
    assert (downloads / "horse2zebra.pth.part").stat().st_size == size // 3
    run = zoo_env.fetch("horse2zebra", log=lambda line: None, progress=False)
    assert server.requests[-1] == ("/horse2zebra/horse2zebra.pth", f"bytes={size // 3}-")
    assert (downloads / "horse2zebra.pth").read_bytes() == \
        server.files["/horse2zebra/horse2zebra.pth"]
    assert (run / "translator.keras").is_file()


def test_an_altered_cache_is_fetched_again(zoo_env, server):
    lines = []
    run = zoo_env.fetch("horse2zebra", log=lines.append, progress=False)
    downloaded = zoo_env.home() / "downloads" / "horse2zebra" / "horse2zebra.pth"
    # The converted network altered: converted again from the verified download.
    keras_file = run / "translator.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:-10])
    requests = len(server.requests)
    zoo_env.fetch("horse2zebra", log=lines.append, progress=False)
    assert len(server.requests) == requests and "converting it again" in lines[-2]
    # The download truncated: fetched again.
    downloaded.write_bytes(downloaded.read_bytes()[:1000])
    keras_file.write_bytes(b"")
    zoo_env.fetch("horse2zebra", log=lines.append, progress=False)
    assert any("is not the file downloaded before (1,000 bytes" in line for line in lines)
    assert downloaded.read_bytes() == server.files["/horse2zebra/horse2zebra.pth"]
    assert zoo_env.cached("horse2zebra") == run


def test_a_second_process_waits_for_the_first(zoo_env, server, tmp_path):
    # Two processes use the model for the first time at once: one downloads it, the other
    # waits and finds it ready. The mirror gives the subprocesses the server's address.
    env = {**os.environ, zoo_env.HOME_ENV: os.environ[zoo_env.HOME_ENV],
           zoo_env.MIRROR_ENV: server.url}
    code = ("import sys; from kstyle.inference import zoo; "
            "print(zoo.fetch('adain', log=lambda line: print(line), progress=False))")
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (out, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-2000:]
        assert out.strip().endswith(str(zoo_env.run_dir("adain")))
    downloads = [r for r in server.requests if r[0] == "/adain/decoder.pth"]
    assert len(downloads) == 1
    assert sum("downloading" in out for out, _ in outputs) == 1


def test_the_mirror_works_as_a_url_and_as_a_folder(tmp_path, monkeypatch, server):
    import kstyle
    from kstyle.inference import zoo

    monkeypatch.setenv(zoo.HOME_ENV, str(tmp_path / "by_url"))
    monkeypatch.setenv(zoo.MIRROR_ENV, server.url)
    assert kstyle.load("horse2zebra").inputs == {}
    assert server.requests[-1][0] == "/horse2zebra/horse2zebra.pth"
    folder = tmp_path / "mirror"
    for name, files in SERVED.items():
        for file, fixture in files:
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / name / file).write_bytes((FIXTURES / f"{fixture}.pth").read_bytes())
    monkeypatch.setenv(zoo.HOME_ENV, str(tmp_path / "by_folder"))
    monkeypatch.setenv(zoo.MIRROR_ENV, str(folder))
    server.stop()
    stylizer = kstyle.load("adain")
    assert "style" in stylizer.inputs
    photo = np.random.default_rng(1).integers(0, 256, (24, 32, 3), np.uint8)
    assert stylizer(photo, style=photo, style_size=0).shape == photo.shape


def test_a_published_model_from_an_archive(tmp_path, monkeypatch, server):
    # The fast neural style files are published together in a zip: it is downloaded
    # once, and each model's .pth taken from it.
    from kstyle.inference import zoo

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for style in ("candy", "mosaic"):
            zf.writestr(f"saved_models/{style}.pth",
                        (FIXTURES / "transformer_net.pth").read_bytes())
    server.files["/saved_models.zip"] = buffer.getvalue()
    monkeypatch.setenv(zoo.HOME_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(zoo.MIRROR_ENV, raising=False)
    published = {name: zoo.Published(e.name, e.kind, e.does, e.source, e.licence, tuple(
        zoo.WeightsFile(f.name, (f"{server.url}/saved_models.zip",), f.size, f.archive)
        for f in e.files)) for name, e in zoo.models().items() if name in ("candy", "mosaic")}
    monkeypatch.setattr(zoo.manifest, "models", lambda: published)
    for style in ("candy", "mosaic"):
        zoo.fetch(style, log=lambda line: None, progress=False)
    assert [r[0] for r in server.requests].count("/saved_models.zip") == 1


def test_stylize_with_no_model_uses_the_default_published_model(tmp_path, monkeypatch,
                                                               server, capsys):
    import kstyle
    from kstyle import api
    from kstyle.inference import zoo

    server.files["/mosaic/mosaic.pth"] = (FIXTURES / "transformer_net.pth").read_bytes()
    monkeypatch.setenv(zoo.HOME_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(zoo.MIRROR_ENV, server.url)
    monkeypatch.delenv(zoo.DEFAULT_ENV, raising=False)
    monkeypatch.setattr(api, "_said_default", False)
    photo = np.random.default_rng(2).integers(0, 256, (20, 28, 3), np.uint8)
    out = kstyle.stylize(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert "'mosaic'" in capsys.readouterr().err
    from PIL import Image

    pil = kstyle.stylize(Image.fromarray(photo))
    assert isinstance(pil, Image.Image) and pil.size == (28, 20)
    assert "'mosaic'" not in capsys.readouterr().err  # said once
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    written = kstyle.stylize(path, out=tmp_path / "out.png")
    assert Path(written).is_file()
    # The command line alike.
    from click.testing import CliRunner

    from kstyle.cli import main

    result = CliRunner().invoke(main, ["stylize", str(path), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").is_file()


def test_export_and_fine_tuning_take_a_published_name(zoo_env, server, tmp_path,
                                                      monkeypatch):
    from click.testing import CliRunner

    from kstyle.cli import main
    from kstyle.errors import RecipeError
    from kstyle.recipes import recipe_from_dict

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "horse2zebra", "--tflite"])
    assert result.exit_code == 0, result.output
    assert "checking on rendered ones" in result.output and " - ok" in result.output
    assert (tmp_path / "horse2zebra_export" / "translator.tflite").is_file()
    # train.init_from takes the name; a name that is neither a run nor published is refused.
    recipe = recipe_from_dict({"name": "x"}, ["model.kind=cyclegan", "data.source=synthetic",
                                              'train.init_from="horse2zebra"'])
    assert recipe.train.init_from == "horse2zebra"
    with pytest.raises(RecipeError, match="published model's name"):
        recipe_from_dict({"name": "x"}, ["data.source=synthetic",
                                         'train.init_from="horse2zebraa"'])


def test_fine_tuning_starts_from_a_published_model(zoo_env, server, tmp_path):
    from conftest import tiny_cyclegan_recipe

    from kstyle.train import fit

    lines = []
    recipe = tiny_cyclegan_recipe(tmp_path, "model.num_blocks=6", "train.epochs=1",
                                  'train.init_from="horse2zebra"')
    fit(recipe, verbose=0, log=lines.append)
    said = "\n".join(lines)
    assert "Starting from the networks of horse2zebra" in said
    assert "generator_ab: " in said and "translator.keras" in said
