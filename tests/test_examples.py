"""Each example runs end to end on the demo data (tiny), and has --help."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("0*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_help(script):
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage" in r.stdout


def test_examples_run_on_demo_data(tmp_path):
    work = tmp_path / "classicpr-examples"
    for script in EXAMPLES:
        r = subprocess.run([sys.executable, str(script), "--n-jobs", "2"] if "02_" not in script.name
                           else [sys.executable, str(script)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (script.name, r.stderr[-2000:])
    assert list((work / "query").glob("*_overlay.png"))
    assert (work / "eval-demo" / "report" / "index.html").is_file()
