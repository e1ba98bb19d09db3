import json

import numpy as np
import pytest

from classicpr.datasets import protocol_gnd
from classicpr.metrics import (average_precision, clean_pixel_scores, official_pair_iou,
                               official_pixel_scores, revisitop_map)


def ref_map(ranks, gnd):
    """Straight transcription of the revisitop loop semantics, for cross-checking."""
    aps = []
    for q, g in enumerate(gnd):
        ok, junk = set(g["ok"]), set(g["junk"])
        if not ok:
            continue
        r = [i for i in ranks[:, q] if i not in junk]
        pos = [k for k, i in enumerate(r) if i in ok]
        ap = 0.0
        for j, k in enumerate(pos):
            p0 = 1.0 if k == 0 else j / k
            p1 = (j + 1) / (k + 1)
            ap += (p0 + p1) / 2 / len(ok)
        aps.append(ap)
    return np.mean(aps)


def test_ap_exact_small_cases():
    assert average_precision(np.array([0]), 1) == 1.0
    # one positive at rank 1 (0-based) of 1: trapezoid (0 + 1/2)/2
    assert average_precision(np.array([1]), 1) == pytest.approx(0.25)
    assert average_precision(np.array([0, 2]), 2) == pytest.approx((1 + 1) / 4 + (0.5 + 2 / 3) / 4)
    assert average_precision(np.array([], int), 3) == 0.0


def test_junk_before_and_after_positives():
    ranks = np.array([[5], [1], [2], [3], [4], [0]])
    gnd = [{"ok": np.array([1, 3]), "junk": np.array([5, 2])}]
    m, aps, _, _ = revisitop_map(ranks, gnd)
    # junk 5 and 2 removed -> ranking 1, 3, 4, 0: positives at 0 and 1
    assert m == pytest.approx(1.0)
    gnd2 = [{"ok": np.array([1, 3]), "junk": np.array([0])}]  # junk after all positives
    m2, _, _, _ = revisitop_map(ranks, gnd2)
    assert m2 == pytest.approx(ref_map(ranks, gnd2))


def test_query_without_positives_is_skipped():
    ranks = np.tile(np.arange(4)[:, None], (1, 2))
    gnd = [{"ok": np.array([0]), "junk": np.array([], int)}, {"ok": np.array([], int), "junk": np.array([1])}]
    m, aps, _, _ = revisitop_map(ranks, gnd)
    assert m == 1.0 and np.isnan(aps[1])


def test_random_rankings_match_reference():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n, nq = 20, 3
        ranks = np.stack([rng.permutation(n) for _ in range(nq)], 1)
        gnd = [{"ok": rng.choice(n, 3, replace=False), "junk": rng.choice(n, 2, replace=False)}
               for _ in range(nq)]
        for g in gnd:
            g["junk"] = np.setdiff1d(g["junk"], g["ok"])
        assert revisitop_map(ranks, gnd)[0] == pytest.approx(ref_map(ranks, gnd))


def test_mp_at_k():
    ranks = np.arange(5)[:, None]
    gnd = [{"ok": np.array([0, 2]), "junk": np.array([], int)}]
    _, _, pr, _ = revisitop_map(ranks, gnd, kappas=[1, 2])
    assert pr.tolist() == [1.0, 0.5]


def test_protocols():
    g = [{"easy": [1], "hard": [2], "junk": [3]}]
    assert protocol_gnd(g, "medium")[0]["ok"].tolist() == [1, 2]
    assert sorted(protocol_gnd(g, "hard")[0]["junk"].tolist()) == [1, 3]
    assert sorted(protocol_gnd(g, "easy")[0]["junk"].tolist()) == [2, 3]


# ----- pixel metrics: clean vs official quirks, hand-made cases
GND = [{"easy": [0], "hard": [1], "junk": []}]
RANKS = np.array([[0], [1], [2]])


def test_quirk_a_easy_without_prediction_skipped_in_medium_miou():
    ious = {(0, 1): (0.8, 0.6)}
    clean = clean_pixel_scores(RANKS, GND, ious)
    assert clean["mIoU_S"]["medium"] == pytest.approx(30.0)  # (0 + 0.6) / 2
    off, _ = official_pixel_scores("x", RANKS, GND, {(0, 1): True}, ious)
    assert off["mIoU_S"]["medium"] == pytest.approx(60.0)  # easy pair skipped
    assert off["mIoU_S"]["hard"] == pytest.approx(60.0)


def test_quirk_b_negative_corner_wraps():
    label = [np.array([[10, 10], [50, 10], [50, 50], [10, 50]], float)]
    d_in, s_in = official_pair_iou(np.array([[10, 10], [50, 10], [50, 50], [10, 50]]), label)
    assert d_in == pytest.approx(1.0) and s_in == pytest.approx(1.0)
    # a prediction starting at x = -5 on the 50-px canvas: the slice -5:51 wraps to the last
    # 5 columns (45..49), so the box IoU is 40*5 / (40*40) instead of about 0.88
    d_neg, _ = official_pair_iou(np.array([[-5, 10], [50, 10], [50, 50], [-5, 50]]), label)
    assert d_neg == pytest.approx(200 / 1600)
    from classicpr.metrics import Prediction, clean_pair_iou
    d_clean, _ = clean_pair_iou(Prediction(np.array([[-5, 10], [50, 10], [50, 50], [-5, 50]], float)),
                                label, (100, 100))
    assert d_clean > 0.7


def test_quirk_c_pixel_map_thresholds_box_iou():
    ious = {(0, 0): (0.99, 0.1), (0, 1): (0.99, 0.1)}
    off, _ = official_pixel_scores("x", RANKS, GND, {(0, 0): True, (0, 1): True}, ious)
    clean = clean_pixel_scores(RANKS, GND, ious)
    assert off["pmAP_D"]["medium"] == pytest.approx(100.0)
    assert clean["pmAP_S"]["medium"] == pytest.approx(0.0)


def test_quirk_d_skipped_queries_and_all_skipped_threshold():
    gnd = [{"easy": [0], "hard": [], "junk": []}, {"easy": [1], "hard": [], "junk": []}]
    ranks = np.array([[0, 0], [1, 1], [2, 2]])
    ious = {(0, 0): (0.97, 0.97), (1, 1): (0.1, 0.1)}
    pred = {(0, 0): True, (1, 1): True}
    off, warnings = official_pixel_scores("x", ranks, gnd, pred, ious)
    clean = clean_pixel_scores(ranks, gnd, ious)
    assert off["pmAP_D"]["medium"] == pytest.approx(100.0)  # query 1 skipped at every t
    assert clean["pmAP_D"]["medium"] == pytest.approx(50.0)  # query 1 scores 0
    assert any("divides by zero" in w for w in warnings)  # hard: no query has positives


def test_quirk_e_ignored_queries_score_zero():
    gnd = [{"easy": [0], "hard": [], "junk": []}] * 64
    ranks = np.tile(np.array([[0], [1]]), (1, 64))
    ious = {(q, 0): (0.99, 0.99) for q in range(64)}
    pred = {(q, 0): True for q in range(64)}
    ox, _ = official_pixel_scores("roxford5k", ranks, gnd, pred, ious)
    other, _ = official_pixel_scores("prmini", ranks, gnd, pred, ious)
    assert other["pmAP_D"]["medium"] == pytest.approx(100.0)
    assert ox["pmAP_D"]["medium"] == pytest.approx(100.0 * 62 / 64)


@pytest.mark.shared_data
@pytest.mark.parametrize("official", [False, True])
def test_fixture_scores_reproduce_expected(prmini_root, sift_sp_dir, official):
    from classicpr.evaluate import score_result_files
    expected = json.loads((sift_sp_dir / "expected.json").read_text())
    expected = expected["official_quirks" if official else "clean"]
    got = score_result_files(prmini_root, "prmini", sift_sp_dir / "ranks.npy",
                             sift_sp_dir / "matching_result.npy", official=official)
    for metric, vals in expected.items():
        for proto, v in vals.items():
            assert got[metric][proto] == pytest.approx(v, abs=0.05), (metric, proto)


@pytest.mark.shared_data
def test_ranks_that_are_not_a_full_ranking_are_refused(prmini_root, sift_sp_dir, tmp_path):
    """A column with a repeated or unknown image id would be scored as if it were a
    ranking (a positive counted twice, an id that means nothing)."""
    from classicpr.errors import ClassicPRError
    from classicpr.evaluate import score_result_files
    ranks = np.load(sift_sp_dir / "ranks.npy")
    for what, value in (("repeated ids", ranks[1, 3]), ("ids outside", len(ranks))):
        bad = ranks.copy()
        bad[0, 3] = value
        np.save(tmp_path / "ranks.npy", bad)
        with pytest.raises(ClassicPRError, match=f"query 3.*{what}"):
            score_result_files(prmini_root, "prmini", tmp_path / "ranks.npy",
                               sift_sp_dir / "matching_result.npy")
    with pytest.raises(ClassicPRError, match="masks folder not found"):
        score_result_files(prmini_root, "prmini", sift_sp_dir / "ranks.npy",
                           sift_sp_dir / "matching_result.npy", masks_dir=tmp_path / "none")


def test_precision_recall_curve_and_per_query_scores_by_hand():
    from classicpr.metrics import per_query_scores, precision_recall_curve
    # one query, database 0..4; positives 1 and 3 ranked 1st and 3rd; junk 2 ranked 2nd
    ranks = np.array([[1], [2], [3], [0], [4]])
    gnd = [{"ok": [1, 3], "junk": [2]}]
    curve = precision_recall_curve(ranks, gnd, recall_levels=(0.0, 0.5, 1.0))
    # junk removed: positives at ranks 0 and 1 -> precision 1 at both recalls
    np.testing.assert_allclose(curve, [[0, 1], [0.5, 1], [1, 1]])
    gnd = [{"ok": [0, 4], "junk": []}]  # positives ranked 4th and 5th
    curve = precision_recall_curve(ranks, gnd, recall_levels=(0.5, 1.0))
    np.testing.assert_allclose(curve[:, 1], [2 / 5, 2 / 5])  # interpolated: best beyond
    rows = per_query_scores(ranks, [{"easy": [1], "hard": [3], "junk": [2]}],
                            {(0, 1): (0.9, 0.8), (0, 3): (0.5, 0.4)})
    # medium: positives 1 (1st) and 3 (3rd, 2nd after junk) -> AP 1; hard: 3 with 1 as junk
    assert rows[0]["AP"]["medium"] == pytest.approx(100.0)
    assert rows[0]["mIoU_S"]["medium"] == pytest.approx(60.0)
    assert rows[0]["mIoU_S"]["hard"] == pytest.approx(40.0)
