"""Unit tests per stage on real photographs (scikit-image's bundled images)."""
import cv2
import numpy as np
import pytest

from classicpr.errors import ClassicPRError, CorruptFileError, ImageReadError
from classicpr.features import FeatureConfig, detect_sift, extract_image, rootsift
from classicpr.invfile import InvertedFile, features_in_box
from classicpr.io import LazyMappedArrays, load_arrays, read_image, save_arrays
from classicpr.regions import (box_iou, is_simple_quad, mask_bbox, parse_box, project_points,
                               rasterize_polygons, validate_box)
from classicpr.verify import VerifyConfig, verify_pair, word_correspondences
from classicpr.vocabulary import Vocabulary


def test_rootsift_properties():
    d = np.random.default_rng(0).integers(0, 255, (10, 128)).astype(np.uint8)
    r = rootsift(d)
    assert r.shape == (10, 128) and r.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 1, atol=1e-5)
    # Hellinger: dot of RootSIFT = sum sqrt(p q) of L1-normalised SIFT
    p = d / d.sum(1, keepdims=True)
    np.testing.assert_allclose(r[0] @ r[1], np.sqrt(p[0] * p[1]).sum(), atol=1e-5)
    assert rootsift(np.zeros((0, 128))).shape == (0, 128)
    assert np.all(rootsift(np.zeros((1, 128))) == 0)


def test_sift_coordinates_are_original_pixels(photo, tmp_path):
    big = cv2.resize(photo, (1536, 1536))
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), big)
    kps, desc, size = extract_image(path, FeatureConfig(max_side=512))
    assert size == (1536, 1536)
    assert kps.shape[1] == 4 and desc.shape == (len(kps), 128) and desc.dtype == np.uint8
    assert kps[:, 0].max() > 1000  # coordinates scaled back up
    assert len(kps) <= FeatureConfig().max_features


def test_a_downscaled_image_keeps_its_original_size(photo, tmp_path):
    """6000 x 4000 read at 1024 px is 1024 x 683; 683 rows scaled back up would be 4002."""
    path = tmp_path / "camera.jpg"
    cv2.imwrite(str(path), cv2.resize(photo, (6000, 4000)))
    _, _, size = extract_image(path, FeatureConfig(max_side=1024))
    assert size == (6000, 4000)


def test_sift_features_equal_opencv_float_sift_rounded(photo):
    """detect_sift asks OpenCV for uint8 descriptors and reads keypoints in bulk: the
    result must be OpenCV's plain float SIFT, rounded, with every keypoint's geometry."""
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    kps, desc = detect_sift(gray, FeatureConfig(max_features=0))
    ref_kps, ref_desc = cv2.SIFT_create().detectAndCompute(gray, None)
    assert len(kps) == len(ref_kps) > 100
    np.testing.assert_array_equal(desc, np.clip(np.rint(ref_desc), 0, 255).astype(np.uint8))
    ref = np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in ref_kps], np.float32)
    np.testing.assert_array_equal(kps, ref)  # scale 1: no coordinate change


def test_tiny_and_blank_images_give_no_features():
    cfg = FeatureConfig()
    assert detect_sift(np.zeros((1, 1), np.uint8), cfg)[0].shape == (0, 4)
    assert detect_sift(np.full((200, 200), 128, np.uint8), cfg)[0].shape == (0, 4)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"hello")
    with pytest.raises(ImageReadError, match="not_an_image.jpg"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_checksummed_container_refuses_corruption(tmp_path):
    p = tmp_path / "a.npz"
    save_arrays(p, "k", 1, {"x": np.arange(1000)})
    arrays, _ = load_arrays(p, "k", 1)
    assert arrays["x"].sum() == np.arange(1000).sum()
    with pytest.raises(CorruptFileError, match="holds"):
        load_arrays(p, "other", 1)
    save_arrays(p, "k", 2, {"x": np.arange(3)})
    with pytest.raises(CorruptFileError, match="newer"):
        load_arrays(p, "k", 1)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        load_arrays(p, "k", 2)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CorruptFileError):
        load_arrays(p, "k", 2)


def test_lazy_mapped_arrays_read_what_was_written(tmp_path):
    p = tmp_path / "part.npz"
    rng = np.random.default_rng(0)
    written = {"a": rng.integers(0, 9, (50, 3)).astype(np.uint16), "b": np.zeros(0, np.int64),
               "c": rng.random(7).astype(np.float32)}
    save_arrays(p, "k", 1, written, meta={"names": ["x"]})
    lazy = LazyMappedArrays(p, "k", 1)
    assert set(lazy) == set(written)
    for _ in range(2):  # mapped afresh on every access
        for name, a in written.items():
            np.testing.assert_array_equal(lazy[name], a)
            assert lazy[name].dtype == a.dtype
    data = bytearray(p.read_bytes())
    data[data.index(written["c"].tobytes())] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):  # digests are checked once, on opening
        LazyMappedArrays(p, "k", 1)


def test_vocabulary_train_assign_save_load(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(16, 128)).astype(np.float32) * 5
    x = np.repeat(centres, 50, axis=0) + rng.normal(size=(800, 128)).astype(np.float32) * 0.1
    v = Vocabulary.train(x, 16, seed=3, n_jobs=1)
    words = v.assign(x)
    assert words.dtype == np.uint16
    # well-separated clusters map to one word each (k-means may split one and merge two)
    assert sum(len(np.unique(words[i * 50:(i + 1) * 50])) == 1 for i in range(16)) >= 10
    v.save(tmp_path / "v.npz")
    v2 = Vocabulary.load(tmp_path / "v.npz")
    np.testing.assert_array_equal(v2.assign(x), words)
    assert v.assign(np.zeros((0, 128), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="size"):
        Vocabulary.train(x, 0)
    v3 = Vocabulary.train(x, 16, seed=3, n_jobs=2)
    np.testing.assert_array_equal(v3.centroids, v.centroids)


def test_tree_assignment_agrees_with_exact(tmp_path):
    rng = np.random.default_rng(1)
    # clustered centres, as k-means words are: 64 groups of 256 words
    groups = rng.normal(size=(64, 128)).astype(np.float32)
    c = np.repeat(groups, 256, axis=0) + 0.3 * rng.normal(size=(16384, 128)).astype(np.float32)
    v = Vocabulary(c)
    assert v.uses_tree
    q = c[rng.choice(16384, 3000)] + rng.normal(size=(3000, 128)).astype(np.float32) * 0.1
    agree = (v.assign(q) == v.assign(q, exact=True)).mean()
    assert agree > 0.9
    v.save(tmp_path / "v.npz")
    np.testing.assert_array_equal(Vocabulary.load(tmp_path / "v.npz").assign(q), v.assign(q))


def test_inverted_file_tfidf_and_direct_index():
    kp = lambda n: np.c_[np.arange(n) * 10.0, np.arange(n) * 5.0, np.full(n, 3.0), np.full(n, 90.0)]
    words = [np.array([0, 1, 2]), np.array([2, 3, 3]), np.array([4, 5])]
    sizes = [(100, 100), (100, 100), (50, 50)]
    inv = InvertedFile.from_images(8, words, [kp(3), kp(3), kp(2)], sizes)
    s = inv.query(np.array([0, 1]))
    assert s.argmax() == 0 and s[2] == 0
    assert inv.query(np.array([], int)).sum() == 0
    w, k, _ = inv.image_features(1)
    assert w.tolist() == [2, 3, 3]
    np.testing.assert_allclose(k[:, :2], kp(3)[:, :2], atol=0.01)
    np.testing.assert_allclose(k[:, 3], 90.0, atol=1)
    # tf-idf by hand: word 3 occurs twice in image 1 and nowhere else
    idf = np.log(3 / np.array([1, 1, 2, 1, 1, 1, 0.5, 0.5]))
    v1 = np.array([0, 0, 1, 2, 0, 0, 0, 0]) * idf
    q = np.array([0, 0, 1, 1, 0, 0, 0, 0]) * idf
    assert abs(inv.query(np.array([2, 3]))[1] - v1 @ q / np.linalg.norm(v1) / np.linalg.norm(q)) < 1e-5
    # merging in chunks of one image == building at once, and an index merges like a chunk
    one = InvertedFile.from_images(8, words, [kp(3), kp(3), kp(2)], sizes, chunk=1)
    for key, a in inv.state().items():
        np.testing.assert_array_equal(one.state()[key], a, err_msg=key)
    from classicpr.invfile import MemorySink, chunk_arrays, merge_chunks
    first = InvertedFile.from_images(8, words[:1], [kp(3)], sizes[:1])
    rest = chunk_arrays(words[1:], [kp(3), kp(2)], sizes[1:], 8)
    sink = MemorySink()
    merge_chunks(8, [first.state(), rest].__getitem__, 2, sink)
    for key, a in inv.state().items():
        np.testing.assert_array_equal(sink.arrays[key], a, err_msg=key)
    assert inv.nbytes()["direct_index"] > 0


def test_merge_holds_one_block_of_postings(monkeypatch):
    """Postings are merged word block by word block; small blocks give the same index."""
    import classicpr.invfile as invfile
    rng = np.random.default_rng(0)
    words = [rng.integers(0, 50, rng.integers(0, 40)) for _ in range(30)]
    kps = [np.c_[rng.uniform(0, 90, (len(w), 2)), np.ones((len(w), 2))] for w in words]
    sizes = [(100, 100)] * 30
    ref = InvertedFile.from_images(50, words, kps, sizes, chunk=7)
    monkeypatch.setattr(invfile, "POSTINGS_PER_BLOCK", 5)
    small = InvertedFile.from_images(50, words, kps, sizes, chunk=7)
    for key, a in ref.state().items():
        np.testing.assert_array_equal(small.state()[key], a, err_msg=key)
    # and the postings are those of a straightforward dense count matrix
    dense = np.zeros((30, 50))
    for i, w in enumerate(words):
        np.add.at(dense[i], w, 1)
    for w in range(50):
        a, b = ref.inv_indptr[w], ref.inv_indptr[w + 1]
        assert ref.inv_images[a:b].tolist() == np.flatnonzero(dense[:, w]).tolist()
        assert ref.inv_counts[a:b].tolist() == dense[dense[:, w] > 0, w].tolist()


def test_features_in_box():
    k = np.array([[5, 5, 1, 0], [50, 50, 1, 0]], np.float32)
    assert features_in_box(k, (0, 0, 10, 10)).tolist() == [True, False]


def test_word_correspondences_exact():
    qi, di = word_correspondences(np.array([1, 2, 2, 5]), np.array([2, 1, 7, 2]), max_per_word=4)
    pairs = sorted(zip(qi.tolist(), di.tolist()))
    assert pairs == [(0, 1), (1, 0), (1, 3), (2, 0), (2, 3)]
    qi, _ = word_correspondences(np.array([2, 2, 2]), np.array([2]), max_per_word=2)
    assert len(qi) == 0


def test_known_homography_recovered_on_real_photo(photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    H = np.array([[0.9, 0.1, 20], [-0.08, 0.95, 30], [1e-4, 5e-5, 1]])
    warped = cv2.warpPerspective(gray, H, (512, 512))
    k1, d1 = detect_sift(gray)
    k2, d2 = detect_sift(warped)
    from classicpr.verify import ratio_correspondences
    qi, di = ratio_correspondences(rootsift(d1), rootsift(d2))
    box = np.array([100, 100, 400, 400.0])
    v = verify_pair(k1, k2, qi, di, box, (512, 512), VerifyConfig())
    assert v.verified
    corners = np.array([[100, 100], [400, 100], [400, 400], [100, 400.0]])
    err = np.abs(project_points(v.H, corners) - project_points(H, corners)).max()
    assert err < 3.0


def test_too_few_correspondences_is_not_an_error():
    v = verify_pair(np.zeros((2, 4)), np.zeros((2, 4)), np.array([0, 1]), np.array([0, 1]),
                    np.array([0, 0, 10, 10.0]), (100, 100))
    assert not v.verified and "tentative" in v.reason


def test_boxes_and_regions():
    assert validate_box([-10, -10, 50, 50], (100, 80)).tolist() == [0, 0, 50, 50]
    for bad in ([5, 5, 1, 1], [0, 0, 0, 10], [200, 200, 300, 300], ["a", 1, 2, 3], [1, 2, 3]):
        with pytest.raises(ClassicPRError):
            validate_box(bad, (100, 100))
    with pytest.raises(ClassicPRError, match="four numbers"):
        parse_box("1,2,x,4")
    m = rasterize_polygons([np.array([[2, 2], [6, 2], [6, 6], [2, 6.0]])], (10, 10))
    assert mask_bbox(m) == (2, 2, 6, 6) and m.sum() == 25
    assert rasterize_polygons([], (4, 3)).shape == (3, 4)
    assert box_iou((0, 0, 9, 9), (0, 0, 9, 4)) == pytest.approx(0.5)
    assert not is_simple_quad(np.array([[0, 0], [10, 10], [10, 0], [0, 10.0]]))


def test_segment_query_finds_an_object_in_its_box(photo):
    from classicpr.masks import MaskConfig, mask_polygon, segment_query
    from classicpr.objects import carry_segment
    from classicpr.regions import mask_iou
    cat = cv2.resize(photo, (200, 200))
    canvas = np.full((480, 640, 3), (40, 160, 60), np.uint8)  # a green field
    disk = np.zeros((480, 640), np.uint8)
    cv2.circle(disk, (320, 240), 100, 1, -1)
    canvas[140:340, 220:420][disk[140:340, 220:420] > 0] = cat[disk[140:340, 220:420] > 0]
    seg = segment_query(canvas, (215, 135, 425, 345), MaskConfig())
    assert seg is not None and mask_iou(seg, disk > 0) > 0.85
    # a plain box without an object inside gives no hypothesis
    assert segment_query(np.full((200, 200, 3), 90, np.uint8), (20, 20, 180, 180)) is None
    moved = carry_segment(disk > 0, np.array([[1, 0, 30], [0, 1, -20.0]]), (640, 480))
    assert moved[260, 350] and not moved[240, 221]
    poly = mask_polygon(moved)
    assert poly.shape[1] == 2 and abs(poly[:, 0].mean() - 350) < 3


def test_weak_localisation_is_opt_in():
    """Too few homography inliers for a gate of 12: no region by default; with
    min_weak_inliers a 2-point similarity still places the box (a 'weak' result)."""
    from classicpr.regions import box_corners
    rng = np.random.default_rng(0)
    box = np.array([100, 100, 300, 300], float)
    n_good, n_bad = 9, 40
    q = np.c_[rng.uniform(100, 300, (n_good + n_bad, 2)), np.full((n_good + n_bad, 2), 1.0)]
    angle, scale, t = np.deg2rad(10), 0.8, np.array([50.0, 20.0])
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    d = q.copy()
    d[:n_good, :2] = q[:n_good, :2] @ R.T + t
    d[n_good:, :2] = rng.uniform(0, 600, (n_bad, 2))
    idx = np.arange(n_good + n_bad)
    gate = dict(weak_geometry=False, acceptance="inliers", min_inliers=12)
    v = verify_pair(q, d, idx, idx, box, (640, 480), VerifyConfig(**gate))
    assert not v.verified and v.quad is None and not v.weak
    v = verify_pair(q, d, idx, idx, box, (640, 480), VerifyConfig(**gate, min_weak_inliers=6))
    assert not v.verified and v.weak
    expected = box_corners(box) @ R.T + t
    assert np.abs(v.quad - expected).max() < 2.0


def test_verification_rejects_exactly_the_planted_outliers():
    """scikit-image style known answer: 60 correspondences of a known homography, 15 of
    them moved far away at known indices; RANSAC keeps exactly the other 45 and recovers H."""
    rng = np.random.default_rng(1)
    H_true = np.array([[0.9, 0.12, 40.0], [-0.08, 1.1, 25.0], [2e-4, 1e-4, 1.0]])
    src = rng.uniform(60, 440, (60, 2))
    dst = cv2.perspectiveTransform(src.reshape(-1, 1, 2), H_true).reshape(-1, 2)
    outliers = np.array([2, 5, 11, 17, 23, 29, 31, 37, 41, 43, 47, 50, 53, 57, 59])
    dst[outliers] += rng.uniform(60, 120, (len(outliers), 2)) * rng.choice([-1, 1], (len(outliers), 2))
    kq = np.column_stack([src, np.full(60, 5.0), np.zeros(60)]).astype(np.float32)
    kd = np.column_stack([dst, np.full(60, 5.0), np.zeros(60)]).astype(np.float32)
    idx = np.arange(60)
    v = verify_pair(kq, kd, idx, idx, np.array([50.0, 50, 450, 450]), (640, 640),
                    VerifyConfig(weak_geometry=False))
    assert v.verified and v.inliers == 45
    inlier = np.setdiff1d(idx, outliers)
    kept = {tuple(p) for p in np.round(v.db_points, 3)}
    assert kept == {tuple(p) for p in np.round(kd[inlier, :2], 3)}
    corners = np.array([[50.0, 50], [450, 50], [450, 450], [50, 450]])
    expected = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), H_true).reshape(-1, 2)
    assert np.abs(v.quad - expected).max() < 0.05
