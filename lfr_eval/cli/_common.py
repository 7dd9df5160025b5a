"""Options shared by several commands (engine choice, workspace) and the results they open."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lfr_eval.faces import BACKENDS, EngineChoice, FaceEngine


def engine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--engine``, ``--detector``, ``--model-pack``, ``--runtime``, ``--device``."""
    options = [
        click.option(
            "--engine",
            "engine_backend",
            type=click.Choice(sorted(BACKENDS)),
            default="dlib",
            show_default=True,
            help="Face engine backend.",
        ),
        click.option(
            "--detector",
            type=click.Choice(["hog", "cnn"]),
            default="hog",
            show_default=True,
            help="dlib detector: HOG (fast, CPU) or MMOD CNN (accurate, slow on CPU).",
        ),
        click.option(
            "--model-pack",
            default=None,
            help="InsightFace model pack: a directory, or a name looked up under $LFR_MODELS "
            "and ~/.insightface/models (e.g. buffalo_l).",
        ),
        click.option(
            "--runtime",
            type=click.Choice(["onnxruntime", "torch", "dlib"]),
            default="onnxruntime",
            show_default=True,
            help="What runs the networks. For --engine dlib: onnxruntime (dlib's ResNet as "
            "ONNX, the default) or dlib (dlib's own compute_face_descriptor, the reference).",
        ),
        click.option(
            "--device",
            type=click.Choice(["cpu", "cuda"]),
            default="cpu",
            show_default=True,
            help="Where to run the networks. 'cuda' fails loudly if no GPU is active.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_engine(
    engine_backend: str,
    detector: str,
    model_pack: str | None,
    runtime: str,
    device: str,
    workspace: str | None = None,
    upsample: int | None = None,
) -> FaceEngine:
    """Build the engine selected by :func:`engine_options` (:meth:`EngineChoice.load`).

    ``workspace`` is where InsightFace packs are looked up (``<workspace>/models/<pack>``)
    besides ``$LFR_MODELS`` and ``~/.insightface/models``. ``upsample`` is the dlib HOG/MMOD
    detector's (None: the engine's default, 1).
    """
    choice = EngineChoice(
        backend=engine_backend,
        detector=detector,
        model_pack=model_pack,
        runtime=runtime,
        device=device,
        upsample=upsample,
    )
    return choice.load(workspace)


workspace_option = click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    default=None,
    envvar="LFR_WORKSPACE",
    help="Workspace directory (watchlists, caches). Default: $LFR_WORKSPACE or the user data dir.",
)


def open_results(path: str) -> Any:
    """A full results folder (result.json) or an aggregate folder (aggregate.json)."""
    from lfr_eval.report import AggregateResult
    from lfr_eval.report._aggregate import AGGREGATE_FILE
    from lfr_eval.results import load_result

    folder = Path(path)
    if (folder / AGGREGATE_FILE).is_file():
        return AggregateResult.load(folder)
    return load_result(folder)
