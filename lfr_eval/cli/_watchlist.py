"""``lfr-eval enrol``, ``lfr-eval watchlist …`` and ``lfr-eval identify``.

Exit codes (see :mod:`lfr_eval.cli`): 0 when everything asked for was done; otherwise the code
of the first failure's error class — 3 an unreadable image, 4 no face / several faces, 7 the
watchlist refused (unknown subject, engine mismatch, tampered bundle, duplicate image), 8 a
malformed enrolment manifest. ``--json`` prints one JSON document on stdout for scripts; human
messages go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lfr_eval.cli._common import engine_options, make_engine, workspace_option
from lfr_eval.cli._keys import keys_dir_option
from lfr_eval.errors import WatchlistError
from lfr_eval.watchlist import (
    DEFAULT_CATEGORY,
    DEFAULT_WATCHLIST_NAME,
    EnrolmentReport,
    RefusedFile,
    SubjectInfo,
    Watchlist,
    parse_expiry,
)
from lfr_eval.watchlist._enrol import EnrolmentRequest as _Request
from lfr_eval.watchlist._enrol import (
    enrol_requests,
    plan_folder,
    plan_manifest,
)
from lfr_eval.watchlist._identify import identify_images
from lfr_eval.wording import plural

if TYPE_CHECKING:
    from lfr_eval.search._index import Backend, Device

watchlist_path_option = click.option(
    "--watchlist",
    "watchlist_path",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="LFR_WATCHLIST",
    help=f"Watchlist file. Default: $LFR_WATCHLIST or <workspace>/{DEFAULT_WATCHLIST_NAME}.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout (for scripts)."
)


def _open(watchlist_path: str | None, workspace: str | None, *, create: bool) -> Watchlist:
    return Watchlist.open(watchlist_path, workspace=workspace, create=create)


def _emit(as_json: bool, document: dict[str, Any], lines: Callable[[], Sequence[str]]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=1, ensure_ascii=False))
    else:
        for line in lines():
            click.echo(line)


def _progress(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=label, unit="img", file=sys.stderr, leave=False)
        bar["bar"].update(1)
        if done == total:
            bar["bar"].close()

    return update


def _report_document(report: EnrolmentReport, watchlist: Watchlist) -> dict[str, Any]:
    return {
        "watchlist": str(watchlist.path),
        "content_hash": report.content_hash,
        "enrolled": [
            {
                "source": e.source,
                "subject_id": e.subject_id,
                "template_id": e.template_id,
                "image_sha256": e.image_sha256,
                "faces_found": e.n_faces,
                "box": list(e.box),
            }
            for e in report.enrolled
        ],
        "refused": [
            {
                "source": r.source,
                "subject_id": r.subject_id,
                "kind": r.kind,
                "reason": r.reason,
                "exit_code": r.exit_code,
            }
            for r in report.refused
        ],
        "new_subjects": list(report.new_subjects),
    }


def _report_lines(report: EnrolmentReport, watchlist: Watchlist) -> list[str]:
    lines = [
        f"enrolled {e.source} as {e.subject_id} (template {e.template_id}"
        + (f", largest of {e.n_faces} faces" if e.n_faces > 1 else "")  # plural: > 1
        + ")"
        for e in report.enrolled
    ]
    lines += [f"refused  {r.source}: {r.reason}" for r in report.refused]
    lines.append(
        f"{report.n_enrolled} enrolled, {report.n_refused} refused, "
        f"{plural(len(report.new_subjects), 'new subject')}; watchlist {watchlist.path} "
        f"version {report.content_hash[:16]}"
    )
    return lines


def _enrol_command(cli: click.Group) -> None:
    @cli.command("enrol")
    @click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
    @click.option("--subject", "subject_id", help="Subject id for IMAGES (e.g. a case number).")
    @click.option("--name", "display_name", help="Display name of a new subject (default: id).")
    @click.option(
        "--folder",
        type=click.Path(file_okay=False),
        help="Enrol a folder with one sub-folder per subject (sub-folder name = subject id).",
    )
    @click.option(
        "--manifest",
        type=click.Path(dir_okay=False),
        help="Enrol from a CSV with columns path, subject_id [, display_name, category, reason, "
        "expires]; relative paths are relative to the CSV.",
    )
    @click.option(
        "--category",
        default=DEFAULT_CATEGORY,
        show_default=True,
        help="Category of inclusion for new subjects (wanted, missing person, test…).",
    )
    @click.option("--reason", default="", help="Reason for inclusion for new subjects.")
    @click.option(
        "--expires",
        default=None,
        help="Expiry of new subjects: a date (2025-06-30, valid through that day UTC), an ISO "
        "date-time, or a duration (7d, 24h). Expired subjects are not searched.",
    )
    @click.option(
        "--largest-face",
        is_flag=True,
        help="Take the largest face of an image with several, instead of refusing the image.",
    )
    @click.option(
        "--keep-images",
        is_flag=True,
        help="Also store the source images in the watchlist (default: only their sha256).",
    )
    @watchlist_path_option
    @workspace_option
    @engine_options
    @json_option
    def enrol(
        images: tuple[str, ...],
        subject_id: str | None,
        display_name: str | None,
        folder: str | None,
        manifest: str | None,
        category: str,
        reason: str,
        expires: str | None,
        largest_face: bool,
        keep_images: bool,
        watchlist_path: str | None,
        workspace: str | None,
        as_json: bool,
        **engine_args: Any,
    ) -> None:
        """Enrol faces onto a watchlist from IMAGES, a --folder or a --manifest.

        Each image must show exactly one face (or use --largest-face). Every file is reported
        as enrolled or refused with a reason; accepted files are written together, so an
        interrupted run changes nothing. A new subject is created from its first enrolled image;
        an existing subject keeps its details.

        Exit code 0 if every file was enrolled, otherwise the code of the first refusal
        (3 unreadable image, 4 no face or several faces, 7 duplicate image).

        \b
        Examples:
          lfr-eval enrol --subject case-17 --name "Jane Doe" --category wanted a.jpg b.jpg
          lfr-eval enrol --folder people/ --expires 7d
          lfr-eval enrol --manifest enrol.csv --watchlist deploy-0612.sqlite
        """
        sources = sum(bool(x) for x in (images, folder, manifest))
        if sources != 1:
            raise click.UsageError("give exactly one of: IMAGES, --folder DIR, --manifest CSV")
        if images and not subject_id:
            raise click.UsageError("--subject ID is required when enrolling IMAGES")
        if (folder or manifest) and (subject_id or display_name):
            raise click.UsageError(
                "--subject/--name apply to IMAGES only; a folder or manifest names its subjects"
            )
        try:
            expiry = parse_expiry(expires)
        except WatchlistError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from None
        # Check the inputs and the watchlist before loading the engine (which takes seconds).
        refused: list[RefusedFile] = []
        if folder:
            requests, refused = plan_folder(
                folder, category=category, reason=reason, expires=expiry
            )
        elif manifest:
            requests = plan_manifest(manifest, category=category, reason=reason, expires=expiry)
        else:
            info = SubjectInfo(
                subject_id=str(subject_id),
                display_name=display_name,
                category=category,
                reason=reason,
                expires=expiry,
            )
            requests = [_Request(Path(p), info) for p in images]
        watchlist = _open(watchlist_path, workspace, create=True)
        engine = make_engine(**engine_args, workspace=workspace)
        report = enrol_requests(
            watchlist,
            engine,
            requests,
            largest_face=largest_face,
            keep_image=keep_images,
            progress=None if as_json else _progress("enrolling"),
            refused=refused,
        )
        if as_json:
            _emit(True, _report_document(report, watchlist), list)
        else:
            lines = _report_lines(report, watchlist)
            for line in lines[:-1]:
                click.echo(line, err=line.startswith("refused"))
            click.echo(lines[-1])
        if report.refused:
            sys.exit(report.refused[0].exit_code)


def _status(subject: Any) -> str:
    return "expired" if subject.is_expired() else "active"


def _watchlist_group(cli: click.Group) -> None:
    @cli.group("watchlist")
    def watchlist_group() -> None:
        """Inspect and manage a watchlist: list, export, import, remove, audit."""

    for add in (
        _add_list_command,
        _add_export_command,
        _add_import_command,
        _add_remove_command,
        _add_verify_command,
        _add_audit_command,
    ):
        add(watchlist_group)


def _add_list_command(watchlist_group: click.Group) -> None:
    @watchlist_group.command("list")
    @watchlist_path_option
    @workspace_option
    @click.option("--active-only", is_flag=True, help="Leave out expired subjects.")
    @json_option
    def list_command(
        watchlist_path: str | None, workspace: str | None, active_only: bool, as_json: bool
    ) -> None:
        """List the subjects on a watchlist, with its id, version (content hash) and engine.

        Expired subjects are shown as 'expired'; they are kept until removed but never searched.
        """
        wl = _open(watchlist_path, workspace, create=False)
        subjects = wl.subjects(include_expired=not active_only)
        content = wl.content_hash()
        space = wl.embedding_space
        n_templates = int(sum(s.n_templates for s in subjects))
        document: dict[str, Any] = {
            "watchlist": str(wl.path),
            "watchlist_id": wl.watchlist_id,
            "content_hash": content,
            "embedding_space": space,
            "engines": [e.key for e in wl.engine_ids()],
            "n_subjects": len(subjects),
            "n_templates": n_templates,
            "subjects": [
                {
                    "subject_id": s.subject_id,
                    "display_name": s.display_name,
                    "category": s.category,
                    "reason": s.reason,
                    "created": s.created.isoformat(),
                    "expires": s.expires.isoformat() if s.expires else None,
                    "status": _status(s),
                    "n_templates": s.n_templates,
                }
                for s in subjects
            ],
        }

        def lines() -> list[str]:
            out = [
                f"watchlist   {wl.path}",
                f"id          {document['watchlist_id']}",
                f"version     {content}",
                f"embeddings  {space or '(no templates yet)'}",
                f"subjects    {document['n_subjects']} ({plural(n_templates, 'template')})",
            ]
            if subjects:
                header = ("SUBJECT", "NAME", "CATEGORY", "TEMPLATES", "EXPIRES", "STATUS")
                rows = [
                    (
                        s.subject_id,
                        s.display_name,
                        s.category,
                        str(s.n_templates),
                        s.expires.strftime("%Y-%m-%d %H:%M") if s.expires else "-",
                        _status(s),
                    )
                    for s in subjects
                ]
                widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
                out.append("")
                for row in [header, *rows]:
                    out.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
            return out

        _emit(as_json, document, lines)


def _add_export_command(watchlist_group: click.Group) -> None:
    @watchlist_group.command("export")
    @click.argument("destination", type=click.Path())
    @click.option(
        "--images",
        "include_images",
        is_flag=True,
        help="Include the source images the watchlist kept (default: embeddings only).",
    )
    @click.option(
        "--overwrite",
        is_flag=True,
        help="Replace DESTINATION if it is a previous bundle (anything else is never deleted).",
    )
    @click.option(
        "--unsigned",
        is_flag=True,
        help="Do not sign the bundle (it then imports only with --allow-unsigned).",
    )
    @keys_dir_option
    @watchlist_path_option
    @workspace_option
    @json_option
    def export_command(
        destination: str,
        include_images: bool,
        overwrite: bool,
        unsigned: bool,
        keys_dir: str | None,
        watchlist_path: str | None,
        workspace: str | None,
        as_json: bool,
    ) -> None:
        """Export the watchlist as a bundle: a directory, or a zip file if DESTINATION ends .zip.

        The bundle holds manifest.json (subjects, engines with model hashes, sha256 of every
        file, content hash) and embeddings.npy; images only with --images. It is signed with
        this installation's key ('lfr-eval keys generate') unless --unsigned. The export is
        recorded in the audit log.
        """
        from lfr_eval.signing import KeyRing

        key = None if unsigned else KeyRing(keys_dir).signing_key()
        wl = _open(watchlist_path, workspace, create=False)
        info = wl.export_bundle(
            destination, include_images=include_images, overwrite=overwrite, signing_key=key
        )
        _emit(
            as_json,
            {**_bundle_document(info), "watchlist": str(wl.path)},
            lambda: [
                (
                    f"exported {plural(info.n_subjects, 'subject')}, "
                    f"{plural(info.n_templates, 'template')}, {plural(info.n_images, 'image')} "
                    f"to {info.path}"
                ),
                f"content hash {info.content_hash}",
            ],
        )


def _add_import_command(watchlist_group: click.Group) -> None:
    @watchlist_group.command("import")
    @click.argument("bundle", type=click.Path())
    @click.option(
        "--expect-hash",
        default=None,
        help="Refuse the bundle unless its content hash is this one (get it from the sender "
        "through another channel).",
    )
    @click.option(
        "--check", is_flag=True, help="Only verify the bundle; do not change any watchlist."
    )
    @click.option("--no-images", is_flag=True, help="Do not store the bundle's images, if any.")
    @click.option(
        "--allow-unsigned",
        is_flag=True,
        help="Accept a bundle without a signature (a bad or untrusted signature is still refused).",
    )
    @keys_dir_option
    @watchlist_path_option
    @workspace_option
    @json_option
    def import_command(
        bundle: str,
        expect_hash: str | None,
        check: bool,
        no_images: bool,
        allow_unsigned: bool,
        keys_dir: str | None,
        watchlist_path: str | None,
        workspace: str | None,
        as_json: bool,
    ) -> None:
        """Verify a bundle and import its subjects and templates, all or nothing.

        Every file's sha256, the embeddings and the content hash are checked first; a tampered
        or inconsistent bundle, one from another engine's embedding space, or one whose subject
        ids are already on the watchlist is refused (exit code 7) and nothing changes.
        """
        from lfr_eval.signing import KeyRing
        from lfr_eval.watchlist import read_bundle

        keyring = KeyRing(keys_dir)
        if check:
            verified = read_bundle(bundle, keyring=keyring, allow_unsigned=allow_unsigned)
            if expect_hash and verified.content_hash != expect_hash.lower():
                raise WatchlistError(
                    f"bundle {bundle} refused: its content hash {verified.content_hash} is not "
                    f"the expected {expect_hash}"
                )
            info = verified.info()
            _emit(
                as_json,
                {**_bundle_document(info), "verified": True},
                lambda: [
                    f"bundle {bundle} verified; content hash {info.content_hash}; "
                    f"{verified.signature.describe()}"
                ],
            )
            return
        wl = _open(watchlist_path, workspace, create=True)
        info = wl.import_bundle(
            bundle,
            expected_content_hash=expect_hash,
            include_images=not no_images,
            keyring=keyring,
            allow_unsigned=allow_unsigned,
        )
        _emit(
            as_json,
            {
                **_bundle_document(info),
                "watchlist": str(wl.path),
                "content_hash_after": (wl.content_hash()),
            },
            lambda: [
                (
                    f"imported {plural(info.n_subjects, 'subject')}, "
                    f"{plural(info.n_templates, 'template')} "
                    f"from {info.path} into {wl.path}"
                ),
                f"bundle content hash {info.content_hash}",
            ],
        )


def _add_remove_command(watchlist_group: click.Group) -> None:
    @watchlist_group.command("remove")
    @click.argument("subject_ids", nargs=-1)
    @click.option(
        "--template", "template_ids", type=int, multiple=True, help="Remove one template by id."
    )
    @click.option("--expired", is_flag=True, help="Remove every expired subject.")
    @watchlist_path_option
    @workspace_option
    @json_option
    def remove_command(
        subject_ids: tuple[str, ...],
        template_ids: tuple[int, ...],
        expired: bool,
        watchlist_path: str | None,
        workspace: str | None,
        as_json: bool,
    ) -> None:
        """Delete subjects (with all their templates), single templates, or expired subjects.

        Deletion is real: freed database pages are overwritten and the file is vacuumed, so the
        removed data is no longer in the watchlist file. The audit log keeps the ids only.
        All or nothing: an unknown id removes nothing (exit code 7).
        """
        if not (subject_ids or template_ids or expired):
            raise click.UsageError("give SUBJECT_ID..., --template ID or --expired")
        wl = _open(watchlist_path, workspace, create=False)
        removed_templates = 0
        purged: tuple[str, ...] = ()
        if subject_ids:
            removed_templates += wl.remove_subjects(subject_ids)
        if template_ids:
            removed_templates += wl.remove_templates(template_ids)
        if expired:
            purged = wl.purge_expired()
        content = wl.content_hash()
        _emit(
            as_json,
            {
                "watchlist": str(wl.path),
                "removed_subjects": [*subject_ids, *purged],
                "removed_template_ids": list(template_ids),
                "content_hash": content,
            },
            lambda: [
                f"removed {plural(len(subject_ids) + len(purged), 'subject')}"
                + (f" ({', '.join(purged)} expired)" if purged else "")
                + (f" and {plural(len(template_ids), 'template')}" if template_ids else ""),
                f"watchlist {wl.path} version {content[:16]}",
            ],
        )


def _add_verify_command(watchlist_group: click.Group) -> None:
    @watchlist_group.command("verify")
    @watchlist_path_option
    @workspace_option
    @json_option
    def verify_command(watchlist_path: str | None, workspace: str | None, as_json: bool) -> None:
        """Check the watchlist's integrity: SQLite quick_check, every sealed row, the content hash
        recomputed from the data against its keyed MAC, and the audit log's keyed chain.

        Exit 0 when all hold; exit 7 with the reason when the file was changed outside lfr-eval or
        is damaged (it is then never searched or changed).
        """
        wl = _open(watchlist_path, workspace, create=False)  # opening runs every check once
        content = wl.verify()
        n_entries = wl.verify_audit()
        _emit(
            as_json,
            {
                "watchlist": str(wl.path),
                "content_hash": content,
                "key_id": wl.key_id,
                "audit_entries_verified": n_entries,
                "ok": True,
            },
            lambda: [
                f"watchlist {wl.path}: intact, version {content[:16]}, data key {wl.key_id}",
                f"audit log: {plural(n_entries, 'entry')}, chain intact",
            ],
        )


def _add_audit_command(watchlist_group: click.Group) -> None:
    @watchlist_group.command("audit")
    @click.option("--limit", type=int, default=None, help="Show only the last N entries.")
    @click.option(
        "--subject",
        "subject_id",
        default=None,
        help="Only the entries of this subject id (found by its pseudonym, also after removal).",
    )
    @watchlist_path_option
    @workspace_option
    @json_option
    def audit_command(
        limit: int | None,
        subject_id: str | None,
        watchlist_path: str | None,
        workspace: str | None,
        as_json: bool,
    ) -> None:
        """Show the audit log: every change (and export) with time, user and resulting version.

        Subjects appear by pseudonym (a keyed hash of their id) and images by a keyed hash of
        their sha256, so the log names no one; the chain of keyed entry hashes is checked first.
        """
        wl = _open(watchlist_path, workspace, create=False)
        n_entries = wl.verify_audit()
        entries = wl.audit_log(limit=None if subject_id else limit)
        if subject_id is not None:
            ref = wl.subject_ref(subject_id)
            entries = [e for e in entries if e.subject_id == ref]
            entries = entries[-limit:] if limit else entries
        document = {
            "watchlist": str(wl.path),
            "audit_chain_verified_entries": n_entries,
            "entries": [
                {
                    "entry_id": e.entry_id,
                    "at": e.at.isoformat(),
                    "action": e.action,
                    "subject_id": e.subject_id,
                    "template_id": e.template_id,
                    "actor": e.actor,
                    "content_hash": e.content_hash,
                    "details": e.details,
                }
                for e in entries
            ],
        }

        def lines() -> list[str]:
            return [
                f"{e.entry_id:>5}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<10} {e.action:<16}"
                f"{e.subject_id or '':<32} {'' if e.template_id is None else e.template_id!s:>6}"
                f"  {e.content_hash[:12]}"
                for e in entries
            ]

        _emit(as_json, document, lines)


def _bundle_document(info: Any) -> dict[str, Any]:
    return {
        "bundle": info.path,
        "content_hash": info.content_hash,
        "embedding_space": info.embedding_space,
        "n_subjects": info.n_subjects,
        "n_templates": info.n_templates,
        "n_images": info.n_images,
    }


def _identify_command(cli: click.Group) -> None:
    @cli.command("identify")
    @click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @click.option(
        "--threshold",
        type=click.FloatRange(-1.0, 1.0),
        required=True,
        help="Face-match threshold: cosine similarity in [-1, 1] at or above which a face "
        "raises an alert. Engine-specific (dlib's usual 0.6 distance is about 0.91).",
    )
    @click.option(
        "--top-k",
        type=click.IntRange(min=1),
        default=5,
        show_default=True,
        help="Candidates to show per face (distinct subjects).",
    )
    @click.option(
        "--search-backend",
        type=click.Choice(["auto", "numpy", "faiss"]),
        default="auto",
        show_default=True,
        help="Exact search implementation; all give the same candidates. 'auto': faiss on a GPU "
        "when one is really available, else numpy.",
    )
    @click.option(
        "--search-device",
        type=click.Choice(["auto", "cpu", "gpu"]),
        default="auto",
        show_default=True,
        help="Where to search; 'gpu' fails loudly unless faiss really sees a GPU.",
    )
    @click.option(
        "--include-expired", is_flag=True, help="Also search subjects whose expiry has passed."
    )
    @watchlist_path_option
    @workspace_option
    @engine_options
    @json_option
    def identify(
        images: tuple[str, ...],
        threshold: float,
        top_k: int,
        search_backend: Backend,  # click.Choice of the backends
        search_device: Device,
        include_expired: bool,
        watchlist_path: str | None,
        workspace: str | None,
        as_json: bool,
        **engine_args: Any,
    ) -> None:
        """Search every face in IMAGES against the watchlist (open-set 1:N identification).

        For each face: its box, the top candidates (distinct subjects) with cosine
        similarities, and ALERT when the best similarity is at or above --threshold. Expired
        subjects are not searched. All faces are searched in one batch.

        Exit code 0 when every image was read (whether or not it raised an alert), 3 if an image
        could not be read (the others are still searched), 7 if the watchlist was enrolled with
        another engine.
        """
        wl = _open(watchlist_path, workspace, create=False)
        engine = make_engine(**engine_args, workspace=workspace)
        index = wl.search_index(
            engine.engine_id,
            backend=search_backend,
            device=search_device,
            include_expired=include_expired,
        )
        if index.n_templates == 0:
            click.echo(
                f"warning: watchlist {wl.path} has no searchable templates; no face can alert",
                err=True,
            )
        names = {s.subject_id: s.display_name for s in wl.subjects()}
        results = identify_images(
            engine, index, images, top_k=top_k, threshold=threshold, display_names=names
        )
        records = [r.to_dict() for r in results]
        document = {
            "watchlist": str(wl.path),
            "content_hash": wl.content_hash(),
            "watchlist_size": index.watchlist_size,
            "engine": engine.engine_id.key,
            "search_backend": index.backend,
            "threshold": threshold,
            "images": records,
        }
        if as_json:
            _emit(True, document, list)
        else:
            for record in records:
                if record["error"]:
                    click.echo(f"{record['image']}: error: {record['error']}", err=True)
                    continue
                if not record["faces"]:
                    click.echo(f"{record['image']}: no face found")
                for n, face in enumerate(record["faces"], start=1):
                    box = ",".join(f"{v:.0f}" for v in face["box"])
                    verdict = "ALERT" if face.get("alert") else "no alert"
                    click.echo(f"{record['image']} face {n} [{box}]: {verdict}")
                    for c in face.get("candidates", []):
                        click.echo(
                            f"  {c['rank']}. {c['score']:.4f}  {c['subject_id']}"
                            + (f" ({c['display_name']})" if c["display_name"] else "")
                        )
        codes = [r["exit_code"] for r in records if r["exit_code"]]
        if codes:
            sys.exit(codes[0])


def register(cli: click.Group) -> None:
    """Add ``enrol``, ``watchlist`` and ``identify`` to the top-level group."""
    _enrol_command(cli)
    _watchlist_group(cli)
    _identify_command(cli)


__all__ = ["identify_images", "register"]
