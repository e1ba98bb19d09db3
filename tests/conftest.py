"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent."""
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is only on CI and dev machines)")
    return path


@pytest.fixture(scope="session")
def prmini_root() -> Path:
    return _need(SHARED / "prmini-dev")


@pytest.fixture(scope="session")
def sift_sp_dir() -> Path:
    return _need(SHARED / "prmini-dev-sift-sp")


@pytest.fixture(scope="session")
def revisitop_gnd() -> Path:
    return _need(SHARED / "revisitop")


@pytest.fixture(scope="session")
def rparis_sample() -> Path:
    return _need(SHARED / "rparis6k-sample" / "jpg")


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph (scikit-image's bundled 'astronaut'), BGR uint8."""
    import cv2
    from skimage import data
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory):
    """The embedded demo benchmark, evaluated once for the session."""
    from classicpr.demo import run_demo
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, seed=0, n_jobs=2, progress=False)
    return out, result
