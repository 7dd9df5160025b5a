"""The engine a user chose (backend, detector, model pack, runtime, device), and loading it.

One place turns the user's choice into an engine, for the command line (``--engine`` …), the app
(``LFR_ENGINE`` … set by ``lfr-eval app``) and library users, so the three accept and refuse the
same combinations with the same messages.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lfr_eval.errors import LfrError, RuntimeUnavailableError

if TYPE_CHECKING:
    from lfr_eval.faces._types import FaceEngine

#: Environment variables through which ``lfr-eval app`` tells the pages its engine.
ENV_ENGINE = "LFR_ENGINE"
ENV_DETECTOR = "LFR_DETECTOR"
ENV_MODEL_PACK = "LFR_MODEL_PACK"
ENV_RUNTIME = "LFR_RUNTIME"
ENV_DEVICE = "LFR_DEVICE"

MSG_DLIB_GPU = (
    "the dlib engine runs on the CPU only (dlib-bin has no CUDA); "
    "use --engine dlib-torch or --engine insightface for a GPU"
)
MSG_DLIB_RUNTIME = (
    "the dlib engine runs its ResNet on onnxruntime or dlib; for PyTorch use "
    "--engine dlib-torch --runtime torch"
)
MSG_RUNTIME_DLIB_ONLY = "--runtime dlib is only for --engine dlib"

#: Starting face-match threshold per engine backend, cosine similarity in [-1, 1], for the live
#: demo and for pages without evaluation results. A deployment should use the threshold its
#: evaluation chose (Threshold and Export pages); these only make the workbench sensible out of
#: the box. dlib: its 1:1 tolerance (Euclidean 0.6) is a cosine of about 0.91 (see
#: :mod:`lfr_eval.faces._dlib`), and different LFW people commonly score 0.85-0.92 against one
#: another, so a 1:N watchlist search starts a little stricter, at 0.92. InsightFace (buffalo_l
#: ArcFace): slightly above its usual 0.2-0.3 verification threshold (not measured here).
DEFAULT_THRESHOLDS: dict[str, float] = {"dlib": 0.92, "dlib-torch": 0.92, "insightface": 0.35}


@dataclass(frozen=True)
class EngineChoice:
    """What the user asked for; hashable, so it can key a cache of loaded engines.

    Attributes
    ----------
    backend : {"dlib", "insightface", "dlib-torch"}
    detector : {"hog", "cnn"}
        dlib detectors (ignored by insightface).
    model_pack : str or None
        InsightFace model pack name or folder (insightface only; None: ``buffalo_l``).
    runtime : {"onnxruntime", "torch", "dlib"}
        ``dlib`` (dlib's own ResNet call) only with the dlib backend.
    device : {"cpu", "cuda"}
    upsample : int or None
        dlib detectors' upsampling (None: the engine's default, 1; the CLI picks 0 for LFW).
    """

    backend: str = "dlib"
    detector: str = "hog"
    model_pack: str | None = None
    runtime: str = "onnxruntime"
    device: str = "cpu"
    upsample: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineChoice:
        """The choice ``lfr-eval app`` passed in ``LFR_ENGINE`` … (defaults where unset)."""
        env = os.environ if environ is None else environ
        return cls(
            backend=env.get(ENV_ENGINE, "dlib"),
            detector=env.get(ENV_DETECTOR, "hog"),
            model_pack=env.get(ENV_MODEL_PACK) or None,
            runtime=env.get(ENV_RUNTIME, "onnxruntime"),
            device=env.get(ENV_DEVICE, "cpu"),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables :meth:`from_env` reads back."""
        env = {
            ENV_ENGINE: self.backend,
            ENV_DETECTOR: self.detector,
            ENV_RUNTIME: self.runtime,
            ENV_DEVICE: self.device,
        }
        if self.model_pack:
            env[ENV_MODEL_PACK] = self.model_pack
        return env

    def describe(self) -> str:
        """One line for a page or a log: ``dlib, detector=hog, device=cpu``."""
        parts = [self.backend]
        if self.backend in ("dlib", "dlib-torch"):
            parts.append(f"detector={self.detector}")
        if self.backend == "insightface":
            parts.append(f"model_pack={self.model_pack or 'default'}")
        if self.backend != "dlib":
            parts.append(f"runtime={self.runtime}")
        parts.append(f"device={self.device}")
        return ", ".join(parts)

    def load(self, workspace: str | os.PathLike[str] | None = None) -> FaceEngine:
        """Load the engine; ``workspace`` is where InsightFace packs and converted models live
        (``<workspace>/models``, unless ``$LFR_MODELS`` says otherwise).

        Raises
        ------
        LfrError
            A combination that cannot work (dlib on a GPU, ``runtime="dlib"`` with another
            backend); :class:`~lfr_eval.errors.ModelError` or
            :class:`~lfr_eval.errors.RuntimeUnavailableError` from the backend.
        """
        from lfr_eval.faces._engine import load_engine

        dlib_options = {} if self.upsample is None else {"upsample": int(self.upsample)}
        if self.backend == "dlib":
            if self.device != "cpu":
                raise RuntimeUnavailableError(MSG_DLIB_GPU)
            if self.runtime not in ("onnxruntime", "dlib"):
                raise LfrError(MSG_DLIB_RUNTIME)
            return load_engine(
                "dlib", detector=self.detector, embedder=self.runtime, **dlib_options
            )
        if self.runtime == "dlib":
            raise LfrError(MSG_RUNTIME_DLIB_ONLY)
        if self.backend == "insightface":
            return load_engine(
                "insightface",
                model_pack=self.model_pack,
                runtime=self.runtime,
                device=self.device,
                workspace=workspace,
            )
        return load_engine(
            self.backend,
            detector=self.detector,
            runtime=self.runtime,
            device=self.device,
            workspace=workspace,
            **dlib_options,
        )

    def load_in_background(self, workspace: str | os.PathLike[str] | None = None) -> EngineLoading:
        """Start :meth:`load` in a background thread and return at once (see
        :class:`EngineLoading`): a page can draw while the engine loads."""
        return EngineLoading(self, workspace)


#: Name of the thread :class:`EngineLoading` loads in (tests check what it alone imports).
LOADER_THREAD = "lfr-engine-load"


class EngineLoading:
    """A face engine being loaded in a background thread (:meth:`EngineChoice.load`).

    Loading imports the runtimes (dlib, onnxruntime, PyTorch…) and builds their sessions, several
    seconds on a small machine; the app's Home page draws meanwhile and pages that need the
    engine :meth:`wait` for it. The load starts when the object is made; a failure is kept and
    raised by :meth:`wait` (never dropped).

    Parameters
    ----------
    choice : EngineChoice
    workspace : path or None
        As for :meth:`EngineChoice.load`.
    """

    def __init__(
        self, choice: EngineChoice, workspace: str | os.PathLike[str] | None = None
    ) -> None:
        self.choice = choice
        self._workspace = workspace
        self._done = threading.Event()
        self._engine: FaceEngine | None = None
        self._error: Exception | None = None
        self._started = time.monotonic()
        self._finished: float | None = None
        self._thread = threading.Thread(target=self._run, name=LOADER_THREAD, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._engine = self.choice.load(self._workspace)
        except Exception as exc:  # kept for wait(), which raises it in the caller's thread
            self._error = exc
        finally:
            self._finished = time.monotonic()
            self._done.set()

    @property
    def done(self) -> bool:
        """True once the load has finished, loaded or failed."""
        return self._done.is_set()

    @property
    def failed(self) -> bool:
        """True when the load finished with an error (:meth:`wait` raises it)."""
        return self._done.is_set() and self._error is not None

    @property
    def elapsed_s(self) -> float:
        """Seconds since the load started, or how long it took once done."""
        end = self._finished if self._finished is not None else time.monotonic()
        return end - self._started

    def wait(self, timeout: float | None = None) -> FaceEngine:
        """The loaded engine, waiting for it up to ``timeout`` seconds (None: as long as it takes).

        Raises
        ------
        TimeoutError
            Still loading after ``timeout`` seconds.
        LfrError
            The load failed (missing model, GPU unavailable…): the error :meth:`EngineChoice.load`
            raised, as any other exception it raised.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(
                f"the face engine ({self.choice.describe()}) is still loading after "
                f"{self.elapsed_s:.0f} s"
            )
        if self._error is not None:
            raise self._error
        assert self._engine is not None  # set whenever no error was
        return self._engine


def default_threshold(engine: str | FaceEngine) -> float:
    """Starting face-match threshold (cosine similarity in [-1, 1]) for an engine, given as a
    loaded engine or a backend name: :data:`DEFAULT_THRESHOLDS`; dlib's value for an unknown
    backend. The one place the workbench's default threshold is defined."""
    name = engine if isinstance(engine, str) else engine.engine_id.backend
    return DEFAULT_THRESHOLDS.get(name, DEFAULT_THRESHOLDS["dlib"])
