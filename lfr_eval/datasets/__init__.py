"""Datasets: manifests of images with subject ids and group labels, loaders, and the embedding
cache.

- :class:`Manifest` / :func:`read_manifest` — a validated table of ``path``, ``subject_id`` and
  attribute columns (``"unknown"`` for a missing label), with a content hash of the dataset;
- :func:`load_folder` — one sub-folder per subject; :func:`load_lfw` — LFW with its sex and
  ethnicity labels, :func:`read_lfw_pairs` — LFW's verification pairs;
- :func:`load_dataset` — any of those by path; :func:`load_dataset_subset` — a study's data (a
  path, else LFW), optionally a random subset of whole subjects;
- :class:`EmbeddingCache` and :func:`embed_manifest` — embeddings keyed by image sha256 and
  engine, failures included, so runs resume instead of recomputing.
"""

from __future__ import annotations

from lfr_eval.datasets._cache import (
    CachedEmbedding,
    EmbeddingCache,
    engine_cache_key,
)
from lfr_eval.datasets._embedding import (
    EMBEDDING_FORMATS,
    FAILURE_NO_FACE,
    ImageEmbeddings,
    choose_face,
    embed_image_file,
    embed_manifest,
    save_embeddings,
)
from lfr_eval.datasets._folder import IMAGE_EXTENSIONS, load_folder
from lfr_eval.datasets._lfw import VerificationPairs, find_lfw_images, load_lfw, read_lfw_pairs
from lfr_eval.datasets._manifest import (
    REQUIRED_COLUMNS,
    ROLE_COLUMN,
    ROLES,
    UNKNOWN,
    Manifest,
    ManifestWarning,
    read_manifest,
)
from lfr_eval.datasets._source import (
    LAYOUTS,
    OpenedDataset,
    default_face_choice,
    detect_layout,
    load_dataset,
    load_dataset_subset,
    open_dataset,
)
from lfr_eval.errors import CacheError

__all__ = [
    "EMBEDDING_FORMATS",
    "FAILURE_NO_FACE",
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "REQUIRED_COLUMNS",
    "ROLES",
    "ROLE_COLUMN",
    "UNKNOWN",
    "CacheError",
    "CachedEmbedding",
    "EmbeddingCache",
    "ImageEmbeddings",
    "Manifest",
    "ManifestWarning",
    "OpenedDataset",
    "VerificationPairs",
    "choose_face",
    "default_face_choice",
    "detect_layout",
    "embed_image_file",
    "embed_manifest",
    "engine_cache_key",
    "find_lfw_images",
    "load_dataset",
    "load_dataset_subset",
    "load_folder",
    "load_lfw",
    "open_dataset",
    "read_lfw_pairs",
    "read_manifest",
    "save_embeddings",
]
