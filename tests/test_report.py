"""The HTML report renders in a headless browser (skipped where chromium is absent)."""
import shutil
import subprocess

import cv2
import pytest


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_is_self_contained(demo_set):
    out, _ = demo_set
    page = (out / "report" / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # no external assets
    assert "grid_0.png" in page and "mIoU_S" in page
    assert "<svg" in page and "<polyline" in page  # precision-recall curves
    assert "Per query (worst first)" in page and page.count("<tr>") == 5 + 1 + 1 + 3  # 3 queries


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(demo_set, tmp_path):
    out, _ = demo_set
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
           f"--screenshot={shot}", (out / "report" / "index.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 500
    # the grids are drawn: the page is not blank white
    assert (img < 200).mean() > 0.05
