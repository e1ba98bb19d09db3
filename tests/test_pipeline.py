"""End-to-end tests: the demo, the CLI, and the real prmini-dev / RParis6k data."""
import json
import subprocess
import sys

import numpy as np
import pytest

from classicpr.cli import main
from classicpr.errors import ClassicPRError
from classicpr.pipeline import extract_query


def test_demo_runs_end_to_end(demo_set):
    out, result = demo_set
    assert result["mAP"]["medium"] >= 90.0
    assert result["mIoU_S"]["medium"] >= 60.0
    assert (out / "report" / "index.html").is_file()
    assert (out / "report" / "grid_0.png").is_file()
    ranks = np.load(out / "export" / "ranks.npy")
    assert ranks.shape == (13, 3)


def test_cli_query_writes_masks_and_overlays(demo_set, tmp_path):
    out, _ = demo_set
    q = out / "data" / "revisitop" / "data" / "demo" / "jpg" / "coffee_query.jpg"
    from classicpr.datasets import load_revisitop
    ds = load_revisitop(out / "data", "demo")
    box = ",".join(str(v) for v in ds.query_box(1))
    rc = main(["-q", "query", str(out / "index"), str(q), "--box", box, "--out", str(tmp_path), "--top", "3"])
    assert rc == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    rows = saved["results"]
    assert rows[0]["image"].startswith("coffee") and rows[0]["verified"]
    assert rows[0]["relay"] is None  # verified with the query itself
    assert all(r["relay"] is None or r["verified"] for r in rows)
    assert saved["config"]["mask"]["method"] == "grabcut" and saved["config"]["verify"]["shortlist"] == 100
    assert list((tmp_path / "overlays").glob("*.png"))


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    assert main(["search", str(tmp_path / "nope"), "x.jpg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("classicpr: error:") and "Traceback" not in err
    assert main(["evaluate", str(tmp_path), "--name", "roxford5k"]) == 2
    assert "data set folder not found" in capsys.readouterr().err


def test_cli_help_for_every_command():
    for cmd in ("vocab", "index", "search", "query", "evaluate", "score", "demo"):
        r = subprocess.run([sys.executable, "-m", "classicpr.cli", cmd, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "usage" in r.stdout


@pytest.mark.shared_data
def test_prmini_dev_end_to_end(prmini_root, tmp_path):
    from classicpr.evaluate import evaluate_benchmark
    r = evaluate_benchmark(prmini_root, "prmini", tmp_path / "index", n_jobs=2,
                           export_dir=tmp_path / "export", progress=False)
    # the default measures 94.4 / 88.1 (image mAP) and 70.5 / 38.4 (S-mIoU) here
    # (docs/benchmarks.md); these bounds catch a regression, not run-to-run noise
    assert r["mAP"]["medium"] > 85 and r["mAP"]["hard"] > 70
    assert r["mIoU_S"]["medium"] > 60
    assert (tmp_path / "export" / "matching_result.npy").is_file()
    assert len(list((tmp_path / "export" / "masks").glob("*.png"))) > 20


@pytest.mark.shared_data
def test_rparis_sample_landmarks_retrieve_each_other(rparis_sample, revisitop_gnd, tmp_path):
    from classicpr.index import Index
    names = sorted(p.name for p in rparis_sample.glob("*.jpg"))
    landmark = {n: n.split("_")[1] for n in names}
    index = Index.build(rparis_sample, tmp_path / "idx", names=names, n_jobs=2, progress=False)
    hits = 0
    for n in names:
        ids, _ = index.retrieve(extract_query(index, rparis_sample / n).words, top=2)
        other = [index.names[i] for i in ids if index.names[i] != n][0]
        hits += landmark[other] == landmark[n]
    assert hits / len(names) >= 0.7, hits


@pytest.mark.shared_data
def test_missing_images_are_listed(revisitop_gnd, tmp_path):
    import shutil
    from classicpr.datasets import load_revisitop
    from classicpr.errors import ClassicPRError
    from classicpr.evaluate import check_benchmark
    d = tmp_path / "revisitop" / "data" / "rparis6k"
    (d / "jpg").mkdir(parents=True)
    shutil.copy(revisitop_gnd / "gnd_rparis6k.pkl", d)
    ds = load_revisitop(tmp_path, "rparis6k")
    with pytest.raises(ClassicPRError, match="6322 database images"):
        check_benchmark(ds, False, False)


def test_bench_smoke(tmp_path):
    from classicpr.bench import format_table, run_bench
    r = run_bench([6, 10], str(tmp_path / "b.json"), str(tmp_path / "w"), n_jobs=2, n_queries=1,
                  exhaustive_queries=1, overhead_images=12, repeats=1, vocab_size=64)
    assert set(r["results"]) == {"6", "10"}
    # the overhead ratios get the images they ask for, even beyond the largest size
    assert len(list((tmp_path / "w" / "images").glob("*.jpg"))) == 12
    assert len(r["build_overhead_per_run"]) == 1
    row = r["results"]["10"]
    assert row["n"] == 10 and row["index_bytes_per_image"] > 0 and row["peak_rss_mb"] > 50
    assert row["query_ms"]["total"] > 0 and row["exhaustive_ms_per_query"] > 0
    q = row["query_ms"]  # the total is the sum of the timed query stages
    stages = ("retrieval", "verification", "masks", "relay", "neighbours")
    assert abs(q["total"] - sum(q[k] for k in stages)) < 1e-6 * max(q["total"], 1.0)
    assert r["build_overhead_vs_bare_sift"] > 0.5 and r["speedup_2_jobs"] > 0
    assert r["hardware_speedup_2"] > 0.5
    table = format_table(r)
    assert "n_jobs=2 speedup" in table and "relay ms" in table and "nbrs ms" in table
    assert json.loads((tmp_path / "b.json").read_text())["sizes"] == [6, 10]


def test_demo_is_deterministic(demo_set, tmp_path):
    from classicpr.demo import run_demo
    out, result = demo_set
    again = run_demo(tmp_path / "again", seed=0, n_jobs=1, progress=False)
    assert again["mAP"] == result["mAP"] and again["mIoU_S"] == result["mIoU_S"]
    np.testing.assert_array_equal(np.load(tmp_path / "again" / "export" / "ranks.npy"),
                                  np.load(out / "export" / "ranks.npy"))


@pytest.mark.shared_data
def test_published_homographies_recovered_on_prmini_planar_pairs(prmini_root):
    """The label of a planar prmini-dev pair is the query box projected by the published
    homography: the verified quad must land on it within a few pixels."""
    from classicpr.datasets import load_revisitop
    from classicpr.evaluate import planar_pair_correspondences
    from classicpr.regions import corner_error
    from classicpr.verify import VerifyConfig, verify_pair
    errors, n_pairs = [], 0
    for _, _, box, qk, dk, qi, di, size, gt in planar_pair_correspondences(
            load_revisitop(prmini_root, "prmini")):
        n_pairs += 1
        v = verify_pair(qk, dk, qi, di, box, size, VerifyConfig(), max(size) / 1024)
        if not v.verified:
            continue
        # labels are clipped to the image: corners inside it against the nearest label vertex
        err = corner_error(v.quad, gt, size)
        if err is not None:
            errors.append(err / np.hypot(*size))
    assert n_pairs == 21 and len(errors) >= 15, (n_pairs, len(errors))
    # corner error within 1 % of the image diagonal (a few pixels) on every verified pair
    assert max(errors) < 0.01, sorted(errors)[-3:]


def test_evaluate_with_distractors(demo_set, tmp_path):
    """R1M-style evaluation: distractor images join the database after the benchmark's own,
    rankings cover both, and the verified matches still come first."""
    from classicpr.bench import make_distractors
    from classicpr.evaluate import Distractors, evaluate_benchmark
    out, plain = demo_set
    make_distractors(tmp_path / "dis", 6, seed=1)
    r = evaluate_benchmark(out / "data", "demo", tmp_path / "idx", n_jobs=2, progress=False,
                           export_dir=tmp_path / "exp", distractors=Distractors(tmp_path / "dis"))
    assert r["database"] == plain["database"] + 6 and r["distractors"] == 6
    ranks = np.load(tmp_path / "exp" / "ranks.npy")
    plain_ranks = np.load(out / "export" / "ranks.npy")
    assert ranks.shape == (plain["database"] + 6, plain["queries"])
    for q in range(ranks.shape[1]):
        assert sorted(ranks[:, q]) == list(range(len(ranks)))
        assert ranks[0, q] == plain_ranks[0, q]  # the best verified match does not change
    assert abs(r["mAP"]["medium"] - plain["mAP"]["medium"]) < 15
    # the same folder with other distractors is refused, not silently mixed
    make_distractors(tmp_path / "dis2", 3, seed=2)
    with pytest.raises(ClassicPRError, match="another index folder"):
        evaluate_benchmark(out / "data", "demo", tmp_path / "idx", n_jobs=1, progress=False,
                           distractors=Distractors(tmp_path / "dis2", ["nope.jpg"]))


def test_all_cores_verify_in_several_batches(demo_set, monkeypatch):
    """n_jobs=-1 (all cores) splits the shortlist into batches, as n_jobs=2 does."""
    import classicpr.pipeline as pipeline
    from classicpr.config import VerifyConfig
    from classicpr.index import Index
    from classicpr.parallel import effective_n_jobs
    out, _ = demo_set
    index = Index.load(out / "index")
    ds_dir = out / "data" / "revisitop" / "data" / "demo" / "jpg"
    query = pipeline.extract_query(index, ds_dir / "coffee_query.jpg")
    batches = []
    real = pipeline.run_parallel

    def spy(func, jobs, n_jobs=None, **kw):
        batches.append(len(jobs))
        return real(func, jobs, 1, **kw)
    monkeypatch.setattr(pipeline, "run_parallel", spy)
    shortlist = list(range(len(index.names)))
    plain = VerifyConfig(synthesis_candidates=0)
    for n_jobs in (-1, None, 2):
        pipeline.verify_shortlist(index, query, shortlist, plain, n_jobs=n_jobs)
    expected = min(len(shortlist), 4 * effective_n_jobs(-1))
    assert batches == [expected, expected, min(len(shortlist), 8)]
    assert expected > 1


def test_object_masks_do_not_need_the_database_images(demo_set):
    """'grabcut' (the default) and 'projected' masks come from the index alone; only
    'grabcut-region' reads database images, and says so when it cannot."""
    from classicpr.config import Config
    from classicpr.datasets import load_revisitop
    from classicpr.index import Index
    from classicpr.pipeline import run_query
    out, _ = demo_set
    ds = load_revisitop(out / "data", "demo")
    index = Index.load(out / "index")
    index.image_dir = None
    q, box = ds.image_dir / ds.query_file(1), ds.query_box(1)
    for method in ("grabcut", "projected"):
        res = run_query(index, q, box, Config().updated({"mask.method": method}), top=3)
        assert res[0].verified and res[0].mask is not None and res[0].mask.any()
    with pytest.raises(ClassicPRError, match="image folder"):
        run_query(index, q, box, Config().updated({"mask.method": "grabcut-region"}), top=3)


def test_cli_takes_negative_box_values_and_warns_on_a_featureless_box(demo_set, tmp_path, caplog):
    """'--box -50,...' is a box, not an option; a box without features gives a clear
    warning (log and results.json) instead of a silent ranking of zeros."""
    import cv2
    out, _ = demo_set
    q = out / "data" / "revisitop" / "data" / "demo" / "jpg" / "coffee_query.jpg"
    rc = main(["-q", "query", str(out / "index"), str(q), "--box", "-50,-50,300,300",
               "--out", str(tmp_path / "neg"), "--top", "2"])
    assert rc == 0
    saved = json.loads((tmp_path / "neg" / "results.json").read_text())
    assert saved["query"]["box"] == "-50,-50,300,300" and saved["warnings"] == []
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((300, 400, 3), 128, np.uint8))
    with caplog.at_level("WARNING", logger="classicpr"):
        rc = main(["-q", "query", str(out / "index"), str(flat), "--box", "10,10,200,200",
                   "--out", str(tmp_path / "flat"), "--top", "2"])
    assert rc == 0
    saved = json.loads((tmp_path / "flat" / "results.json").read_text())
    assert saved["query"]["features"] == 0 and "holds only 0 SIFT features" in saved["warnings"][0]
    assert any("holds only 0" in r.getMessage() for r in caplog.records)


def test_cli_output_into_a_closed_pipe_ends_quietly(demo_set, monkeypatch, capsys):
    """'classicpr search ... | head' : the reader closes the pipe; no traceback."""
    import os
    out, _ = demo_set
    q = out / "data" / "revisitop" / "data" / "demo" / "jpg" / "coffee_query.jpg"
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed)
    rc = main(["search", str(out / "index"), str(q), "--top", "5"])
    monkeypatch.undo()
    assert rc == 141
    assert "Traceback" not in capsys.readouterr().err


def test_search_expands_the_query_with_reliable_images(demo_set, capsys):
    """'classicpr search --expansion hqe': on the embedded demo, whose objects are pasted
    into photos that other queries use too, the ranking alone puts an unrelated image of
    the same photo above a positive for some query; Hamming query expansion with the
    reliable images' matched features ranks every query's positives first."""
    from classicpr.datasets import load_revisitop
    out, _ = demo_set
    ds = load_revisitop(out / "data", "demo")

    def first_negative_after_positives(extra):
        worst = []
        for q in range(len(ds.qimlist)):
            box = ",".join(str(v) for v in ds.query_box(q))
            assert main(["search", str(out / "index"), str(ds.image_dir / ds.query_file(q)),
                         "--box", box, "--top", str(len(ds.imlist))] + extra) == 0
            names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
            positives = {ds.db_file(i) for i in ds.gnd[q]["easy"] + ds.gnd[q]["hard"]}
            junk = {ds.db_file(i) for i in ds.gnd[q]["junk"]}
            ranked = [n for n in names if n not in junk]
            worst.append(all(n in positives for n in ranked[: len(positives)]))
        return worst

    assert not all(first_negative_after_positives([]))
    assert all(first_negative_after_positives(["--expansion", "hqe", "--set",
                                               "retrieval.expansion_region=box"]))
