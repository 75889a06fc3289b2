"""kstyle serve's HTTP API: every endpoint, every refusal, TensorFlow Serving's request
shape against kstyle's server and against the exported SavedModel, the queue under load,
and a graceful stop on SIGTERM."""

import base64
import functools
import io
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from bad_image_corpus import png_bytes
from PIL import Image
from serving import running

pytest.importorskip("fastapi", reason="kstyle serve needs the serve extra")
httpx = pytest.importorskip("httpx")

import kstyle  # noqa: E402
from kstyle.errors import KstyleError  # noqa: E402
from kstyle.server import serve  # noqa: E402
from kstyle.server.app import Settings, create_app  # noqa: E402
from kstyle.server.models import parse_sources  # noqa: E402
from kstyle.server.worker import Busy, Job, WorkQueue  # noqa: E402

# A model's first request traces it: on a busy machine that can take longer than httpx's
# 5 s default.
post = functools.partial(httpx.post, timeout=120)
get = functools.partial(httpx.get, timeout=120)


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def photo(h=37, w=51, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def decoded(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def adain():
    """An AdaIN stylizer of random weights (a narrow decoder): a model that takes a
    style and a strength."""
    import keras

    from kstyle.nets.adain import adain_decoder, adain_encoder, adain_stylizer

    keras.utils.set_random_seed(0)  # weights whose results vary (some draws give flat ones)
    net = adain_stylizer(adain_encoder(), adain_decoder(width=0.125, name="decoder"))
    return kstyle.Stylizer.from_network(net, {"kind": "adain"})


@pytest.fixture(scope="module")
def models(tiny_run, adain):
    return {"tiny": kstyle.load(tiny_run), "adain": adain}


@pytest.fixture(scope="module")
def url(models):
    settings = Settings(max_images=6, max_requests=12, max_upload=2**20,
                        max_pixels=500_000)
    with running(create_app(models, settings)) as base:
        yield base


def test_health_models_and_openapi(url):
    assert get(f"{url}/healthz").json() == {"status": "ok"}
    assert get(f"{url}/readyz").json()["models"] == ["tiny", "adain"]
    listed = {m["name"]: m for m in get(f"{url}/v1/models").json()["models"]}
    tiny, adain = listed["tiny"], listed["adain"]
    assert [f["name"] for f in tiny["fields"]] == ["image"] and not tiny["takes_style"]
    assert tiny["size_multiple"] == 32 and tiny["kind"] == "pix2pix" and tiny["batches"]
    assert tiny["predict_inputs"] == ["image_bytes"]
    assert [f["name"] for f in adain["fields"]] == ["image", "style", "strength"]
    assert adain["takes_style"] and adain["predict_inputs"] == ["image_bytes",
                                                                 "style_bytes", "strength"]
    strength = adain["fields"][2]
    assert (strength["low"], strength["high"]) == (0.0, 1.0)
    one = get(f"{url}/v1/models/tiny").json()
    assert one["model_version_status"][0]["state"] == "AVAILABLE"
    paths = get(f"{url}/openapi.json").json()["paths"]
    assert {"/v1/models/{name}:stylize", "/v1/models/{name}:predict", "/healthz",
            "/readyz", "/v1/models"} <= set(paths)
    styles = get(f"{url}/v1/styles").json()["styles"]
    assert len(styles) >= 3
    painting = get(url + styles[0]["url"])
    assert painting.status_code == 200 and decoded(painting.content).shape[2] == 3
    page = get(f"{url}/")
    assert page.status_code == 200 and "/static/kstyle.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched elsewhere


def test_stylize_gives_the_inputs_size_in_the_format_asked(url, models):
    image = photo()
    response = post(f"{url}/v1/models/tiny:stylize",
                          files={"image": ("a.png", png(image), "image/png")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    got = decoded(response.content)
    expected = models["tiny"].stylize_array(image)
    assert got.shape == image.shape and np.abs(got.astype(int) - expected).max() <= 1
    assert Image.open(io.BytesIO(response.content)).info.get("icc_profile")  # sRGB
    for accept, media in (("image/jpeg", "image/jpeg"), ("image/webp", "image/webp"),
                          ("text/html, image/*;q=0.8", "image/png")):
        response = post(f"{url}/v1/models/tiny:stylize", headers={"Accept": accept},
                              files={"image": ("a.png", png(image))})
        assert response.headers["content-type"] == media
        assert decoded(response.content).shape == image.shape
    refused = post(f"{url}/v1/models/tiny:stylize", headers={"Accept": "text/csv"},
                         files={"image": ("a.png", png(image))})
    assert refused.status_code == 406 and "image/png" in refused.json()["error"]


def test_a_style_model_takes_a_style_and_a_strength(url, models):
    image, style = photo(40, 48), photo(30, 36, seed=1)
    files = {"image": ("a.png", png(image)), "style": ("s.png", png(style))}
    weak = post(f"{url}/v1/models/adain:stylize", files=files, data={"strength": "0"})
    strong = post(f"{url}/v1/models/adain:stylize", files=files,
                        data={"strength": "1"})
    assert weak.status_code == strong.status_code == 200, weak.text
    assert decoded(weak.content).shape == image.shape
    assert not np.array_equal(decoded(weak.content), decoded(strong.content))
    expected = models["adain"].stylize_array(image, style=style, strength=1.0)
    assert np.abs(decoded(strong.content).astype(int) - expected).max() <= 1
    missing = post(f"{url}/v1/models/adain:stylize", files={"image": files["image"]})
    assert missing.status_code == 400 and "missing field 'style'" in missing.json()["error"]
    out_of_range = post(f"{url}/v1/models/adain:stylize", files=files,
                              data={"strength": "2"})
    assert out_of_range.status_code == 400
    assert "strength = 2" in out_of_range.json()["error"]


REFUSALS = [
    # (what, model, files, data, status, words in the message)
    ("not an image", "tiny", {"image": ("a.png", b"hello, world")}, None, 400,
     "image: not an image"),
    ("truncated", "tiny", {"image": ("a.png", png(photo())[:300])}, None, 400, "image:"),
    ("a bomb", "tiny", {"image": ("b.png", png_bytes(100000, 100000, 8, 2, b"\0" * 64))},
     None, 413, "declares 100000x100000 px"),
    ("over the pixel limit", "tiny", {"image": ("big.png", png(np.zeros((800, 700, 3),
                                                                        np.uint8)))},
     None, 413, "0 MP limit (--max-pixels)"),
    ("an unknown model", "nope", {"image": ("a.png", png(photo()))}, None, 404,
     "no model named 'nope' on this server (it has: tiny, adain)"),
    ("a style sent to a model without one", "tiny",
     {"image": ("a.png", png(photo())), "style": ("s.png", png(photo()))}, None, 400,
     "style: not an input of tiny (it takes: image)"),
    ("a missing image", "tiny", {"other": ("a.png", png(photo()))}, None, 400,
     "not an input"),
    ("no image field at all", "adain", None, {"strength": "0.5"}, 400,
     "missing field 'image'"),
    ("a path as a model name", "..%2F..%2Fetc", {"image": ("a.png", png(photo()))}, None,
     404, "no such endpoint"),
]


@pytest.mark.parametrize("what, model, files, data, status, words", REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_refusals_are_one_line_json(url, what, model, files, data, status, words):
    response = post(f"{url}/v1/models/{model}:stylize", files=files, data=data)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and "\n" not in message
    assert "Traceback" not in message and "/work" not in message and "site-packages" \
        not in message


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(url):
    big = b"\0" * (2**20 + 10)
    response = post(f"{url}/v1/models/tiny:stylize", files={"image": ("a.png", big)})
    assert response.status_code == 413 and "this server takes at most" in response.text

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"\0" * 2**16

    response = post(f"{url}/v1/models/tiny:predict", content=chunks())
    assert response.status_code == 413 and "over 1,048,576 bytes" in response.text
    assert post(f"{url}/v1/models/tiny:stylize", content=b"plain",
                      headers={"Content-Type": "text/plain"}).status_code == 400


def test_predict_in_tensorflow_servings_shape(url, models):
    images = [photo(37, 51), photo(37, 51, seed=2), photo(20, 24, seed=3)]
    body = {"instances": [b64(png(i)) for i in images]}
    response = post(f"{url}/v1/models/tiny:predict", json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 3 and set(predictions[0]) == {"b64"}
    for image, prediction in zip(images, predictions):
        got = decoded(base64.b64decode(prediction["b64"]))
        expected = models["tiny"].stylize_array(image)
        assert np.abs(got.astype(int) - expected).max() <= 1
    # The named form, and the columnar one.
    named = post(f"{url}/v1/models/tiny:predict",
                       json={"instances": [{"image_bytes": b64(png(images[0]))}]})
    assert named.json()["predictions"][0] == predictions[0]
    columnar = post(f"{url}/v1/models/tiny:predict",
                          json={"inputs": {"image_bytes": [b64(png(images[0]))]}})
    assert columnar.json() == {"outputs": [predictions[0]]}
    for bad, words in (({"instances": [{"b64": "%%%"}]}, "not valid base64"),
                       ({"instances": ["abc"]}, 'expected an image file as {"b64"'),
                       ({"signature_name": "other", "instances": [b64(b"x")]},
                        "signature_name 'other'"),
                       ({"rows": []}, "expected 'instances'"),
                       ({"instances": [b64(png(images[0]))] * 7}, "at most 6")):
        response = post(f"{url}/v1/models/tiny:predict", json=bad)
        assert response.status_code in (400, 413) and words in response.json()["error"]


def test_predict_matches_the_exported_saved_models_signature(url, models, tmp_path):
    """The same request body, run by kstyle serve and by the SavedModel's serving_default
    as TensorFlow Serving runs it (b64 decoded into a string tensor, the ``_bytes``
    output base64-coded), gives the same images."""
    import tensorflow as tf

    from kstyle.export import write_saved_model

    cases = {"tiny": [b64(png(photo(37, 51)))],
             "adain": [{"image_bytes": b64(png(photo(40, 48))),
                        "style_bytes": b64(png(photo(30, 36, seed=1))), "strength": 0.6}]}
    for name, instances in cases.items():
        write_saved_model(models[name].inference, tmp_path / name / "1", None)
        loaded = tf.saved_model.load(str(tmp_path / name / "1"))
        signature = loaded.signatures["serving_default"]
        inputs = list(signature.structured_input_signature[1])
        rows = [row if "b64" not in row else {"image_bytes": row} for row in instances]
        feeds = {key: tf.constant([base64.b64decode(r[key]["b64"]) if key.endswith("_bytes")
                                   else r[key] for r in rows]) for key in inputs}
        (key, outputs), = signature(**feeds).items()
        assert key == "image_bytes"
        served = post(f"{url}/v1/models/{name}:predict",
                            json={"instances": instances}).json()["predictions"]
        for output, prediction in zip(outputs.numpy(), served):
            a, b = decoded(output), decoded(base64.b64decode(prediction["b64"]))
            assert a.std() > 10, name  # a result with something to compare
            assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 2, name
    # And kstyle loads that folder as it loads any export.
    image = photo(21, 33)
    assert kstyle.load(tmp_path / "tiny")(image).shape == image.shape


def test_the_token_guards_the_api_but_not_the_health_checks(models):
    with running(create_app({"tiny": models["tiny"]}, Settings(token="s3cret"))) as url:
        assert get(f"{url}/healthz").status_code == 200
        refused = get(f"{url}/v1/models")
        assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
        wrong = get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert get(f"{url}/v1/models",
                         headers={"Authorization": "Bearer s3cret"}).status_code == 200
    with pytest.raises(KstyleError, match="--token"):
        serve(["mosaic"], host="0.0.0.0")


def test_model_names_come_from_the_command_line_only():
    assert parse_sources(["mosaic", "runs/my_run/", "b=x.tflite", "out/pix/1"]) == {
        "mosaic": "mosaic", "my_run": "runs/my_run/", "b": "x.tflite", "pix": "out/pix/1"}
    with pytest.raises(KstyleError, match="two models named 'x'"):
        parse_sources(["a/x", "b/x"])
    with pytest.raises(KstyleError, match="NAME=SOURCE"):
        parse_sources(["we ird=a"])


def test_the_queue_batches_same_shape_jobs_and_says_when_to_retry():
    gate, batches = threading.Event(), []

    def run(images):
        gate.wait(10)
        batches.append(len(images))
        return [i + 1 for i in images]

    queue = WorkQueue(max_images=5, max_batch=3)
    image = np.zeros((2, 2, 3), np.uint8)
    first = queue.submit([Job(image, run, key="a")])  # the worker waits in it
    time.sleep(0.1)
    rest = queue.submit([Job(image, run, key="a") for _ in range(3)]
                        + [Job(image, run, key="b")])
    with pytest.raises(Busy) as busy:
        queue.submit([Job(image, run, key="a")])
    assert busy.value.retry_after >= 1 and "5 images in flight" in str(busy.value)
    gate.set()
    assert all(f.result(10)[0, 0, 0] == 1 for f in first + rest)
    assert batches == [1, 3, 1]
    queue.close(10)


def test_a_full_queue_answers_503_with_retry_after_and_a_slow_one_504(models):
    gate = threading.Event()
    tiny = models["tiny"]

    class Slow:  # the tiny model, held until the gate opens
        def __getattr__(self, name):
            return getattr(tiny, name)

        def stylize_batch(self, images, **inputs):
            gate.wait(20)
            return tiny.stylize_batch(images, **inputs)

    settings = Settings(max_images=2, max_requests=8, timeout=1.5)
    with running(create_app({"slow": Slow()}, settings)) as url:
        files = {"image": ("a.png", png(photo()))}
        with ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(httpx.post, f"{url}/v1/models/slow:stylize",
                                   files=files, timeout=30) for _ in range(2)]
            time.sleep(0.5)
            busy = post(f"{url}/v1/models/slow:stylize", files=files)
            assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
            assert "busy" in busy.json()["error"]
            assert [p.result().status_code for p in pending] == [504, 504]
            assert "limit of 1.5 s" in pending[0].result().json()["error"]
        gate.set()
        time.sleep(0.2)
        assert post(f"{url}/v1/models/slow:stylize", files=files).status_code == 200


def test_sixteen_clients_get_results_or_503_and_the_server_still_answers(models):
    settings = Settings(max_images=4, max_requests=6, max_batch=4)
    image = png(photo(64, 64))
    with running(create_app({"tiny": models["tiny"]}, settings)) as url:
        def client(_):
            codes = []
            with httpx.Client(timeout=60) as session:
                for _ in range(4):
                    r = session.post(f"{url}/v1/models/tiny:stylize",
                                     files={"image": ("a.png", image)})
                    codes.append(r.status_code)
                    if r.status_code == 503:
                        assert int(r.headers["Retry-After"]) >= 1
            return codes

        with ThreadPoolExecutor(16) as pool:
            codes = [c for result in pool.map(client, range(16)) for c in result]
        assert len(codes) == 64 and set(codes) <= {200, 503} and 200 in codes
        assert get(f"{url}/readyz").status_code == 200
        assert post(f"{url}/v1/models/tiny:stylize",
                          files={"image": ("a.png", image)}).status_code == 200


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tiny_run, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen([sys.executable, "-m", "kstyle.cli", "serve",
                               f"tiny={tiny_run}", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
            time.sleep(0.3)
        big = png(photo(1536, 1536))
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.post, f"{url}/v1/models/tiny:stylize",
                                  files={"image": ("a.png", big)}, timeout=120)
            time.sleep(0.4)
            server.send_signal(signal.SIGTERM)
            response = pending.result()
        assert response.status_code == 200 and decoded(response.content).shape[:2] == (
            1536, 1536)
        assert server.wait(60) == 0
        output = server.stdout.read()
        assert "kstyle serve: stopped" in output and "Traceback" not in output
    finally:
        if server.poll() is None:
            server.kill()
    with pytest.raises(httpx.TransportError):
        get(f"{url}/healthz")


def test_models_load_in_the_background_and_readyz_says_when(tiny_run):
    from kstyle.server.models import ModelSet

    models = ModelSet({"tiny": str(tiny_run), "broken": str(tiny_run / "nowhere")},
                      log=lambda *_: None)
    with running(create_app(models)) as url:
        assert get(f"{url}/healthz").status_code == 200
        models.wait(60)
        response = get(f"{url}/readyz")
        message = response.json()["error"]
        assert response.status_code == 503 and "'broken' could not be loaded" in message
        assert "nowhere" not in message  # the reason, with its path, is in the log only
        listed = get(f"{url}/v1/models")
        assert listed.status_code == 503


def test_the_command_refuses_an_open_host_without_a_token_and_names_a_missing_extra(
        monkeypatch):
    import importlib.util

    from click.testing import CliRunner

    from kstyle.cli import main
    from kstyle.server import check_installed

    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "give --token" in result.output
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(KstyleError, match=r'needs uvicorn: pip install "kstyle\[serve\]"'):
        check_installed()


def test_a_port_in_use_or_a_model_that_cannot_load_stops_the_command(tiny_run):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(KstyleError, match=f"could not listen on 127.0.0.1:{port}"):
            serve([str(tiny_run)], port=port, log=lambda *_: None)
    with pytest.raises(KstyleError, match="stopped: nowhere: .*nowhere"):
        serve([str(tiny_run / "nowhere")], port=port, log=lambda *_: None)
