"""The demo in a real browser: Debian's Chromium driven by Playwright against the app served
on localhost. Upload an image and its ground truth, press Segment, check the overlay pixels
and the metrics table, keep a screenshot; bad files give a message on the page; a whole
metaphase example gets the metaphase view.

Needs the ``playwright`` package and ``/usr/bin/chromium`` (``apt-get install chromium``);
Playwright's own browser download is never used.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amfl.demo import build_demo, example_files, metaphase_example_files, serve
from amfl.demo_views import enlarged
from amfl.metaphase import analyse_metaphase
from amfl.metaphase_outputs import gallery_picture, overlay_picture
from amfl.reading import read_grey
from amfl.segmentation import analyse
from conftest import BUNDLED_MODEL, EXAMPLES_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="the playwright package is not installed "
                       "(pip install -r requirements-dev.txt)"),
    pytest.mark.skipif(not CHROMIUM.is_file() and shutil.which("chromium") is None,
                       reason="Chromium is not installed at /usr/bin/chromium "
                       "(apt-get install chromium)"),
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def setup(tmp_path_factory, bundled_segmenter):
    """The bundled trained model, the committed test-split examples, a server."""
    folder = tmp_path_factory.mktemp("browser")
    examples = example_files(EXAMPLES_DIR)
    pairs = [(Path(image), Path(truth)) for [image], [truth] in examples]
    (folder / "notes.png").write_text("not an image at all")
    app = build_demo(bundled_segmenter, examples, metaphase_examples=metaphase_example_files(EXAMPLES_DIR))
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield {"url": url, "segmenter": bundled_segmenter, "pairs": pairs, "bad": folder / "notes.png"}
    app.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, setup):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(setup["url"])
    page.wait_for_selector("#segment")
    yield page
    context.close()


def upload(page, selector: str, path: Path) -> None:
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))
    wait_for_file_name(page, selector, path.name)


def wait_for_file_name(page, selector: str, name: str) -> None:
    """Wait until a File component lists ``name`` (Gradio splits it across elements)."""
    page.wait_for_function(
        "([selector, name]) => document.querySelector(selector).innerText"
        ".replace(/\\s/g, '').includes(name)",
        arg=[selector, name],
    )


def shown_image(page, selector: str) -> np.ndarray:
    """The pixels the browser shows in an image component, fetched from the server."""
    source = page.locator(f"{selector} img").first.get_attribute("src")
    response = page.request.get(source)
    assert response.ok, source
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def test_upload_segment_overlay_and_metrics(page, setup, tmp_path):
    image, truth = setup["pairs"][0]
    upload(page, "#images", image)
    upload(page, "#truths", truth)
    page.click("#segment")
    page.locator("#status").get_by_text("Segmented 1 of 1 images.").wait_for()
    page.locator("#overlay img").wait_for()

    expected = analyse(setup["segmenter"], image, truth)
    np.testing.assert_array_equal(shown_image(page, "#overlay"), enlarged(expected.segmentation.overlay(0.5)))
    metrics = page.locator("#metrics").inner_text()
    for name in ("Acc", "Dice", "IoU", "Recall", "Precision", "FNR", "FPR", "Hausdorff"):
        assert name in metrics
    assert f"{expected.scores['dice']:.4f}" in metrics and expected.scores["dice"] > 95
    assert f"{expected.scores['hausdorff']:.4f}" in metrics
    assert page.locator("#difference img").count() == 1
    assert "example_1_labels" in page.locator("#downloads").inner_text()
    page.screenshot(path=str(tmp_path / "amfl-demo.png"), full_page=True)
    assert (tmp_path / "amfl-demo.png").stat().st_size > 10_000


def test_a_file_that_is_not_an_image_gets_a_message_not_a_traceback(page, setup):
    upload(page, "#images", setup["bad"])
    page.click("#segment")
    page.locator("#status").get_by_text("No image could be segmented.").wait_for()
    status = page.locator("#status").inner_text()
    assert "notes.png: not an image file that can be read" in status
    assert "Traceback" not in page.content()


def test_examples_fill_the_inputs(page, setup):
    page.get_by_text("Examples (test split, with ground truth)").wait_for()
    page.get_by_text("example_2.png", exact=True).first.click()
    wait_for_file_name(page, "#images", "example_2.png")
    wait_for_file_name(page, "#truths", "example_2_label.png")


def test_the_page_names_the_model_but_not_its_server_path(page):
    assert "Model: space/model." in page.locator("body").inner_text()
    assert str(BUNDLED_MODEL) not in page.content()


def test_a_whole_metaphase_example_gets_the_metaphase_view(page, setup, tmp_path):
    [image] = [Path(image) for [image], _, _ in metaphase_example_files(EXAMPLES_DIR) if "A0103XYD" in image]
    page.get_by_text("Examples of whole metaphases").wait_for()
    page.get_by_text(image.name, exact=True).first.click()
    wait_for_file_name(page, "#images", image.name)
    assert page.locator("#mode").get_by_label("Whole metaphase").is_checked()
    page.click("#segment")
    page.locator("#status").get_by_text("Analysed 1 of 1 images as whole metaphases.").wait_for()
    grey = read_grey(image)[0]
    expected = analyse_metaphase(grey, setup["segmenter"])
    page.locator("#metaphase-summary").get_by_text(f"{expected.count} chromosomes counted in {image.name}").wait_for()
    page.locator("#metaphase-overlay img").wait_for()
    page.locator("#metaphase-gallery img").wait_for()
    np.testing.assert_array_equal(shown_image(page, "#metaphase-overlay"), overlay_picture(grey, expected))
    np.testing.assert_array_equal(shown_image(page, "#metaphase-gallery"), gallery_picture(grey, expected))
    page.locator("#crop-view").wait_for(state="hidden")
    assert page.locator("#overlay").is_hidden() and page.locator("#metaphase-table").is_visible()
    for name in (f"{image.stem}_instances.png", f"{image.stem}_gallery.png", "results.csv"):
        wait_for_file_name(page, "#metaphase-downloads", name)
    page.screenshot(path=str(tmp_path / "amfl-metaphase.png"), full_page=True)
