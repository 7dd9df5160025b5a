"""``lfr-eval embed``: a folder, LFW copy or manifest into an embeddings file (resumable)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lfr_eval.cli._common import engine_options, workspace_option
from lfr_eval.datasets._cache import EmbeddingCache
from lfr_eval.datasets._embedding import FaceChoice
from lfr_eval.faces import EngineChoice, FaceEngine
from lfr_eval.wording import plural

if TYPE_CHECKING:
    from lfr_eval.datasets import Manifest
    from lfr_eval.distributed import ClusterSpec

#: A click command function the option decorators return unchanged in type.
CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def dataset_options(func: CommandFunction) -> CommandFunction:
    """``SOURCE`` argument plus ``--layout``, ``--labels``, ``--attributes``, ``--limit``."""
    options = [
        click.argument("source", type=click.Path(exists=True)),
        click.option(
            "--layout",
            type=click.Choice(["auto", "manifest", "lfw", "folder"]),
            default="auto",
            show_default=True,
            help="How SOURCE is laid out: a manifest (.csv/.parquet with path, subject_id and "
            "group columns), LFW (its own layout or a user's download), or one sub-folder per "
            "subject. 'auto' decides from the path.",
        ),
        click.option(
            "--labels",
            type=click.Path(exists=True, file_okay=False),
            default=None,
            help="LFW labels folder (male_names.txt, female_names.txt, race_by_person.json). "
            "Default SOURCE/labels; without one every label is 'unknown'.",
        ),
        click.option(
            "--attributes",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="Folder layout: per-subject table (subject_id + group columns, CSV/Parquet).",
        ),
        click.option(
            "--upsample",
            type=click.IntRange(min=0, max=3),
            default=None,
            help="dlib detector: times the image is doubled before detection. Default by "
            "layout, as measured (benchmarks/RESULTS.md): 0 for LFW (aligned 250x250 "
            "portraits: same faces found, 4x cheaper), 1 otherwise (finds faces down to "
            "~40 px).",
        ),
        click.option(
            "--limit",
            type=click.IntRange(min=1),
            default=None,
            help="Use a random subset of whole subjects with at most this many images "
            "(a quick run; subjects are never split).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def cache_options(func: CommandFunction) -> CommandFunction:
    """``--cache``, ``--no-cache``, ``--workers``, ``--scheduler``, ``--face``."""
    options = [
        click.option(
            "--cache",
            "cache_path",
            type=click.Path(dir_okay=False),
            default=None,
            help="Embedding cache (SQLite). Default WORKSPACE/cache/embeddings.sqlite.",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Processes embedding in parallel, each with its own engine: a local Dask "
            "cluster of N workers when dask is installed (the distributed extra), else a "
            "process pool.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="tcp://HOST:PORT",
            help="Embed on a running Dask cluster (dask scheduler, dask-jobqueue, Kubernetes). "
            "Image paths must resolve on every worker. Overrides --workers.",
        ),
        click.option(
            "--face",
            "face_choice",
            type=click.Choice(["largest", "central"]),
            default=None,
            help="Which face stands for an image with several: the largest, or the one nearest "
            "the centre. Default: central for LFW (its subject is centred), largest otherwise.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def open_dataset(
    source: str,
    layout: str,
    labels: str | None,
    attributes: str | None,
    limit: int | None,
    seed: int = 0,
) -> tuple[Manifest, str]:
    """Load the dataset (:func:`lfr_eval.datasets.open_dataset`) and report it on stderr."""
    from lfr_eval.datasets import open_dataset as open_source

    opened = open_source(
        source, layout, labels=labels, attributes=attributes, limit=limit, seed=seed
    )
    for message in opened.warnings:
        click.echo(f"warning: {message}", err=True)
    click.echo(opened.describe(), err=True)
    return opened.manifest, opened.layout


def default_upsample(upsample: int | None, layout: str) -> int:
    """The dlib detector's upsampling: as asked, else 0 for LFW and 1 otherwise.

    Measured on 200 LFW images (benchmarks/RESULTS.md): upsample 0 and 1 find a face in the
    same 198 images, and 0 costs 8.5 ms against 33 ms an image; on a 640x480 frame with six
    faces 40-60 px between the eyes, 0 finds 4 and 1 finds all 6.
    """
    if upsample is not None:
        return int(upsample)
    return 0 if layout == "lfw" else 1


def cluster_spec(workers: int, scheduler: str | None) -> ClusterSpec | None:
    """The :class:`~lfr_eval.distributed.ClusterSpec` ``--workers``/``--scheduler`` name, or
    None for one process or the process pool (said on stderr)."""
    from lfr_eval.distributed import ClusterSpec, dask_available

    if scheduler:
        spec = ClusterSpec(scheduler=scheduler)
    elif workers > 1 and dask_available():
        spec = ClusterSpec(workers=workers)
    else:
        if workers > 1:
            click.echo(
                f"note: dask is not installed; embedding in a pool of {workers} processes "
                "(pip install 'lfr-workbench[distributed]' for a Dask cluster)",
                err=True,
            )
        return None
    click.echo(f"embedding on a {spec.describe()}", err=True)
    return spec


def default_face_choice(face_choice: FaceChoice | None, layout: str) -> FaceChoice:
    """:func:`lfr_eval.datasets.default_face_choice` (the CLI's argument order)."""
    from lfr_eval.datasets import default_face_choice as rule

    return rule(layout, face_choice)


@dataclass(frozen=True)
class EmbeddingSetup:
    """What ``embed`` and ``evaluate`` embed with, opened from the same options.

    Attributes
    ----------
    engine : FaceEngine
        The engine the options name (reported on stderr).
    engine_factory : callable
        A picklable recipe for the same engine in worker processes.
    cluster : ClusterSpec or None
        The Dask cluster ``--workers``/``--scheduler`` name (None: one process or a pool).
    cache : EmbeddingCache or None
        The embedding cache (None with ``--no-cache``).
    face_choice : {"largest", "central"}
        Which face stands for an image with several (``--face``, else the layout's rule).
    """

    engine: FaceEngine
    engine_factory: Callable[[], FaceEngine]
    cluster: ClusterSpec | None
    cache: EmbeddingCache | None
    face_choice: FaceChoice


@contextlib.contextmanager
def embedding_setup(
    layout: str,
    choice: EngineChoice,
    *,
    workers: int,
    scheduler: str | None,
    cache_path: str | None,
    no_cache: bool,
    face_choice: FaceChoice | None,
    workspace: str | None,
) -> Iterator[EmbeddingSetup]:
    """Open the engine, cluster and cache the options name for a dataset of ``layout``; the
    cache is closed on exit.

    ``choice.upsample`` None is replaced by the layout's default (:func:`default_upsample`).
    """
    choice = replace(choice, upsample=default_upsample(choice.upsample, layout))
    engine = choice.load(workspace)
    click.echo(f"engine {engine.engine_id.key} on {engine.runtime.describe()}", err=True)
    factory = functools.partial(choice.load, workspace)
    cluster = cluster_spec(workers, scheduler)
    if no_cache:
        cache = None
    elif cache_path is not None:
        cache = EmbeddingCache(cache_path)
    else:
        cache = EmbeddingCache.in_workspace(workspace)
    try:
        yield EmbeddingSetup(
            engine, factory, cluster, cache, default_face_choice(face_choice, layout)
        )
    finally:
        if cache is not None:
            cache.close()


@click.command("embed")
@dataset_options
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Embeddings file to write: .npz or .parquet.",
)
@cache_options
@engine_options
@workspace_option
def embed_command(
    source: str,
    layout: str,
    labels: str | None,
    attributes: str | None,
    upsample: int | None,
    limit: int | None,
    out_path: str,
    cache_path: str | None,
    no_cache: bool,
    workers: int,
    scheduler: str | None,
    face_choice: FaceChoice | None,  # click.Choice(["largest", "central"])
    engine_backend: str,
    detector: str,
    model_pack: str | None,
    runtime: str,
    device: str,
    workspace: str | None,
) -> None:
    """Embed every image of SOURCE (a folder, an LFW copy or a manifest) into an embeddings file.

    Embeddings go through the cache: an interrupted run resumes where it stopped and a second
    run recomputes nothing. Images without a usable face are kept in the file with their
    reason ('no face', 'unreadable image'), never dropped.
    """
    from lfr_eval.datasets import EMBEDDING_FORMATS, embed_manifest, save_embeddings

    out = Path(out_path)
    if out.suffix.lower() not in EMBEDDING_FORMATS:
        raise click.BadParameter(
            f"must end in {' or '.join(EMBEDDING_FORMATS)}", param_hint="--out"
        )
    manifest, chosen = open_dataset(source, layout, labels, attributes, limit)
    choice = EngineChoice(engine_backend, detector, model_pack, runtime, device, upsample)
    with embedding_setup(
        chosen,
        choice,
        workers=workers,
        scheduler=scheduler,
        cache_path=cache_path,
        no_cache=no_cache,
        face_choice=face_choice,
        workspace=workspace,
    ) as setup:
        embeddings = embed_manifest(
            manifest,
            setup.engine,
            setup.cache,
            face_choice=setup.face_choice,
            progress=True,
            workers=workers,
            engine_factory=setup.engine_factory,
            cluster=setup.cluster,
        )
    save_embeddings(out, manifest, embeddings, setup.engine)
    cached = len(set(embeddings.image_sha256)) - embeddings.n_computed
    click.echo(
        f"wrote {out}: {plural(len(embeddings) - embeddings.n_failed, 'embedding')}, "
        f"{plural(embeddings.n_failed, 'image')} without a usable face; {embeddings.n_computed:,} "
        f"computed now, {cached:,} from the cache"
    )


def register(cli: click.Group) -> None:
    """Add ``embed`` to the top-level group."""
    cli.add_command(embed_command)
