"""The query page: JSON routes (validation, concurrent jobs) and a real browser session."""
import io
import json
import shutil
import socket
import threading
import time
import urllib.request
import zipfile

import cv2
import numpy as np
import pytest

flask = pytest.importorskip("flask", reason="the page needs Flask (pip install 'classicpr[web]')")

from classicpr.datasets import load_label_polygons, load_revisitop  # noqa: E402
from classicpr.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def app(demo_set):
    out, _ = demo_set
    return create_app(out / "index", top=5, max_upload_mb=1)


def _coffee_target(demo_set):
    """A database image showing the coffee cup and the cup's box in it (from its label)."""
    out, _ = demo_set
    ds = load_revisitop(out / "data", "demo")
    labels = ds.load_labels()
    q = 1
    i = int(ds.gnd[q]["easy"][0])
    pts = np.concatenate(load_label_polygons(labels[f"{q}_{i}"]))
    return i, ds.db_file(i), [float(v) for v in (*pts.min(0), *pts.max(0))]


def _wait(client, job):
    for _ in range(600):
        state = client.get(f"/job/{job}").get_json()
        if state["status"] in ("done", "error"):
            return state
        time.sleep(0.1)
    raise AssertionError("query did not finish")


def test_routes_validate_uploads_and_boxes(app):
    client = app.test_client()
    r = client.post("/upload", data={"file": (io.BytesIO(b"not an image at all"), "x.jpg")})
    assert r.status_code == 400 and "not an image" in r.get_json()["error"]
    r = client.post("/upload", data={"file": (io.BytesIO(b"0" * (2 * 1024 * 1024)), "big.jpg")})
    assert r.status_code == 413 and "larger than 1 MB" in r.get_json()["error"]
    r = client.post("/query", json={"image": 0, "box": [5000, 5000, 6000, 6000]})
    assert r.status_code == 400 and "box" in r.get_json()["error"]
    r = client.post("/query", json={"image": 10 ** 6, "box": [0, 0, 10, 10]})
    assert r.status_code == 400 and "database index" in r.get_json()["error"]
    assert client.get("/").status_code == 200  # the server keeps serving
    thumb = cv2.imdecode(np.frombuffer(client.get("/thumb/0").data, np.uint8), cv2.IMREAD_COLOR)
    full = cv2.imdecode(np.frombuffer(client.get("/image/0").data, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape[0] == 128 < full.shape[0]
    assert abs(thumb.shape[1] / thumb.shape[0] - full.shape[1] / full.shape[0]) < 0.02
    assert client.get(f"/thumb/{10 ** 6}").status_code == 404


def test_concurrent_queries_keep_their_own_results(app, demo_set):
    """Two queries submitted together (one by upload) each get their own answer."""
    client = app.test_client()
    i, name, box = _coffee_target(demo_set)
    out, _ = demo_set
    ds = load_revisitop(out / "data", "demo")
    other = cv2.imread(str(ds.image_dir / ds.db_file(len(ds.imlist) - 1)))  # another photo
    ok, buf = cv2.imencode(".png", other)
    token = client.post("/upload", data={"file": (io.BytesIO(buf.tobytes()), "c.png")}).get_json()["upload"]
    a = client.post("/query", json={"image": i, "box": box}).get_json()["job"]
    b = client.post("/query", json={"upload": token, "box": [0, 0, 200, 200]}).get_json()["job"]
    sa, sb = _wait(client, a), _wait(client, b)
    assert sa["status"] == "done" and sb["status"] == "done"
    assert sa["results"][0]["image"] == name and sa["results"][0]["verified"]
    assert sa["results"] != sb["results"]
    mask = cv2.imdecode(np.frombuffer(client.get(f"/job/{a}/mask/1").data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert mask is not None and (mask > 127).any()
    with zipfile.ZipFile(io.BytesIO(client.get(f"/job/{a}/masks.zip").data)) as zf:
        assert any(n.startswith("001_") for n in zf.namelist())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(app):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium "
                    "chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from werkzeug.serving import make_server
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1200",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    yield driver, f"http://127.0.0.1:{port}"
    driver.quit()
    server.shutdown()


def test_page_answers_a_box_drawn_in_a_browser(browser, demo_set, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    driver, url = browser
    i, name, box = _coffee_target(demo_set)
    driver.get(url + "/")
    wait = WebDriverWait(driver, 120)
    thumb = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"#thumbs img[data-id='{i}']")))
    thumb.click()
    canvas = driver.find_element(By.ID, "canvas")
    wait.until(lambda d: d.execute_script("return document.getElementById('canvas').width") > 10)
    scale = driver.execute_script("return scale")
    w, h = canvas.size["width"], canvas.size["height"]  # CSS pixels = canvas pixels here
    x1, y1, x2, y2 = (v * scale for v in box)
    # drag from one corner of the cup to the other (offsets from the canvas centre)
    ActionChains(driver).move_to_element_with_offset(canvas, int(x1 - w / 2), int(y1 - h / 2)) \
        .click_and_hold().move_by_offset(int(x2 - x1), int(y2 - y1)).release().perform()
    driver.find_element(By.ID, "search").click()
    first = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results img.overlay")))
    wait.until(lambda d: d.execute_script(
        "const i = document.querySelector('#results img.overlay'); return i.complete && i.naturalWidth > 0"))
    assert first.is_displayed()
    assert name in driver.find_element(By.CSS_SELECTOR, "#results .res").text
    driver.save_screenshot(str(tmp_path / "page.png"))
    mask_link = driver.find_element(By.CSS_SELECTOR, "#results .res a").get_attribute("href")
    data = urllib.request.urlopen(mask_link, timeout=30).read()
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert mask is not None and 0 < (mask > 127).mean() < 0.9  # the mask is not blank


def test_page_says_when_an_upload_is_not_an_image(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver, url = browser
    driver.get(url + "/")
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is text, not a photo")
    driver.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(driver, 60).until(
        lambda d: "not an image" in d.find_element(By.ID, "message").text)
    assert json.loads(urllib.request.urlopen(url + "/images", timeout=30).read())  # still serving
