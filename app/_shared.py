"""Helpers shared by the Streamlit pages: the cached engine, workspace paths, loaded results.

Pages stay thin: everything here either reads settings or calls :mod:`lfr_eval`. The engine is
chosen by environment variables (set by ``lfr-eval app`` from its options, or by hand):

==================  =====================================================
``LFR_ENGINE``      ``dlib`` (default), ``insightface`` or ``dlib-torch``
``LFR_DETECTOR``    ``hog`` (default) or ``cnn`` (dlib engines)
``LFR_MODEL_PACK``  InsightFace model pack name or directory
``LFR_RUNTIME``     ``onnxruntime`` (default) or ``torch``
``LFR_DEVICE``      ``cpu`` (default) or ``cuda`` (fails loudly without a GPU)
``LFR_WORKSPACE``   workspace directory (watchlists, results, alert captures)
==================  =====================================================

``LFR_ALERT_RETENTION_HOURS`` sets how long alert captures are kept (default 24).

Access: every page starts with :func:`require_role`. With no users configured the app is open,
but only while Streamlit listens on loopback; once ``lfr-eval users add`` has created a user,
every page asks for a sign-in and shows only what the user's roles allow. The signed-in user
is :func:`current_user`; :func:`current_actor` is the name the pages pass to library calls
that audit. Server-side paths typed into a page go through :func:`server_path` (the workspace
and ``$LFR_ALLOWED_ROOTS`` only).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from lfr_eval.deployment import RetentionPolicy
from lfr_eval.errors import ConfigError, LfrError, ResultError
from lfr_eval.faces import EngineChoice, EngineLoading, FaceEngine
from lfr_eval.faces import default_threshold as engine_default_threshold
from lfr_eval.users import MSG_EXPOSED_WITHOUT_USERS, Role, UserStore, is_loopback
from lfr_eval.watchlist import Watchlist
from lfr_eval.wording import plural
from lfr_eval.workspace import allowed_roots, confine_path, workspace_dir

if TYPE_CHECKING:
    from lfr_eval.report import AggregateResult

# The report and results modules (and through them scipy.stats, about 2 s on a loaded 2-core
# machine) are imported inside the functions that read results, so a page that shows none starts
# as fast as Streamlit itself (tests/test_imports.py checks the import set).


#: Session-state keys shared between pages (plain keys, not widget keys: Streamlit drops a
#: widget's state when its page is left).
STATE_THRESHOLD = "lfr_chosen_threshold"
STATE_WATCHLIST_SIZE = "lfr_deployment_watchlist_size"
STATE_FACES = "lfr_deployment_faces_scanned"
#: The last deployment config verified on the Export page (a DeploymentConfig).
STATE_CONFIG = "lfr_verified_config"
#: The signed-in user (a SignedInUser); read it with current_user().
STATE_USER = "lfr_signed_in"
_STATE_FAILURES = "lfr_sign_in_failures"

#: Who may open each page (administrators may open every page).
ROLES_LIVE = (Role.TRAINER, Role.REVIEWING_OFFICER)
ROLES_WATCHLIST = (Role.TRAINER,)
ROLES_EVALUATE = (Role.EVALUATOR,)
ROLES_RESULTS = (Role.EVALUATOR, Role.TRAINER)
ROLES_EXPORT = (Role.EVALUATOR,)


# ---------------------------------------------------------------------- access


@dataclass(frozen=True)
class SignedInUser:
    """Who is using this browser session.

    Attributes
    ----------
    username : str
    roles : frozenset of Role
    """

    username: str
    roles: frozenset[Role]

    def has_any(self, roles: Sequence[Role]) -> bool:
        """True when the user holds one of ``roles``; administrators hold them all."""
        return Role.ADMINISTRATOR in self.roles or bool(self.roles & set(roles))


def current_user() -> SignedInUser | None:
    """The signed-in user, re-read from the users file (a removed user is signed out at once,
    changed roles apply at once); None when nobody is signed in or no users are configured."""
    signed = st.session_state.get(STATE_USER)
    if signed is None:
        return None
    stored = UserStore().get(signed.username)
    if stored is None:
        del st.session_state[STATE_USER]
        return None
    return SignedInUser(stored.username, stored.roles)


def current_actor() -> str | None:
    """The name library calls record in audit entries and alert decisions: the signed-in
    user, or None in open mode (the library then records the OS user)."""
    user = current_user()
    return user.username if user is not None else None


def _sign_in(store: UserStore) -> None:
    """The sign-in form; signs the session in and reruns, or says why not."""
    st.title("Sign in")
    st.write("This LFR Workbench holds biometric data: sign in to continue.")
    with st.form("lfr_sign_in"):
        username = st.text_input("User name", key="signin_username")
        password = st.text_input("Password", type="password", key="signin_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    failures = int(st.session_state.get(_STATE_FAILURES, 0))
    if failures >= 3:
        # Slows guessing from one browser session; argon2 slows it everywhere.
        time.sleep(min(2.0 * (failures - 2), 10.0))
    user = store.authenticate(username.strip(), password)
    if user is None:
        st.session_state[_STATE_FAILURES] = failures + 1
        st.error("Unknown user name or wrong password.")
        return
    st.session_state.pop(_STATE_FAILURES, None)
    st.session_state[STATE_USER] = SignedInUser(user.username, user.roles)
    st.rerun()


def require_role(*roles: Role) -> SignedInUser | None:
    """Gate a page: call it first thing after ``st.set_page_config``.

    - no users configured: the page opens only when Streamlit listens on loopback (refuses
      otherwise, whoever started it and however);
    - users configured: shows the sign-in form until someone signs in, then the page only
      if the user holds one of ``roles`` (no roles: any signed-in user).

    Returns the signed-in user, or None in open mode. Stops the page otherwise.
    """
    store = UserStore()
    try:
        has_users = store.has_users()
    except LfrError as exc:
        show_error(exc)
        st.stop()
        raise
    if not has_users:
        address = st.get_option("server.address")
        if not is_loopback(address):
            st.error(
                MSG_EXPOSED_WITHOUT_USERS.format(
                    address=address or "every interface", path=store.path
                )
            )
            st.stop()
        st.sidebar.caption("Open mode: no users configured, reachable from this machine only.")
        return None
    user = current_user()
    if user is None:
        _sign_in(store)
        engine_loading()  # the engine loads while the user signs in
        st.stop()
        raise AssertionError  # st.stop() raises
    with st.sidebar:
        st.caption(
            f"Signed in as **{user.username}** ({', '.join(sorted(r.value for r in user.roles))})"
        )
        if st.button("Sign out", key="lfr_sign_out"):
            del st.session_state[STATE_USER]
            st.rerun()
    if roles and not user.has_any(roles):
        st.error(
            f"{user.username} may not open this page: it needs the role "
            f"{' or '.join(r.value for r in roles)} (or administrator)."
        )
        st.stop()
    return user


def server_path(text: str) -> Path:
    """A folder or file typed into a page, resolved, if it lies in an allowed root.

    Relative paths are taken from the workspace. Raises
    :class:`~lfr_eval.errors.AccessError` for anything outside the workspace and
    ``$LFR_ALLOWED_ROOTS`` (``lfr-eval app --allow-root``), symbolic links followed.
    """
    return confine_path(text.strip(), allowed_roots(workspace()))


def signing_key_or_none():
    """This installation's signing key (:class:`lfr_eval.signing.SigningKey`), or None when
    none was generated; a key that exists but cannot be used raises ``SignatureError``."""
    from lfr_eval.signing import KeyRing

    ring = KeyRing()
    return ring.signing_key() if ring.has_signing_key() else None


def workspace() -> Path:
    """The workspace directory ($LFR_WORKSPACE or the per-user data dir), created if needed.

    Every page asks for it, so this is where the app's retention timer starts: while the app
    runs, everything past its retention period is purged every few minutes (one timer per
    process, see :func:`lfr_eval.retention.start_purge_timer`), whichever page is open.
    """
    from lfr_eval.retention import start_purge_timer

    root = workspace_dir()
    start_purge_timer(root)
    return root


@st.cache_resource(show_spinner=False)
def _engine_loading(choice: EngineChoice, workspace: Path) -> EngineLoading:
    return choice.load_in_background(workspace)


def engine_choice() -> EngineChoice:
    """The engine settings this app process was started with."""
    return EngineChoice.from_env()


def engine_loading() -> EngineLoading:
    """The face engine's load, once per process and shared by every page and session, started in
    a background thread by the first page that asks (Home once it has drawn the rest of its page;
    the sign-in form once drawn). ``.done`` says whether it finished; :func:`get_engine` waits
    for it."""
    return _engine_loading(engine_choice(), workspace())


def get_engine() -> FaceEngine:
    """The face engine, waiting for its load (with a spinner saying so) if it is still running.

    Raises :class:`~lfr_eval.errors.LfrError` (missing model, GPU unavailable…); pages show it
    with :func:`show_error` and stop. A failed load is forgotten, so the next page run tries
    again (model files put in place meanwhile are found).
    """
    loading = engine_loading()
    try:
        if loading.done:
            return loading.wait()
        with st.spinner(
            f"Loading the face engine ({loading.choice.describe()}): "
            f"{loading.elapsed_s:.0f} s so far…"
        ):
            return loading.wait()
    except Exception:
        _engine_loading.clear()
        raise


# ---------------------------------------------------------------------- errors


def show_error(exc: LfrError) -> None:
    """Show an :class:`LfrError` as the user's problem to fix (message, no traceback)."""
    st.error(f"**{type(exc).__name__}**: {exc}")


def show_engine_error(exc: LfrError) -> None:
    """Why the engine could not be loaded, and what to do about it."""
    show_error(exc)
    st.info(
        "Start the app with another engine, e.g. `lfr-eval app --engine dlib`, or put the "
        "model files where the message says and reload the page."
    )


def engine_or_stop() -> FaceEngine:
    """The engine (waiting for its load), or an error box and ``st.stop()`` when it cannot be
    loaded."""
    try:
        return get_engine()
    except LfrError as exc:
        show_engine_error(exc)
        st.stop()
        raise  # st.stop() raises; this keeps type checkers content


# ---------------------------------------------------------------------- watchlist


def open_watchlist() -> Watchlist:
    """The workspace's watchlist (``<workspace>/watchlist.sqlite``), created empty if missing.

    Not cached: SQLite connections are opened per operation, and a fresh object always sees the
    latest content (another page or the CLI may have changed it). Audit entries written
    through it record the signed-in user (:func:`current_actor`).
    """
    actor = current_actor()
    if actor is not None and "actor" in inspect.signature(Watchlist.open).parameters:
        return Watchlist.open(workspace=workspace(), actor=actor)
    return Watchlist.open(workspace=workspace())


def show_watchlist_summary(watchlist: Watchlist | None = None) -> None:
    """Metrics row: subjects, templates, embedding space, id and content hash."""
    try:
        watchlist = watchlist if watchlist is not None else open_watchlist()
    except LfrError as exc:
        show_error(exc)
        return
    subjects = watchlist.subjects()
    expired = sum(s.is_expired() for s in subjects)
    cols = st.columns(4)
    cols[0].metric("Subjects", len(subjects), help="Distinct people listed (N in FPIR(N, T)).")
    cols[1].metric("Templates", watchlist.n_templates())
    cols[2].metric("Expired (not searched)", expired)
    cols[3].metric("Version (content hash)", watchlist.content_hash()[:12])
    st.caption(
        f"Watchlist id `{watchlist.watchlist_id}` · content sha256 `{watchlist.content_hash()}` · "
        f"embedding space `{watchlist.embedding_space or 'none yet'}` · file `{watchlist.path}`"
    )
    if not subjects:
        st.info("The watchlist is empty: enrol people on the **Watchlist** page.")


# ---------------------------------------------------------------------- retention

ENV_ALERT_RETENTION_HOURS = "LFR_ALERT_RETENTION_HOURS"


def retention_policy() -> RetentionPolicy:
    """Retention of captures: alert captures kept ``$LFR_ALERT_RETENTION_HOURS`` (default 24 h).

    Non-matching captures are never stored, whatever the setting.
    """
    hours = os.environ.get(ENV_ALERT_RETENTION_HOURS)
    if hours is None:
        return RetentionPolicy()
    try:
        return RetentionPolicy(alert_capture_hours=int(hours))
    except ValueError:
        raise ConfigError(
            f"{ENV_ALERT_RETENTION_HOURS}={hours!r} is not a whole number of hours"
        ) from None


# ---------------------------------------------------------------------- uploads


@contextlib.contextmanager
def uploads_on_disk(files: Sequence[UploadedFile]) -> Iterator[dict[Path, str]]:
    """Write uploads to a private temporary folder for the length of the block.

    Library functions take paths; uploads are bytes. Each upload goes to its own sub-folder so
    equal names cannot collide, and the folder is deleted on leaving the block, so uploaded faces
    are not left on disk. Yields ``{temporary path: upload name}``.
    """
    with tempfile.TemporaryDirectory(prefix="lfr-upload-") as tmp:
        paths: dict[Path, str] = {}
        for i, upload in enumerate(files):
            name = Path(upload.name).name or f"upload-{i}"
            path = Path(tmp) / str(i) / name
            path.parent.mkdir()
            path.write_bytes(upload.getvalue())
            paths[path] = upload.name
        yield paths


# ---------------------------------------------------------------------- evaluation results

#: Example results shipped with the project (aggregate figures only, no faces or embeddings).
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "datasets" / "examples"
#: Where the Evaluate page saves results, relative to the workspace.
RESULTS_SUBDIR = "results"
AGGREGATE_SUBDIR = "aggregate"


@dataclass(frozen=True, eq=False)
class LoadedResults:
    """Evaluation results a page works on.

    Attributes
    ----------
    label : str
        What the user sees ("example: …", a folder name).
    aggregate : AggregateResult
        The figures every page draws from.
    path : Path or None
        Folder the results came from.
    is_example : bool
        Shipped with the project rather than made by the user.
    """

    label: str
    aggregate: AggregateResult
    path: Path | None
    is_example: bool = False


def results_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` holding full or aggregate results, newest first."""
    from lfr_eval.report._aggregate import AGGREGATE_FILE
    from lfr_eval.results import RESULT_FILE

    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and ((p / AGGREGATE_FILE).is_file() or (p / RESULT_FILE).is_file())
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def example_folders() -> list[Path]:
    """The example results shipped in ``datasets/examples/``, by name."""
    return sorted(results_folders(EXAMPLES_DIR))


@st.cache_resource(show_spinner="Loading results…", max_entries=8)
def _load_aggregate(path: str, stamp: float) -> AggregateResult:
    # ``stamp`` (the folder's newest modification time) keys the cache, so a folder rewritten
    # by a new evaluation is read again.
    from lfr_eval.report import AggregateResult, as_aggregate
    from lfr_eval.report._aggregate import AGGREGATE_FILE
    from lfr_eval.results import load_result

    folder = Path(path)
    if (folder / AGGREGATE_FILE).is_file():
        return AggregateResult.load(folder)
    if (folder / AGGREGATE_SUBDIR / AGGREGATE_FILE).is_file():
        agg = AggregateResult.load(folder / AGGREGATE_SUBDIR)
        if agg.result_sha256 == load_result(folder).result_hash:
            return agg
    result = load_result(folder)
    agg = as_aggregate(result)
    with contextlib.suppress(OSError):  # a read-only folder: the aggregate is only a cache
        agg.save(folder / AGGREGATE_SUBDIR)
    return agg


def load_results(path: str | os.PathLike[str], *, is_example: bool = False) -> LoadedResults:
    """Load a results folder (full ``result.json`` or ``aggregate.json``) as :class:`LoadedResults`.

    Full results are aggregated once (intervals clustered by person) and the aggregate is saved in
    ``<folder>/aggregate/`` for next time.

    Raises
    ------
    ResultError
        Not a results folder, or altered since it was written.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ResultError(f"results folder not found: {folder}")
    stamp = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
    agg = _load_aggregate(str(folder.resolve()), stamp)
    label = f"example: {folder.name}" if is_example else folder.name
    return LoadedResults(label=label, aggregate=agg, path=folder, is_example=is_example)


def set_current_results(loaded: LoadedResults) -> None:
    """Make ``loaded`` the results every page shows, for this browser session."""
    st.session_state["lfr_results"] = loaded


def current_results() -> LoadedResults | None:
    """The results chosen in this session, else the first example; None if there are none."""
    loaded = st.session_state.get("lfr_results")
    if loaded is not None:
        return loaded
    for folder in example_folders():
        loaded = load_results(folder, is_example=True)
        set_current_results(loaded)
        return loaded
    return None


def results_or_stop() -> LoadedResults:
    """The current results, or a note pointing to the Evaluate page and ``st.stop()``."""
    try:
        loaded = current_results()
    except LfrError as exc:
        show_error(exc)
        st.stop()
        raise
    if loaded is None:
        st.info("No evaluation results yet: run or load one on the **Evaluate** page.")
        st.stop()
    return loaded  # type: ignore[return-value]


def show_results_summary(loaded: LoadedResults | None = None) -> None:
    """What the results are: dataset, protocol, engine, searches, intervals, provenance."""
    try:
        loaded = loaded if loaded is not None else current_results()
    except LfrError as exc:
        show_error(exc)
        return
    if loaded is None:
        st.info("No evaluation results loaded: run or load one on the **Evaluate** page.")
        return
    agg = loaded.aggregate
    provenance = agg.provenance
    dataset = provenance.dataset
    cols = st.columns(4)
    cols[0].metric("Watchlist size N", f"{agg.watchlist_size:,}")
    cols[1].metric("Mated searches", f"{agg.n_mated:,}")
    cols[2].metric("Non-mated searches", f"{agg.n_non_mated:,}")
    cols[3].metric("Groups by", ", ".join(agg.attributes) or "none")
    st.caption(
        f"**{loaded.label}** · dataset {dataset.name} "
        f"({plural(dataset.n_images, 'image')}, {plural(dataset.n_subjects, 'person')}; "
        f"sha256 `{dataset.sha256[:12]}`) · protocol {provenance.protocol.kind} "
        f"(seed {provenance.seed}) · engine {agg.describe_engine()} · "
        f"{agg.intervals.describe()}"
    )
    # the full hash, as result.json, the report and a deployment config's evidence show it
    st.caption(f"result sha256 `{agg.result_sha256}`")
    protocol = provenance.protocol
    if protocol.enrolment is not None or protocol.failed_to_enrol:
        # the same sentence (rate, interval counted by people) as the CLI and the report
        text = protocol.describe_enrolment()
        st.caption(text[:1].upper() + text[1:] + ".")
    if loaded.is_example:
        st.caption(
            "These are the project's example results (aggregate figures only: no images, "
            "embeddings or per-person scores). Run your own on the **Evaluate** page."
        )


def non_mated_subjects(agg: AggregateResult, threshold: float) -> int | None:
    """Distinct people behind the non-mated searches at ``threshold`` (None if not recorded)."""
    from lfr_eval.report import ALL

    rows = agg.at_threshold(threshold)
    rows = rows[(rows["metric"] == "fpir") & (rows["attribute"] == ALL)]
    return int(rows["n_subjects"].iloc[0]) if len(rows) else None


def default_threshold(agg: AggregateResult | None) -> float:
    """The threshold a page starts at: the one chosen in this session, if it is in the results'
    range; else the lowest where overall FPIR falls to 1 in 1,000 (or 1 in 100); else the middle
    of the grid. Without results, the engine's default (:func:`lfr_eval.faces.default_threshold`,
    the same one the Live page and the CLI start at)."""
    chosen = st.session_state.get(STATE_THRESHOLD)
    if agg is None:
        if chosen is not None:
            return float(chosen)
        return engine_default_threshold(engine_choice().backend)
    grid = agg.thresholds
    if chosen is not None and grid.min() <= chosen <= grid.max():
        return float(grid[abs(grid - chosen).argmin()])
    from lfr_eval.report import operating_thresholds

    candidates = operating_thresholds(agg, (1e-3, 1e-2))
    return float(candidates[-1]) if candidates else float(grid[len(grid) // 2])
