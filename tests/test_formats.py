"""Mask formats read by other tools: labelme polygons (holes included) and COCO RLE,
checked by round trips through pycocotools and through the benchmark's label reader."""
import json

import cv2
import numpy as np
import pytest

from classicpr.cli import main
from classicpr.formats import coco_result, labelme_json, mask_polygons, parse_formats
from classicpr.regions import rasterize_polygons


def _mask_with_holes():
    m = np.zeros((120, 160), bool)
    cv2.circle(m.view(np.uint8), (60, 60), 45, 1, -1)
    m[40:60, 45:75] = False  # a hole
    cv2.circle(m.view(np.uint8), (60, 85), 8, 0, -1)  # a second hole
    m[10:30, 120:150] = True  # a second component
    return m


def test_labelme_polygons_fill_back_to_the_mask_holes_included(tmp_path):
    from classicpr.datasets import load_label_polygons
    mask = _mask_with_holes()
    polys = mask_polygons(mask)
    assert len(polys) == 2  # one polygon per outer contour, holes bridged in
    doc = labelme_json(mask, "../img.jpg", score=3.5)
    assert doc["imageHeight"] == 120 and doc["imageWidth"] == 160 and doc["imagePath"] == "../img.jpg"
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    back = rasterize_polygons(load_label_polygons(path), (160, 120))
    assert not back[50, 60] and not back[85, 60]  # the holes stay empty
    assert (back ^ mask).sum() / mask.sum() < 0.03  # only the 1-px bridges differ


def test_coco_rle_round_trips_through_pycocotools():
    coco_mask = pytest.importorskip("pycocotools.mask")
    mask = _mask_with_holes()
    entry = coco_result(mask, image_id=7, score=0.9)
    json.dumps(entry)  # serialisable
    decoded = coco_mask.decode({"size": entry["segmentation"]["size"],
                                "counts": entry["segmentation"]["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    ys, xs = np.nonzero(mask)
    assert entry["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert entry["image_id"] == 7 and entry["category_id"] == 1


def test_format_names_are_checked():
    assert parse_formats("png, COCO") == ["png", "coco"]
    with pytest.raises(ValueError, match="png, labelme, coco"):
        parse_formats("png,svg")


def test_cli_query_writes_every_format(demo_set, tmp_path):
    coco_mask = pytest.importorskip("pycocotools.mask")
    from classicpr.datasets import load_revisitop
    out, _ = demo_set
    ds = load_revisitop(out / "data", "demo")
    box = ",".join(str(v) for v in ds.query_box(1))
    rc = main(["-q", "query", str(out / "index"), str(ds.image_dir / ds.query_file(1)), "--box", box,
               "--out", str(tmp_path), "--top", "3", "--format", "png,labelme,coco"])
    assert rc == 0
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    first = rows[0]
    png = cv2.imread(str(tmp_path / first["mask_png"]), cv2.IMREAD_GRAYSCALE) > 127
    label = json.loads((tmp_path / first["mask_labelme"]).read_text())
    assert (tmp_path / "labelme" / label["imagePath"]).resolve().is_file()
    coco = json.loads((tmp_path / "coco_results.json").read_text())
    entry = next(e for e in coco if e["file_name"] == first["image"])
    decoded = coco_mask.decode({"size": entry["segmentation"]["size"],
                                "counts": entry["segmentation"]["counts"].encode()}).astype(bool)
    np.testing.assert_array_equal(decoded, png)
    assert [e["score"] for e in coco] == sorted((e["score"] for e in coco), reverse=True)
