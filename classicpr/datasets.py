"""Revisited Oxford/Paris (revisitop) data sets and PROxford/PRParis pixel labels.

Layout (the official one, any data set NAME)::

    ROOT/revisitop/data/NAME/jpg/<image>.jpg
    ROOT/revisitop/data/NAME/gnd_NAME.pkl
    ROOT/NAME_pair2labelpath.npy           (oxford_/paris_ for roxford5k/rparis6k)
    ROOT/labels/...                        labelme JSON polygons, paths as in the .npy

The ground truth files are the benchmark's own pickles (``gnd_NAME.pkl``) and a pickled
dict in ``*_pair2labelpath.npy``; they are loaded with pickle because that is the format
the benchmark publishes. Only load them from a source you trust. classicpr never writes or
reads pickles anywhere else.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import pickle
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from .errors import ClassicPRError
from .io import PathLike

log = logging.getLogger("classicpr")

PROTOCOLS = ("easy", "medium", "hard")
#: Official label index file names (PROxford / PRParis release).
OFFICIAL_LABEL_FILES = {"roxford5k": "oxford_pair2labelpath.npy",
                        "rparis6k": "paris_pair2labelpath.npy"}


def protocol_gnd(gnd: Sequence[dict], protocol: str) -> List[dict]:
    """Positives ('ok') and ignored ('junk') database indices per query under a protocol.

    easy: ok = easy, junk = junk + hard; medium: ok = easy + hard, junk = junk;
    hard: ok = hard, junk = junk + easy (Radenovic et al., CVPR 2018).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    ok_parts = {"easy": ("easy",), "medium": ("easy", "hard"), "hard": ("hard",)}[protocol]
    junk_parts = {"easy": ("junk", "hard"), "medium": ("junk",), "hard": ("junk", "easy")}[protocol]
    out = []
    for g in gnd:
        ok = np.concatenate([np.asarray(g.get(k, []), np.int64) for k in ok_parts])
        junk = np.concatenate([np.asarray(g.get(k, []), np.int64) for k in junk_parts])
        out.append({"ok": ok, "junk": junk})
    return out


def _load_pickle(path: Path, what: str):
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        raise ClassicPRError(f"{what} not found: {path}") from None
    except Exception as exc:
        raise ClassicPRError(f"{what} {path} cannot be read ({exc.__class__.__name__}: {exc})") from None


def load_label_polygons(path: PathLike) -> List[np.ndarray]:
    """Polygons of a labelme JSON file: list of (K, 2) float64 x, y arrays."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        shapes = data["shapes"]
        polys = [np.asarray(s["points"], np.float64).reshape(-1, 2) for s in shapes]
    except FileNotFoundError:
        raise ClassicPRError(f"label file not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClassicPRError(f"label file {path} is malformed ({exc.__class__.__name__}: {exc})") from None
    return [p for p in polys if len(p) >= 3 and np.all(np.isfinite(p))]


@dataclasses.dataclass
class RevisitopDataset:
    """A data set in the revisitop layout.

    Attributes
    ----------
    root : Path
        Folder holding ``revisitop/data/NAME``.
    name : str
    imlist, qimlist : list of str
        Database and query image names (no extension).
    gnd : list of dict
        Per query: 'bbx' [x1, y1, x2, y2], 'easy', 'hard', 'junk' database indices.
    ext : str
        Image file extension.
    """

    root: Path
    name: str
    imlist: List[str]
    qimlist: List[str]
    gnd: List[dict]
    ext: str = ".jpg"

    @property
    def data_dir(self) -> Path:
        return self.root / "revisitop" / "data" / self.name

    @property
    def image_dir(self) -> Path:
        return self.data_dir / "jpg"

    def db_file(self, i: int) -> str:
        """File name (relative to image_dir) of database image i."""
        return self.imlist[i] + self.ext

    def query_file(self, q: int) -> str:
        return self.qimlist[q] + self.ext

    def query_box(self, q: int) -> np.ndarray:
        return np.asarray(self.gnd[q]["bbx"], np.float64)

    def missing_images(self) -> Dict[str, List[str]]:
        """Database and query images listed by the ground truth but absent on disk."""
        have = {p.name for p in self.image_dir.glob("*" + self.ext)} if self.image_dir.is_dir() else set()
        return {"database": [n for n in self.imlist if n + self.ext not in have],
                "queries": [n for n in self.qimlist if n + self.ext not in have]}

    def restricted_to_present(self) -> "RevisitopDataset":
        """The same data set limited to the images on disk: missing database images are
        removed (and from every query's easy/hard/junk lists), missing queries dropped."""
        miss = self.missing_images()
        if not miss["database"] and not miss["queries"]:
            return self
        missing_db = set(miss["database"])
        keep = [i for i, n in enumerate(self.imlist) if n not in missing_db]
        remap = {old: new for new, old in enumerate(keep)}
        gnd, qims = [], []
        missing_q = set(miss["queries"])
        for q, g in zip(self.qimlist, self.gnd):
            if q in missing_q:
                continue
            ng = dict(g)
            for k in ("easy", "hard", "junk"):
                ng[k] = [remap[i] for i in g.get(k, []) if i in remap]
            gnd.append(ng)
            qims.append(q)
        return RevisitopDataset(self.root, self.name, [self.imlist[i] for i in keep], qims, gnd,
                                self.ext)

    # ------------------------------------------------------------ pixel labels
    def label_index_path(self) -> Path:
        """``ROOT/NAME_pair2labelpath.npy`` (official names for roxford5k / rparis6k)."""
        official = OFFICIAL_LABEL_FILES.get(self.name)
        if official and (self.root / official).is_file():
            return self.root / official
        return self.root / f"{self.name}_pair2labelpath.npy"

    def has_labels(self) -> bool:
        return self.label_index_path().is_file()

    def load_labels(self) -> Dict[str, Path]:
        """Mapping 'q_i' (query index, database index) -> label JSON path."""
        path = self.label_index_path()
        if not path.is_file():
            raise ClassicPRError(
                f"pixel labels not found: {path} (PROxford/PRParis labels are published as "
                "pixel_retrieval_benchmarks.rar; see classicpr download labels --help)")
        try:
            table = np.load(path, allow_pickle=True).item()  # the benchmark's own format
        except Exception as exc:
            raise ClassicPRError(f"{path} cannot be read ({exc.__class__.__name__})") from None
        if not isinstance(table, dict):
            raise ClassicPRError(f"{path} does not hold a dict of 'q_i' -> label path")
        return {str(k): self.root / str(v) for k, v in table.items()}


def load_revisitop(root: PathLike, name: str) -> RevisitopDataset:
    """Open data set ``name`` under ``root`` (``root/revisitop/data/name/gnd_name.pkl``).

    Raises
    ------
    ClassicPRError
        Missing folder or ground truth file, or a ground truth with the wrong structure.
    """
    root = Path(root)
    data_dir = root / "revisitop" / "data" / name
    if not data_dir.is_dir():
        raise ClassicPRError(f"data set folder not found: {data_dir} (expected the revisitop "
                             f"layout ROOT/revisitop/data/{name}/jpg + gnd_{name}.pkl)")
    g = _load_pickle(data_dir / f"gnd_{name}.pkl", "ground truth")
    try:
        imlist, qimlist, gnd = list(g["imlist"]), list(g["qimlist"]), list(g["gnd"])
        for i, qg in enumerate(gnd):
            if len(qg["bbx"]) != 4:
                raise ValueError(f"query {i} bbx has {len(qg['bbx'])} values")
            for k in ("easy", "hard", "junk"):
                if any(not 0 <= int(j) < len(imlist) for j in qg.get(k, [])):
                    raise ValueError(f"query {i} '{k}' has an index outside the database")
    except (KeyError, TypeError, ValueError) as exc:
        raise ClassicPRError(f"{data_dir / f'gnd_{name}.pkl'} is not a revisitop ground truth "
                             f"({exc.__class__.__name__}: {exc})") from None
    if len(gnd) != len(qimlist):
        raise ClassicPRError(f"gnd_{name}.pkl: {len(gnd)} gnd entries for {len(qimlist)} queries")
    return RevisitopDataset(root, name, imlist, qimlist, gnd)
