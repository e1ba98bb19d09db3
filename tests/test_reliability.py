"""Reliability: bad inputs, interrupted builds, corrupt files, determinism, fuzzing."""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from classicpr.cli import main
from classicpr.config import Config
from classicpr.pipeline import extract_query, run_query
from classicpr.errors import ClassicPRError
from classicpr.index import Index
import classicpr.io as io_module
from classicpr.io import load_arrays, read_image, read_image_and_size, read_image_at_size

ROOT = Path(__file__).resolve().parents[1]


def _photos():
    from skimage import data
    out = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        img = getattr(data, name)()
        out.append(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return out


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Ten real photos (crops, flips, rescales of scikit-image's samples)."""
    d = tmp_path_factory.mktemp("photos")
    k = 0
    for img in _photos():
        h, w = img.shape[:2]
        variants = [img, cv2.flip(img, 1)[h // 8:, : w * 7 // 8], cv2.resize(img, None, fx=1.4, fy=1.4)]
        for v in variants[: 3 if k < 6 else 2]:
            cv2.imwrite(str(d / f"img_{k:02d}.jpg"), v)
            k += 1
    return d


@pytest.fixture(scope="module")
def photo_index(photo_dir, tmp_path_factory):
    """One index of photo_dir (64 words) shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("photo_index") / "idx"
    Index.build(photo_dir, root, vocab_size=64, n_jobs=1, progress=False)
    return root


def _index_arrays(root):
    from classicpr.index import INDEX_VERSION
    arrays, meta = load_arrays(Path(root) / "index.npz", "classicpr.index", INDEX_VERSION)
    return arrays, meta


def _assert_same_index(a, b):
    arr_a, meta_a = _index_arrays(a)
    arr_b, meta_b = _index_arrays(b)
    assert meta_a["names"] == meta_b["names"]
    assert set(arr_a) == set(arr_b)
    for k in arr_a:
        np.testing.assert_array_equal(arr_a[k], arr_b[k], err_msg=k)


def test_adding_images_equals_building_at_once(photo_dir, tmp_path, monkeypatch):
    """Index.add merges the old index with parts for the new images: identical arrays
    (postings, idf, norms, direct index) to one build over all images, also when parts
    hold fewer images than the database."""
    import classicpr.index as index_module
    monkeypatch.setattr(index_module, "CHUNK", 4)
    names = sorted(p.name for p in photo_dir.glob("*.jpg"))
    first = Index.build(photo_dir, tmp_path / "grown", names=names[:6], vocab_size=64,
                        n_jobs=1, progress=False)
    first.add(names[6:], n_jobs=1, progress=False)
    assert first.names == names
    assert not list((tmp_path / "grown").glob("parts/*.npz"))  # merged, then deleted
    Index.build(photo_dir, tmp_path / "once", names=names, vocabulary=first.vocabulary,
                n_jobs=1, progress=False)
    _assert_same_index(tmp_path / "grown", tmp_path / "once")
    # Index.build on a folder holding an index of some of the images extends it
    Index.build(photo_dir, tmp_path / "rebuilt", names=names[:6], vocab_size=64, n_jobs=1,
                progress=False)
    Index.build(photo_dir, tmp_path / "rebuilt", names=names, vocab_size=64, n_jobs=1,
                progress=False)
    _assert_same_index(tmp_path / "rebuilt", tmp_path / "once")
    # reopened, it answers queries like the in-process object
    again = Index.load(tmp_path / "grown")
    q = extract_query(again, photo_dir / names[3]).words
    np.testing.assert_array_equal(again.retrieve(q)[0], first.retrieve(q)[0])


# ---------------------------------------------------------------- bad images
def test_bad_images_are_skipped_with_a_reason(photo_dir, tmp_path, caplog):
    d = tmp_path / "mixed"
    d.mkdir()
    good = sorted(photo_dir.glob("*.jpg"))[:4]
    for p in good:
        (d / p.name).write_bytes(p.read_bytes())
    (d / "text.jpg").write_text("not an image")
    (d / "empty.png").write_bytes(b"")
    data = good[0].read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 4])
    cv2.imwrite(str(d / "tiny.png"), np.zeros((1, 1), np.uint8))
    cv2.imwrite(str(d / "flat.png"), np.full((300, 300), 90, np.uint8))  # no keypoints
    cv2.imwrite(str(d / "deep16.png"), (cv2.cvtColor(_photos()[1], cv2.COLOR_BGR2GRAY).astype(np.uint16) * 64))
    rgba = np.dstack([_photos()[2], np.full(_photos()[2].shape[:2], 200, np.uint8)])
    cv2.imwrite(str(d / "rgba.png"), rgba)
    Image.fromarray(_photos()[3][..., ::-1]).convert("P").save(d / "palette.png")
    idx = Index.build(d, tmp_path / "idx", vocab_size=64, n_jobs=1, progress=False)
    skipped = dict(idx.skipped)
    assert set(skipped) == {"text.jpg", "empty.png"} | ({"truncated.jpg"} & set(skipped))
    assert "not an image" in skipped["text.jpg"] and "empty" in skipped["empty.png"]
    assert {"tiny.png", "flat.png", "deep16.png", "rgba.png", "palette.png"} <= set(idx.names)
    flat = idx.names.index("flat.png")
    assert idx.invfile.offsets[flat + 1] == idx.invfile.offsets[flat]  # indexed with 0 features
    deep = idx.names.index("deep16.png")
    assert idx.invfile.offsets[deep + 1] - idx.invfile.offsets[deep] > 100


def test_an_unreadable_image_replaced_since_is_indexed_in_its_place(photo_dir, tmp_path):
    """A benchmark's image ids follow its list: an image that could not be read, once
    replaced, is indexed at its own id (the index rebuilt from its stored features),
    exactly as if it had been readable from the start; otherwise (not one of the
    ordered_names: a distractor, a user's photo) it is added after the others."""
    d = tmp_path / "photos"
    d.mkdir()
    names = [p.name for p in sorted(photo_dir.glob("*.jpg"))[:6]]
    for n in names:
        (d / n).write_bytes((photo_dir / n).read_bytes())
    (d / names[2]).write_text("a failed download")
    kw = dict(vocab_size=64, n_jobs=1, progress=False)
    first = Index.build(d, tmp_path / "ordered", names=names, ordered_names=names[:4], **kw)
    assert first.names == names[:2] + names[3:] and [n for n, _ in first.skipped] == [names[2]]
    Index.build(d, tmp_path / "appended", names=names, ordered_names=names[:2], **kw)
    (d / names[2]).write_bytes((photo_dir / names[2]).read_bytes())
    again = Index.build(d, tmp_path / "ordered", names=names, ordered_names=names[:4], **kw)
    assert again.names == names and again.skipped == []
    _assert_same_index(tmp_path / "ordered", Index.build(d, tmp_path / "at_once", names=names,
                                                        **kw).root)
    appended = Index.build(d, tmp_path / "appended", names=names, ordered_names=names[:2], **kw)
    assert appended.names == names[:2] + names[3:] + [names[2]] and appended.skipped == []


def test_exif_orientation_is_respected(tmp_path):
    a = np.zeros((100, 200, 3), np.uint8)
    a[:50, :100] = 255
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    img, _ = read_image(tmp_path / "rot.jpg")
    assert img.shape == (200, 100)
    assert img[:100, 50:].mean() > 200 and img[:100, :50].mean() < 50


def test_very_large_image_is_read_reduced(tmp_path):
    big = cv2.resize(_photos()[0], (9000, 9000), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(tmp_path / "big.jpg"), big)
    img, scale = read_image(tmp_path / "big.jpg", max_side=1024)
    assert max(img.shape) == 1024 and scale == pytest.approx(1024 / 9000, rel=1e-3)


def test_a_file_decoded_reduced_is_read_back_in_its_original_frame(tmp_path, monkeypatch):
    """A file above MAX_DECODE_PIXELS decodes reduced, and masks index it in original
    pixels; Pillow's decompression-bomb limit (made small here, 89 / 179 Mpx really) must
    not hide the header that gives its size, nor print a warning."""
    monkeypatch.setattr(io_module, "MAX_DECODE_PIXELS", 1_000_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500_000)
    path = tmp_path / "large.jpg"
    cv2.imwrite(str(path), cv2.resize(_photos()[0], (2000, 1500)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small, scale, size = read_image_and_size(path, gray=False)
    assert size == (2000, 1500) and small.shape == (750, 1000, 3) and scale == 0.5
    assert read_image_at_size(path, size).shape == (1500, 2000, 3)
    assert Image.MAX_IMAGE_PIXELS == 500_000


def test_a_query_a_few_pixels_thin_runs(photo_index, tmp_path):
    """3 rows at GrabCut's 384-px working side round to 0: OpenCV's resize would fail."""
    cv2.imwrite(str(tmp_path / "strip.png"), cv2.resize(_photos()[0], (3000, 3)))
    assert main(["query", str(photo_index), str(tmp_path / "strip.png"), "--out",
                 str(tmp_path / "out"), "-q"]) == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["results"]


def test_an_output_folder_that_is_a_file_is_a_clear_error(photo_dir, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["index", str(photo_dir), "--out", str(tmp_path / "taken"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "classicpr: error:" in err and "Not a directory" in err and "Traceback" not in err


def test_a_query_array_of_the_wrong_kind_is_a_clear_error(photo_index):
    """Arrays from other libraries (float images, an empty crop) and a dict where a Config
    belongs fail with what was expected, not inside OpenCV; grey and BGRA arrays run."""
    index = Index.load(photo_index)
    image = _photos()[0]
    box = (10, 10, 200, 200)
    for bad in (image.astype(np.float32) / 255, image[:0]):
        with pytest.raises(ClassicPRError, match="uint8 BGR array, got"):
            run_query(index, bad, box)
    with pytest.raises(TypeError, match="config must be a Config"):
        run_query(index, image, box, {"verify.shortlist": 5})
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert run_query(index, grey, box, top=3)
    with pytest.raises(ValueError, match="vocab_size must be in"):  # not the default size
        Index.build(index.image_dir, photo_index.parent / "unused", vocab_size=0)
    assert run_query(index, np.dstack([image, grey]), box, top=3)


def test_unreadable_query_names_the_file(photo_index, tmp_path, capsys):
    (tmp_path / "q.jpg").write_bytes(b"\x00" * 10)
    assert main(["search", str(photo_index), str(tmp_path / "q.jpg")]) == 2
    assert "q.jpg" in capsys.readouterr().err


@pytest.mark.parametrize("box", ["1,2,3", "a,b,c,d", "10,10,5,5", "0,0,0,0", "5000,5000,6000,6000", "nan,0,1,1"])
def test_bad_boxes_on_the_cli(photo_dir, photo_index, tmp_path, capsys, box):
    q = sorted(photo_dir.glob("*.jpg"))[0]
    assert main(["query", str(photo_index), str(q), "--box", box, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("classicpr: error:") and "box" in err


# ---------------------------------------------------------------- interruption
def test_killed_index_build_resumes_to_identical_index(photo_dir, tmp_path):
    """SIGKILL a CLI build at several points of its run (fractions of an uninterrupted
    build's duration), then resume: the result must equal the uninterrupted build. A
    build that ends before its kill (a busier machine timed the reference) is started
    again from scratch and killed at half the delay."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cmd(out):
        return [sys.executable, "-m", "classicpr.cli", "-q", "index", str(photo_dir), "--out",
                str(out), "--vocab-size", "64", "--n-jobs", "1"]

    t0 = time.perf_counter()
    assert subprocess.run(cmd(tmp_path / "ref"), env=env, capture_output=True).returncode == 0
    full = time.perf_counter() - t0
    kills = 0
    for k, fraction in enumerate((0.3, 0.5, 0.7, 0.9)):
        out = tmp_path / f"idx{k}"
        delay = fraction * full
        for _ in range(3):
            shutil.rmtree(out, ignore_errors=True)
            proc = subprocess.Popen(cmd(out), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(delay)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            if killed:
                kills += 1
                break
            delay /= 2
        # nothing half-written under a final name
        from classicpr.index import INDEX_VERSION, PART_KIND, PART_VERSION
        for f in out.rglob("*.npz"):
            kind, version = (("classicpr.index", INDEX_VERSION) if f.name == "index.npz" else
                             (PART_KIND, PART_VERSION) if f.parent.name == "parts" else
                             ("classicpr.features", 1))
            load_arrays(f, kind, version)
        assert subprocess.run(cmd(out), env=env, capture_output=True).returncode == 0
        _assert_same_index(tmp_path / "ref", out)
    assert kills >= 3


# ---------------------------------------------------------------- corrupt files
def test_corrupt_or_foreign_index_is_refused(photo_dir, tmp_path, capsys):
    Index.build(photo_dir, tmp_path / "idx", vocab_size=64, n_jobs=1, progress=False)
    path = tmp_path / "idx" / "index.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["search", str(tmp_path / "idx"), str(sorted(photo_dir.glob("*.jpg"))[0])]) == 2
    err = capsys.readouterr().err
    assert "index.npz" in err and ("corrupt" in err or "not a readable" in err), err
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ClassicPRError):
        Index.load(tmp_path / "idx")
    np.savez(path, x=np.arange(3))
    with pytest.raises(ClassicPRError, match="not a classicpr file"):
        Index.load(tmp_path / "idx")
    with open(path, "wb") as fh:  # a pickle is never loaded
        pickle.dump({"evil": 1}, fh)
    with pytest.raises(ClassicPRError):
        Index.load(tmp_path / "idx")


# ---------------------------------------------------------------- determinism
def test_same_seed_same_index_and_rankings_across_n_jobs(photo_dir, tmp_path):
    a = Index.build(photo_dir, tmp_path / "a", vocab_size=64, seed=7, n_jobs=1, progress=False)
    b = Index.build(photo_dir, tmp_path / "b", vocab_size=64, seed=7, n_jobs=2, progress=False)
    _assert_same_index(tmp_path / "a", tmp_path / "b")
    q = sorted(photo_dir.glob("*.jpg"))[3]
    ra = [(r.image_id, r.inliers) for r in run_query(a, q, n_jobs=1)]
    rb = [(r.image_id, r.inliers) for r in run_query(b, q, n_jobs=2)]
    assert ra == rb and ra[0][1] > 12


def test_a_database_image_deleted_after_indexing_keeps_the_query_running(photo_dir, tmp_path,
                                                                         caplog):
    """GrabCut needs the database image's pixels: one deleted since indexing gets the mask
    that needs none (logged), instead of the whole query failing."""
    d = tmp_path / "photos"
    shutil.copytree(photo_dir, d)
    index = Index.build(d, tmp_path / "idx", vocab_size=64, n_jobs=1, progress=False)
    query = d / "img_00.jpg"
    image = cv2.imread(str(query))
    box = np.array([0, 0, image.shape[1] - 1, image.shape[0] - 1], np.float64)
    config = Config().updated({"mask.method": "grabcut-region"})
    (d / "img_01.jpg").unlink()
    with caplog.at_level("WARNING", logger="classicpr"):
        results = run_query(index, image, box, config)
    by_name = {r.name: r for r in results}
    assert by_name["img_01.jpg"].verified and by_name["img_01.jpg"].mask_method == "projected"
    assert by_name["img_01.jpg"].mask.any()
    assert "img_01.jpg" in caplog.text and "projected region" in caplog.text


def test_an_index_moved_with_its_images_still_finds_them(photo_dir, tmp_path, caplog):
    """A project folder holding the images and the index, moved or copied: the images are
    found where they sit relative to the index; elsewhere a warning says to give them."""
    shutil.copytree(photo_dir, tmp_path / "project" / "photos")
    Index.build(tmp_path / "project" / "photos", tmp_path / "project" / "index", vocab_size=64,
                n_jobs=1, progress=False)
    (tmp_path / "project").rename(tmp_path / "moved")
    index = Index.load(tmp_path / "moved" / "index")
    assert index.image_path(0).is_file() and "moved" in str(index.image_path(0))
    (tmp_path / "moved" / "photos").rename(tmp_path / "moved" / "renamed")
    with caplog.at_level("WARNING", logger="classicpr"):
        Index.load(tmp_path / "moved" / "index")
    assert "--image-dir" in caplog.text
    index = Index.load(tmp_path / "moved" / "index", tmp_path / "moved" / "renamed")
    assert index.image_path(0).is_file()


def test_a_deleted_features_file_is_named_and_extracted_again(photo_dir, tmp_path, caplog):
    """Ratio verification reads each candidate's features file: a damaged one stops the
    query with an error that names it and says how to repair it; the next build extracts
    the missing file again, and the query then runs as before."""
    index = Index.build(photo_dir, tmp_path / "idx", vocab_size=64, n_jobs=1, progress=False)
    image = cv2.imread(str(photo_dir / "img_00.jpg"))
    box = np.array([0, 0, image.shape[1] - 1, image.shape[0] - 1], np.float64)
    before = [(r.name, r.inliers) for r in run_query(index, image, box)]
    features = tmp_path / "idx" / "features" / "img_01.jpg.npz"
    saved = index.feature_store().load("img_01.jpg")
    features.write_bytes(b"damaged")
    with pytest.raises(ClassicPRError, match="img_01.jpg.npz.*delete it and run classicpr index"):
        run_query(index, image, box)
    features.unlink()
    with caplog.at_level("WARNING", logger="classicpr"):
        index = Index.build(photo_dir, tmp_path / "idx", vocab_size=64, n_jobs=1, progress=False)
    assert "features of 1 indexed images are missing" in caplog.text
    for a, b in zip(index.feature_store().load("img_01.jpg"), saved):
        np.testing.assert_array_equal(a, b)
    assert [(r.name, r.inliers) for r in run_query(index, image, box)] == before


# ---------------------------------------------------------------- fuzzing
def test_fuzz_malformed_inputs(photo_dir, photo_index, tmp_path):
    """264 random malformed inputs through the public API and the CLI: only clear
    ClassicPRError / ValueError (or argparse's exit 2), never another exception; every
    malformed command line exits 2."""
    from classicpr.datasets import load_label_polygons, load_revisitop
    from classicpr.regions import parse_box, validate_box
    rng = np.random.default_rng(0)
    idx_dir = photo_index
    index = Index.load(idx_dir)
    good = sorted(photo_dir.glob("*.jpg"))[0].read_bytes()
    counts = {"inputs": 0, "handled_errors": 0, "ok": 0}

    def run(fn):
        counts["inputs"] += 1
        try:
            fn()
            counts["ok"] += 1
        except (ClassicPRError, ValueError):
            counts["handled_errors"] += 1
        except SystemExit as exc:  # argparse
            assert exc.code == 2
            counts["handled_errors"] += 1

    for k in range(60):  # images: random bytes, corrupted and truncated JPEGs, odd arrays
        p = tmp_path / f"fz_{k}.{['jpg', 'png', 'tif'][k % 3]}"
        kind = k % 4
        if kind == 0:
            p.write_bytes(rng.integers(0, 256, int(rng.integers(0, 5000))).astype(np.uint8).tobytes())
        elif kind == 1:
            b = bytearray(good)
            for _ in range(20):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            p.write_bytes(bytes(b))
        elif kind == 2:
            p.write_bytes(good[: int(rng.integers(0, len(good)))])
        else:
            h, w = int(rng.integers(1, 60)), int(rng.integers(1, 60))
            cv2.imwrite(str(p.with_suffix(".png")), rng.integers(0, 256, (h, w)).astype(np.uint8))
            p = p.with_suffix(".png")
        box = rng.normal(100, 200, 4) if k % 2 else None
        run(lambda: run_query(index, p, box, Config().updated({'mask.top': 1}), top=3))
    for k in range(60):  # boxes
        choice = k % 5
        box = [rng.normal(0, 1e4, 4), [np.nan] * 4, ["x"] * 4, list(rng.normal(0, 10, 3)),
               [np.inf, 0, 1, 1]][choice]
        run(lambda: validate_box(box, (100, 80)))
        run(lambda: parse_box(",".join(str(v) for v in np.ravel(box))))
    for k in range(40):  # label JSON
        p = tmp_path / f"label_{k}.json"
        obj = [{"shapes": [{"points": rng.normal(0, 100, (int(rng.integers(0, 5)), 2)).tolist()}]},
               {"shapes": "x"}, {"nope": 1}, [1, 2], {"shapes": [{"points": [["a", "b"]]}]}][k % 5]
        p.write_text(json.dumps(obj) if k % 7 else "{not json")
        run(lambda: load_label_polygons(p))
    for k in range(20):  # gnd files
        root = tmp_path / f"gnd_{k}"
        d = root / "revisitop" / "data" / "x"
        d.mkdir(parents=True)
        obj = [{"imlist": ["a"], "qimlist": ["q"], "gnd": [{"bbx": [0, 0, 1], "easy": []}]},
               {"imlist": ["a"], "qimlist": ["q"], "gnd": [{"bbx": [0, 0, 1, 1], "easy": [5]}]},
               {"imlist": 3}, "string", {"imlist": ["a"], "qimlist": ["q", "r"], "gnd": []}][k % 5]
        with open(d / "gnd_x.pkl", "wb") as fh:
            if k % 6:
                pickle.dump(obj, fh)
            else:
                fh.write(b"garbage")
        run(lambda: load_revisitop(root, "x"))
    cli_cases = [["search"], ["query", str(idx_dir), "missing.jpg", "--out", str(tmp_path)],
                 ["index", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                 ["evaluate", str(tmp_path), "--name", "x"], ["vocab", str(photo_dir), "--out",
                                                              str(tmp_path / "v.npz"), "--vocab-size", "0"],
                 ["score", str(tmp_path), "--name", "x", "--ranks", "r", "--matching", "m"],
                 ["index", str(photo_dir), "--out", str(tmp_path / "o2"), "--max-side", "-3"],
                 ["search", str(idx_dir), str(sorted(photo_dir.glob("*.jpg"))[0]), "--top", "zero"]]
    codes = []
    for case in cli_cases * 3:
        run(lambda: codes.append(main(["-q"] + case)))
    assert all(c == 2 for c in codes), codes  # the rest exited 2 through argparse
    # both outcomes occur: some malformed inputs are still usable (a tiny PNG, a box that
    # clips), the others are refused with a clear error
    assert counts["ok"] > 0 and counts["handled_errors"] > 0, counts


def test_dask_cluster_builds_the_same_index(photo_dir, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from classicpr.parallel import use_backend
    Index.build(photo_dir, tmp_path / "local", vocab_size=64, seed=3, n_jobs=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  processes=True, dashboard_address=None) as cluster:
        with use_backend("dask", scheduler_address=cluster.scheduler_address):
            Index.build(photo_dir, tmp_path / "dask", vocab_size=64, seed=3, n_jobs=2, progress=False)
    _assert_same_index(tmp_path / "local", tmp_path / "dask")


def test_an_index_built_with_other_settings_is_rebuilt_with_a_warning(photo_dir, tmp_path,
                                                                      caplog):
    """Building into a folder that holds an index of other settings (here 128-bit
    signatures where 64 are asked for, then another seed) rebuilds it from the stored
    features, and says so, naming both settings; the same settings reuse it without a
    warning."""
    root = tmp_path / "idx"
    Index.build(photo_dir, root, vocab_size=64, n_jobs=1, progress=False)
    with caplog.at_level("WARNING", logger="classicpr"):
        again = Index.build(photo_dir, root, vocab_size=64, n_jobs=1, progress=False)
    assert again.vocabulary.embedding.bits == 128 and "rebuilding" not in caplog.text
    with caplog.at_level("WARNING", logger="classicpr"):
        rebuilt = Index.build(photo_dir, root, vocab_size=64, n_jobs=1, progress=False,
                              signature_bits=64)
    assert rebuilt.vocabulary.embedding.bits == 64
    assert "rebuilding the index" in caplog.text
    assert "128-bit signatures" in caplog.text and "64-bit signatures" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="classicpr"):
        reseeded = Index.build(photo_dir, root, vocab_size=64, n_jobs=1, progress=False,
                               signature_bits=64, seed=1)
    assert reseeded.vocabulary_seed == 1 and "(seed 0)" in caplog.text and "(seed 1)" in caplog.text
    assert not np.array_equal(reseeded.vocabulary.centroids, rebuilt.vocabulary.centroids)
