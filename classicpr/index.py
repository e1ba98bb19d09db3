"""The Index: vocabulary + inverted file + direct index + image list + config.

On disk an index is a folder::

    INDEX/features/<image>.npz     per-image SIFT features (the resumable part of a build)
    INDEX/parts/part-NNNNNN.npz    words and geometry of CHUNK images each, while building
    INDEX/index.npz                vocabulary, inverted file, direct index, names, config

``index.npz`` is a versioned, checksummed, uncompressed container (no pickle), opened
memory-mapped: only the postings and direct-index rows a query touches are read. Building
is resumable and out of core: images whose features are in ``INDEX/features`` are not
extracted again, finished parts are not assigned again, and the parts are merged into
``index.npz`` word block by word block (:func:`classicpr.invfile.merge_chunks`), so peak
memory stays bounded as the database grows (1M-image databases such as R1M). The parts are
deleted once ``index.npz`` is written. ``Index.add`` merges the existing index with parts
for the new images.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import ClassicPRError, CorruptFileError
from .features import FeatureConfig, FeatureStore, extract_to_store, rootsift
from .invfile import CHUNK_KEYS, InvertedFile, chunk_arrays, merge_chunks
from .io import LazyMappedArrays, PathLike, array_writer, list_images, load_arrays
from .parallel import run_parallel
from .vocabulary import TRAINING_PER_WORD, Vocabulary, default_vocabulary_size

log = logging.getLogger("classicpr")

INDEX_KIND = "classicpr.index"
INDEX_VERSION = 5
PART_KIND = "classicpr.index-part"
PART_VERSION = 4
#: Images per part (assignment chunk); bounds the memory of assignment.
CHUNK = 500


#: Most descriptors the Hamming-embedding medians are learned on (drawn evenly over the
#: training images; all of them in databases of up to ~300 photos). Medians of the very
#: features the index holds split each word's population evenly, so that unrelated features
#: agree on as few bits as possible: on prmini-dev, learned on all database features they
#: give 85.4 / 64.6 ASMK mAP, on a random half 81.7 / 59.1 (docs/benchmarks.md).
EMBEDDING_TRAINING = 1_000_000

#: Images per joblib task when assigning words (amortises shipping the vocabulary).
ASSIGN_BATCH = 25


def _assign_batch(args) -> List[Tuple[str, np.ndarray, np.ndarray, Tuple[int, int], np.ndarray]]:
    """Words and Hamming signatures of a batch of images, assigned in one call (large BLAS
    products are far cheaper per descriptor than one small product per image)."""
    names, store, vocab = args
    loaded = [store.load(name) for name in names]
    desc = [d for _, d, _ in loaded]
    x = rootsift(np.concatenate(desc)) if desc else np.zeros((0, 128), np.float32)
    words = vocab.assign(x, n_jobs=1)
    sigs = vocab.embedding.signatures(x, words)
    bounds = np.cumsum([0] + [len(d) for d in desc])
    return [(name, words[bounds[k]:bounds[k + 1]], kps, size, sigs[bounds[k]:bounds[k + 1]])
            for k, (name, (kps, _, size)) in enumerate(zip(names, loaded))]


def sample_training_descriptors(store: FeatureStore, names: Sequence[str], total: int,
                                seed: int = 0) -> np.ndarray:
    """Up to ``total`` RootSIFT descriptors drawn evenly from the images' stored features.

    Returns
    -------
    (M, 128) float32 array.
    """
    rng = np.random.default_rng(seed)
    per_image = max(1, total // max(len(names), 1))
    parts = []
    for name in names:
        _, desc, _ = store.load(name)
        if len(desc) > per_image:
            desc = desc[np.sort(rng.choice(len(desc), per_image, replace=False))]
        parts.append(desc)
    if not parts:
        return np.zeros((0, 128), np.float32)
    return rootsift(np.concatenate(parts))


def train_vocabulary(store: FeatureStore, names: Sequence[str], size: Optional[int] = None,
                     seed: int = 0, n_jobs: Optional[int] = None, signature_bits: int = 128
                     ) -> Vocabulary:
    """Train a vocabulary and its Hamming embedding on the stored features of ``names``.

    Parameters
    ----------
    store : FeatureStore
    names : sequence of str
        Images whose features are sampled (``TRAINING_PER_WORD`` descriptors per word,
        evenly over the images, seeded).
    size : int, optional
        Number of words (default :func:`default_vocabulary_size` of the descriptors there).
    seed : int
    n_jobs : int, optional
    signature_bits : {64, 128}
        Length of the Hamming-embedding signatures, learned on up to
        ``EMBEDDING_TRAINING`` descriptors of ``names``.

    Returns
    -------
    Vocabulary
        Of ``min(size, number of descriptors)`` words.

    Raises
    ------
    ClassicPRError
        When the images have no features at all.
    """
    n_desc = sum(store.count(n) for n in names)
    k = size or default_vocabulary_size(n_desc)
    train = sample_training_descriptors(store, names, TRAINING_PER_WORD * k, seed)
    if len(train) < 1:
        raise ClassicPRError("no features found in any image; cannot train a vocabulary")
    sample = (None if n_desc <= len(train) else  # else the k-means sample holds them all
              sample_training_descriptors(store, names, EMBEDDING_TRAINING, seed))
    return Vocabulary.train(train, min(k, len(train)), seed=seed, n_jobs=n_jobs,
                            signature_bits=signature_bits, embedding_descriptors=sample)


def _with_embedding(vocabulary: Vocabulary, store: FeatureStore, names: Sequence[str],
                    seed: int, bits: int) -> Vocabulary:
    """A given vocabulary, with a Hamming embedding learned on ``names`` if it has none."""
    if vocabulary.embedding is not None:
        return vocabulary
    log.info("the vocabulary has no Hamming embedding; learning one on the database")
    sample = sample_training_descriptors(store, names, EMBEDDING_TRAINING, seed)
    return vocabulary.with_embedding(sample, seed, bits)


def _ranking(scores: np.ndarray, top: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Image ids by decreasing score (ties by id) and their scores, the first ``top``."""
    n = len(scores)
    if top is not None and top < n:
        part = np.argpartition(-scores, top - 1)[:top]
        order = part[np.lexsort((part, -scores[part]))]
    else:
        order = np.lexsort((np.arange(n), -scores))
    return order.astype(np.int64), scores[order]


@dataclasses.dataclass
class StoredImage:
    """What the index keeps of one database image.

    Attributes
    ----------
    image_id : int
    name : str
    words : (N,) unsigned int array
        Visual word of each feature.
    keypoints : (N, 4) float32 array
        x, y, scale, orientation in original pixels.
    signatures : (N, W) uint64 array
        Hamming-embedding signature of each feature (W = bits / 64).
    size : (width, height)
    feature_scale : float
        Original pixels per pixel of the ``max_side``-px image features were detected on.
    """

    image_id: int
    name: str
    words: np.ndarray
    keypoints: np.ndarray
    signatures: np.ndarray
    size: Tuple[int, int]
    feature_scale: float


def _index_settings(words: int, seed: Optional[int], bits: int, feature_config: FeatureConfig
                    ) -> str:
    """An index's settings as a rebuild warning names them."""
    return f"{words} words (seed {seed}), {bits}-bit signatures, features {feature_config}"


def _stored_image_dir(root: Path, meta: Mapping) -> Optional[str]:
    """The database image folder an index's metadata names: the absolute path it was built
    from, or, where that is gone, the same path relative to the index folder (logged when
    neither exists)."""
    stored, relative = meta.get("image_dir"), meta.get("image_dir_from_index")
    if stored is None or Path(stored).is_dir():
        return stored
    if relative is not None and (root / relative).is_dir():
        return str(root / relative)
    log.warning("the images of index %s are not in %s any more: masks and overlays need "
                "them (give the folder: classicpr query/serve --image-dir, "
                "Index.load(root, image_dir))", root, stored)
    return stored


class Index:
    """A searchable pixel-retrieval index over a folder of images.

    Attributes
    ----------
    names : list of str
        Database image names (paths relative to ``image_dir``), index i = image id i.
    image_dir : Path
        Where the database images are (read only to compute masks).
    vocabulary : Vocabulary
    invfile : InvertedFile
    feature_config : FeatureConfig
    skipped : list of (name, reason)
        Images that could not be indexed.
    """

    def __init__(self, vocabulary: Vocabulary, feature_config: FeatureConfig = FeatureConfig(),
                 image_dir: Optional[PathLike] = None, root: Optional[PathLike] = None):
        self.vocabulary = vocabulary
        self.feature_config = feature_config
        self.invfile = InvertedFile.from_images(vocabulary.size, [], [], [])
        self.names: List[str] = []
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.root = Path(root) if root is not None else None
        self.skipped: List[Tuple[str, str]] = []
        self.timing: Dict[str, float] = {}
        #: Seed the vocabulary was trained with (None if it was given), recorded in the index.
        self.vocabulary_seed: Optional[int] = None

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, image_dir: PathLike, root: PathLike, names: Optional[Sequence[str]] = None,
              vocabulary: Optional[Vocabulary] = None, vocab_size: Optional[int] = None,
              feature_config: FeatureConfig = FeatureConfig(), seed: int = 0,
              n_jobs: Optional[int] = None, progress: bool = True,
              train_names: Optional[Sequence[str]] = None, signature_bits: int = 128,
              ordered_names: Optional[Sequence[str]] = None) -> "Index":
        """Extract features, train (or use) a vocabulary and index every image.

        An index already in ``root`` with the same settings is reused: images not in it yet
        (new ones, and those that could not be read before, e.g. replaced since) are added
        to it, at the end of its image ids.

        Parameters
        ----------
        image_dir : path-like
            Folder of database images.
        root : path-like
            Index folder (created; holds the resumable feature store and ``index.npz``).
        names : sequence of str, optional
            Image names relative to ``image_dir`` (default: every image found, sorted).
        vocabulary : Vocabulary, optional
            A trained vocabulary; if None one of ``vocab_size`` words is trained on the
            database itself (size from :func:`default_vocabulary_size` if None).
        feature_config : FeatureConfig
        seed : int
            Seeds vocabulary training: k-means' sample and initialisation, and the Hamming
            embedding's projection.
        n_jobs : int, optional
            Cores in all (None = all).
        progress : bool
            Show progress bars.
        train_names : sequence of str, optional
            The images whose features train the vocabulary (default: all of ``names``),
            e.g. a benchmark's own images and not its 1M distractors.
        signature_bits : {64, 128}
            Hamming-embedding signature length (for a given vocabulary without an
            embedding, or a trained one).
        ordered_names : sequence of str, optional
            The first names of ``names`` whose image ids must follow their order (a
            benchmark's images, before its distractors): where adding images to an
            existing index at the end would break that order (an image that could not be
            read before and now can), the index is rebuilt from its stored features
            instead.
        """
        if vocab_size is not None and not 1 <= int(vocab_size) <= 65536:
            raise ValueError(f"vocab_size must be in [1, 65536] (or None for the default), "
                             f"got {vocab_size}")
        if signature_bits not in (64, 128):
            raise ValueError(f"signature_bits must be 64 or 128, got {signature_bits}")
        image_dir, root = Path(image_dir), Path(root)
        if names is None:
            names = list_images(image_dir)
        if len(names) == 0:
            raise ClassicPRError(f"no images to index in {image_dir}")
        existing = None
        if (root / "index.npz").is_file():
            try:
                existing = cls.load(root, image_dir)
            except ClassicPRError as exc:  # older format or damaged: rebuilt from the features
                log.warning("rebuilding the index: %s", exc)
        if existing is not None:
            same_vocab = (np.array_equal(vocabulary.centroids, existing.vocabulary.centroids)
                          if vocabulary is not None else
                          (vocab_size is None or vocab_size == existing.vocabulary.size)
                          and existing.vocabulary.embedding.bits == signature_bits
                          and existing.vocabulary_seed in (None, seed))
            foreign = set(existing.names) - set(names)
            if foreign:
                raise ClassicPRError(
                    f"{root} already indexes {len(foreign)} images that are not in this "
                    f"database (e.g. {sorted(foreign)[0]}); use another index folder")
            if existing.feature_config == feature_config and same_vocab:
                if existing._extend(names, ordered_names, n_jobs, progress):
                    return existing
                log.warning("rebuilding the index in %s so that its image ids follow the "
                            "benchmark's list: images that could not be read before can now "
                            "(its features are reused)", root)
            else:
                old = existing.vocabulary
                log.warning("rebuilding the index in %s: it was built with %s, and %s was "
                            "asked for (its features are reused where their settings match)",
                            root, _index_settings(old.size, existing.vocabulary_seed,
                                                  old.embedding.bits, existing.feature_config),
                            "the given vocabulary" if vocabulary is not None else
                            _index_settings(vocab_size or old.size, seed, signature_bits,
                                            feature_config))
        store = FeatureStore(root / "features", feature_config)
        t0 = time.perf_counter()
        done, skipped = extract_to_store(image_dir, names, store, n_jobs, progress)
        t1 = time.perf_counter()
        if not done:
            raise ClassicPRError(f"none of the {len(names)} images in {image_dir} could be read")
        if vocabulary is None:
            if train_names is not None:
                wanted = set(train_names)
                train_from = [n for n in done if n in wanted]
            else:
                train_from = done
            vocabulary = train_vocabulary(store, train_from, vocab_size, seed, n_jobs,
                                          signature_bits)
        else:
            vocabulary = _with_embedding(vocabulary, store, done, seed, signature_bits)
        t2 = time.perf_counter()
        index = cls(vocabulary, feature_config, image_dir, root)
        index.skipped = list(skipped)
        index.vocabulary_seed = seed
        parts = index._write_parts(store, done, n_jobs, progress)
        index._merge(parts, include_existing=False, progress=progress)
        t3 = time.perf_counter()
        index.timing = {"features_s": t1 - t0, "vocabulary_s": t2 - t1, "assign_index_s": t3 - t2}
        return index

    def _part_path(self, k: int) -> Path:
        return self.root / "parts" / f"part-{k:06d}.npz"

    def _write_parts(self, store: FeatureStore, names: Sequence[str], n_jobs, progress
                     ) -> List[Tuple[Path, List[str]]]:
        """Assign words to ``names`` in parts of CHUNK images (``INDEX/parts``; a merge
        deletes them). A part already on disk for the same images and vocabulary is kept:
        an interrupted build or add resumes there."""
        fingerprint = self.vocabulary.fingerprint()
        parts = []
        for k, start in enumerate(range(0, len(names), CHUNK)):
            chunk, path = list(names[start:start + CHUNK]), self._part_path(k)
            if path.is_file():
                try:
                    arrays, meta = load_arrays(path, PART_KIND, PART_VERSION, mmap=True)
                    if (meta.get("names") == chunk and meta.get("vocabulary") == fingerprint
                            and set(CHUNK_KEYS) <= set(arrays)):
                        parts.append((path, chunk))
                        continue
                except ClassicPRError as exc:
                    log.warning("rewriting %s: %s", path, exc)
            jobs = [(chunk[i:i + ASSIGN_BATCH], store, self.vocabulary)
                    for i in range(0, len(chunk), ASSIGN_BATCH)]
            results = [r for batch in run_parallel(
                _assign_batch, jobs, n_jobs, desc=f"words {start + len(chunk)}/{len(names)}",
                progress=progress) for r in batch]
            arrays = chunk_arrays([r[1] for r in results], [r[2] for r in results],
                                  [r[3] for r in results], self.vocabulary.size,
                                  [r[4] for r in results])
            with array_writer(path, PART_KIND, PART_VERSION,
                              {"names": chunk, "vocabulary": fingerprint}) as w:
                for key, a in arrays.items():
                    w.add(key, a)
            parts.append((path, chunk))
        return parts

    def _merge(self, parts: Sequence[Tuple[Path, List[str]]], include_existing: bool,
               progress: bool = False) -> None:
        """Write ``index.npz`` from (the current index and) parts, reopen it memory-mapped
        and delete the parts."""
        if self.root is None:
            raise ClassicPRError("an index needs a folder to be written")
        sources: List = [self.invfile.state()] if include_existing else []
        sources += [path for path, _ in parts]
        names = (list(self.names) if include_existing else []) + [n for _, c in parts for n in c]

        opened: Dict[int, LazyMappedArrays] = {}

        def load_chunk(k: int):
            # every part was checked (reused) or written (digests computed) by _write_parts
            # in this process; the merge reads each once per word block, so it is opened
            # once, not re-hashed, and each array is mapped only while it is read
            src = sources[k]
            if isinstance(src, dict):
                return src
            if k not in opened:
                opened[k] = LazyMappedArrays(src, PART_KIND, PART_VERSION, verify=False)
            return opened[k]
        meta = {"names": names, "feature_config": dataclasses.asdict(self.feature_config),
                "config": {"features": dataclasses.asdict(self.feature_config),
                           "vocabulary": {"size": self.vocabulary.size,
                                          "seed": self.vocabulary_seed}},
                "image_dir": str(self.image_dir.resolve()) if self.image_dir else None,
                "image_dir_from_index": (os.path.relpath(self.image_dir.resolve(),
                                                         self.root.resolve())
                                         if self.image_dir else None),
                "skipped": [list(s) for s in self.skipped]}
        with array_writer(self.root / "index.npz", INDEX_KIND, INDEX_VERSION, meta) as w:
            for key, a in self.vocabulary.state().items():
                w.add(f"vocab_{key}", a)
            merge_chunks(self.vocabulary.size, load_chunk, len(sources), w, progress)
        fresh = Index.load(self.root, self.image_dir, verify=False)  # digests just written
        self.invfile, self.names = fresh.invfile, fresh.names
        for path, _ in parts:
            path.unlink(missing_ok=True)

    def add(self, names: Sequence[str], n_jobs: Optional[int] = None, progress: bool = True
            ) -> List[Tuple[str, str]]:
        """Index more images of ``image_dir`` (already indexed names are ignored): their
        parts are merged with the existing index, so idf and norms stay exact. Images that
        could not be read before are tried again.

        Returns the list of (name, reason) skipped.
        """
        if self.root is None or self.image_dir is None:
            raise ClassicPRError("Index.add needs an index with a root folder and image_dir")
        known = set(self.names)
        new = [n for n in dict.fromkeys(names) if n not in known]
        store = FeatureStore(self.root / "features", self.feature_config)
        done, skipped = extract_to_store(self.image_dir, new, store, n_jobs, progress)
        self._merge_new(store, new, done, skipped, n_jobs, progress)
        return skipped

    def _merge_new(self, store: FeatureStore, tried: Sequence[str], done: Sequence[str],
                   skipped: Sequence[Tuple[str, str]], n_jobs: Optional[int], progress: bool
                   ) -> None:
        """Index the images ``done`` of those ``tried`` (their features in ``store``) after
        the indexed ones, and record the reasons of those ``skipped`` (replacing the reasons
        of earlier tries)."""
        tried = set(tried)
        self.skipped = [s for s in self.skipped if s[0] not in tried] + list(skipped)
        if done:
            self._merge(self._write_parts(store, done, n_jobs, progress), include_existing=True,
                        progress=progress)

    def _restore_features(self, n_jobs: Optional[int], progress: bool) -> None:
        """Extract again the features of indexed images whose file is missing from the
        feature store (deleted, e.g. after a query named it unreadable); the same settings
        give the same features. A store deleted as a whole stays deleted."""
        store = self.feature_store()
        if store is None or self.image_dir is None:
            return
        missing = [n for n in self.names if not store.has(n)]
        if missing:
            log.warning("the features of %d indexed images are missing from %s; extracting "
                        "them again", len(missing), store.root)
            extract_to_store(self.image_dir, missing, store, n_jobs, progress)

    def _extend(self, names: Sequence[str], ordered_names: Optional[Sequence[str]],
                n_jobs: Optional[int], progress: bool) -> bool:
        """:meth:`add` the ``names`` not indexed yet for :meth:`build`, unless the image ids
        of the ``ordered_names`` that can be read would then not follow their order.

        Returns
        -------
        bool
            False when the index must be rebuilt to keep the order (nothing added).
        """
        self._restore_features(n_jobs, progress)
        known = set(self.names)
        new = [n for n in dict.fromkeys(names) if n not in known]
        if not new:
            log.info("index %s is complete; reusing it", self.root)
            return True
        store = FeatureStore(self.root / "features", self.feature_config)
        done, skipped = extract_to_store(self.image_dir, new, store, n_jobs, progress)
        readable = known | set(done)
        prefix = [n for n in ordered_names or () if n in readable]
        if (self.names + list(done))[: len(prefix)] != prefix:
            return False
        if done:
            log.info("index %s exists; adding %d images", self.root, len(done))
        self._merge_new(store, new, done, skipped, n_jobs, progress)
        return True

    # ------------------------------------------------------------------ querying
    def retrieve(self, words: np.ndarray, top: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Rank database images by tf-idf similarity to a bag of words.

        Returns
        -------
        ids : (n,) int64 array, best first (all images if ``top`` is None)
        scores : (n,) float32 array
        """
        return _ranking(self.invfile.query(words), top)

    def retrieve_asmk(self, words: np.ndarray, vectors: np.ndarray, alpha: float = 3.0,
                      tau: float = 0.0, top: Optional[int] = None
                      ) -> Tuple[np.ndarray, np.ndarray]:
        """Rank database images by ASMK* similarity (:meth:`InvertedFile.query_asmk`).

        Parameters
        ----------
        words : (U,) int array
            Distinct visual words of the query.
        vectors : (U, W) uint64 array
            The query's aggregated binary vector in each
            (:meth:`classicpr.embedding.HammingEmbedding.aggregate`).

        Returns
        -------
        ids : (n,) int64 array, best first (all images if ``top`` is None)
        scores : (n,) float32 array
        """
        return _ranking(self.invfile.query_asmk(words, vectors, alpha, tau), top)

    def candidate(self, image_id: int) -> "StoredImage":
        """The stored words, geometry and signatures of database image ``image_id``
        (direct index; features sorted by word)."""
        words, keypoints, signatures = self.invfile.image_features(int(image_id))
        size = tuple(int(v) for v in self.invfile.sizes[image_id])
        return StoredImage(int(image_id), self.names[image_id], words, keypoints, signatures,
                           size, max(size) / self.feature_config.max_side)


    def image_size(self, image_id: int) -> Tuple[int, int]:
        """(width, height) of database image ``image_id`` in original pixels."""
        return tuple(int(v) for v in self.invfile.sizes[image_id])

    def feature_store(self) -> Optional[FeatureStore]:
        """The raw SIFT features of the database (``INDEX/features``), or None when the
        folder is absent (an index whose feature store was deleted to save disk)."""
        if self.root is None or not (self.root / "features").is_dir():
            return None
        return FeatureStore(self.root / "features", self.feature_config)

    def image_path(self, image_id: int) -> Path:
        """Where database image ``image_id`` is (masks that read pixels need it)."""
        if self.image_dir is None:
            raise ClassicPRError("this index has no image folder (image_dir); pass one to "
                                 "Index.load to compute masks that read database images")
        return self.image_dir / self.names[image_id]

    # ------------------------------------------------------------------ persistence
    def nbytes_per_image(self) -> float:
        """Bytes of the index (inverted file + direct index) per database image: resident
        when all of it is touched (the file is memory-mapped, so a query reads far less)."""
        return sum(self.invfile.nbytes().values()) / max(len(self.names), 1)

    @classmethod
    def load(cls, root: PathLike, image_dir: Optional[PathLike] = None, verify: bool = True
             ) -> "Index":
        """Open an index folder written by :meth:`build` / :meth:`add`.

        Parameters
        ----------
        root : path-like
            The index folder (or its ``index.npz``).
        image_dir : path-like, optional
            Override where the database images are (e.g. the index was copied elsewhere).
            By default the folder it was built from, or, where that is gone, the folder at
            the same place relative to the index (both moved together); masks need the
            images, so a folder found in neither place is logged.
        verify : bool
            Check the file's SHA-256 digests (False only right after writing it).
        """
        root = Path(root)
        if root.is_file():
            root = root.parent
        arrays, meta = load_arrays(root / "index.npz", INDEX_KIND, INDEX_VERSION, mmap=True,
                                   verify=verify)
        if ("vocab_centroids" not in arrays or "vocab_he_projection" not in arrays
                or "names" not in meta or "inv_images" not in arrays
                or "inv_starts" not in arrays or "inv_multi_vectors" not in arrays):
            raise CorruptFileError(f"{root / 'index.npz'} lacks the vocabulary, image list, "
                                   "postings or their ASMK* vectors; it was written by an older "
                                   "classicpr: rebuild it")
        # the vocabulary is small and used whole: read it into memory
        vocab = Vocabulary.from_state({k[6:]: np.array(arrays.pop(k)) for k in list(arrays)
                                       if k.startswith("vocab_")})
        try:
            cfg = FeatureConfig(**meta["feature_config"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ClassicPRError(f"{root}/index.npz: bad feature config ({exc})") from None
        idx = cls(vocab, cfg, image_dir or _stored_image_dir(root, meta), root)
        idx.invfile = InvertedFile(vocab.size, arrays)
        idx.names = list(meta["names"])
        idx.skipped = [tuple(s) for s in meta.get("skipped", [])]
        idx.vocabulary_seed = meta.get("config", {}).get("vocabulary", {}).get("seed")
        return idx
