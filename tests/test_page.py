"""kstyle serve's web page in headless Chromium: a photo uploaded, a painting chosen as
the style, the strength slider moved, the result downloaded, a screenshot saved; and the
server's refusal shown on the page.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``; ``.ci/run``
installs it), driven by Playwright. Set KSTYLE_SCREENSHOTS to a folder to keep the
screenshots.
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import running

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the test extra)")
pytest.importorskip("fastapi", reason="kstyle serve needs the serve extra")

import kstyle  # noqa: E402
from kstyle.server.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def url(tiny_run):
    from kstyle.nets.adain import adain_decoder, adain_encoder, adain_stylizer

    adain = kstyle.Stylizer.from_network(
        adain_stylizer(adain_encoder(), adain_decoder(width=0.125, name="decoder")),
        {"kind": "adain"})
    with running(create_app({"tiny": kstyle.load(tiny_run), "adain": adain})) as base:
        yield base


@pytest.fixture()
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(accept_downloads=True,
                                      viewport={"width": 1100, "height": 800})
        # Anything the page asks of another host fails the test.
        outside = []
        context.route(lambda u: not u.startswith("http://127.0.0.1"),
                      lambda route: (outside.append(route.request.url), route.abort()))
        yield context.new_page()
        assert not outside, f"the page fetched from elsewhere: {outside}"
        browser.close()


def screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("KSTYLE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(keep) / path.name), full_page=True)


def test_upload_choose_a_painting_move_the_slider_and_download(url, page, tmp_path):
    photo = tmp_path / "harbour.png"
    pixels = np.random.default_rng(0).integers(0, 256, (72, 96, 3), np.uint8)
    Image.fromarray(pixels).save(photo)
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    page.select_option("#model", "adain")
    assert page.is_visible("#style-box") and page.is_visible("#strength-box")
    page.set_input_files("#photo", str(photo))
    page.locator(".paintings button").first.click()
    page.wait_for_selector(".paintings button[aria-pressed=true]")
    assert page.is_disabled("#go") is False
    # The slider, moved with the keyboard as a user would: ten steps of 0.05 down.
    page.focus("#strength")
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    assert page.text_content("#strength-value") == "0.50"
    requests = []
    page.on("request", lambda r: requests.append(r) if ":stylize" in r.url else None)
    page.click("#go")
    page.wait_for_selector("#download", state="visible", timeout=60_000)
    assert "Done" in page.text_content("#status") and page.is_hidden("#error")
    assert b'name="strength"\r\n\r\n0.5' in requests[0].post_data_buffer
    assert page.evaluate("document.getElementById('after').naturalWidth") == 96
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "harbour_adain.png"
    assert Image.open(saved).size == (96, 72)
    page.fill("#split", "30")
    screenshot(page, tmp_path / "page_result.png")
    shot = Image.open(tmp_path / "page_result.png")
    assert shot.size[0] == 1100 and shot.size[1] >= 400


def test_the_servers_refusal_is_shown_on_the_page(url, page, tmp_path):
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("shopping list: bread, milk")
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    page.select_option("#model", "tiny")
    assert page.is_hidden("#style-box") and page.is_hidden("#strength-box")
    page.set_input_files("#photo", str(not_a_photo))
    page.click("#go")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    assert "image: not an image" in page.text_content("#error")
    assert page.is_hidden("#progress") and page.is_enabled("#go")
    screenshot(page, tmp_path / "page_error.png")


def test_the_result_is_the_apis(url, page, tmp_path):
    """What the page shows is what the API gives for the same photo."""
    import httpx

    photo = tmp_path / "p.png"
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(photo)
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    page.select_option("#model", "tiny")
    page.set_input_files("#photo", str(photo))
    page.click("#go")
    page.wait_for_selector("#download", state="visible", timeout=60_000)
    shown = page.evaluate("""async () => {
        const blob = await (await fetch(document.getElementById('after').src)).blob();
        return Array.from(new Uint8Array(await blob.arrayBuffer()));
    }""")
    api = httpx.post(f"{url}/v1/models/tiny:stylize",
                     files={"image": ("p.png", photo.read_bytes())}).content
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(bytes(shown)))),
                          np.asarray(Image.open(io.BytesIO(api))))
