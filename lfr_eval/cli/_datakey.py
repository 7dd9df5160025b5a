"""``lfr-eval purge`` (retention, for cron) and the data-at-rest commands of ``lfr-eval keys``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import click

from lfr_eval.cli._common import workspace_option
from lfr_eval.wording import plural


def _echo(as_json: bool, document: Mapping[str, object], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=1))
    else:
        for line in lines:
            click.echo(line)


def _keys_group(cli: click.Group) -> click.Group:
    """The shared ``keys`` group (signing keys and the data key), made by whoever comes first."""
    group = cli.commands.get("keys")
    if isinstance(group, click.Group):
        return group

    @cli.group("keys")
    def keys_group() -> None:
        """Signing keys (configs, bundles) and the data-at-rest key."""

    return keys_group


def register(cli: click.Group) -> None:
    """Add ``purge`` and ``keys data-status`` / ``keys rotate-data``."""

    @cli.command("purge")
    @workspace_option
    @click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
    def purge_command(workspace: str | None, as_json: bool) -> None:
        """Delete everything past its retention period (run it from cron, e.g. hourly).

        Alerts and captures (LFR_ALERT_RETENTION_HOURS, default 24), watchlist subjects expired
        for longer than LFR_WATCHLIST_GRACE_DAYS (7), exports older than
        LFR_EXPORT_RETENTION_DAYS (30) and embedding-cache entries older than
        LFR_CACHE_RETENTION_DAYS (90). Prints and logs counts only (<workspace>/purge-log.jsonl).
        """
        from lfr_eval.retention import purge_workspace

        summary = purge_workspace(workspace)
        lines = [
            f"purged {summary.describe()}",
            *(f"skipped {why}" for why in summary.skipped),
        ]
        _echo(as_json, summary.to_dict(), lines)

    keys = _keys_group(cli)

    @keys.command("data-status")
    @workspace_option
    @click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
    def data_status_command(workspace: str | None, as_json: bool) -> None:
        """Where the data-at-rest key ring is, its current key, and which key each store uses."""
        from lfr_eval.atrest import load_key_ring

        ring = load_key_ring(create=False)
        stores = {}
        for label, path in _default_stores(workspace):
            stores[label] = _store_key(label, path)
        document = {
            "key_ring": ring.location,
            "current_key": ring.current,
            "retired_keys": ring.retired,
            "stores": stores,
        }
        lines = [f"key ring: {ring.location}", f"current data key: {ring.current}"]
        lines += [f"retired key: {k} (since {v})" for k, v in ring.retired.items()]
        lines += [f"{label}: {key}" for label, key in stores.items()]
        _echo(as_json, document, lines)

    @keys.command("rotate-data")
    @workspace_option
    @click.option(
        "--watchlist",
        "watchlists",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Another watchlist file to re-encrypt (repeatable); the workspace's is always done.",
    )
    @click.option(
        "--forget-old",
        is_flag=True,
        help="Delete the old key afterwards. Any store it still encrypts (one not named here) "
        "then becomes unreadable for good.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
    def rotate_data_command(
        workspace: str | None, watchlists: tuple[Path, ...], forget_old: bool, as_json: bool
    ) -> None:
        """Make a new data key and re-encrypt the workspace's stores with it.

        The old key stays in the ring (retired) so stores elsewhere can still be opened and
        re-encrypted later (open them once with 'keys rotate-data --watchlist PATH'), unless
        --forget-old is given.
        """
        from lfr_eval.atrest import forget_retired, rotate_key_ring
        from lfr_eval.datasets._cache import EmbeddingCache
        from lfr_eval.live._alerts import AlertStore
        from lfr_eval.watchlist._store import Watchlist

        stores = [(label, path) for label, path in _default_stores(workspace) if path.is_file()]
        stores += [(f"watchlist {p}", p) for p in watchlists]
        # open everything with the old key first: a store that cannot be read stops the rotation
        opened: list[tuple[str, Watchlist | AlertStore | EmbeddingCache]] = []
        for label, path in stores:
            if label == "alert store":
                opened.append((label, AlertStore(path)))
            elif label == "embedding cache":
                cache = EmbeddingCache(path)
                cache.verify()  # opening reads no entry: an edited one must stop it here too
                opened.append((label, cache))
            else:
                opened.append((label, Watchlist(path, create=False)))
        ring, old = rotate_key_ring()
        counts = {label: store.rekey() for label, store in opened}
        if forget_old:
            forget_retired([old])
        document = {
            "old_key": old,
            "new_key": ring.current,
            "old_key_forgotten": forget_old,
            "re_encrypted": counts,
        }
        lines = [f"new data key {ring.current} (was {old})"]
        lines += [f"re-encrypted {label}: {plural(n, 'row')}" for label, n in counts.items()]
        lines.append(f"old key {old} deleted" if forget_old else f"old key {old} kept (retired)")
        _echo(as_json, document, lines)


def _default_stores(workspace: str | None) -> list[tuple[str, Path]]:
    from lfr_eval.datasets._cache import CACHE_FILE_NAME
    from lfr_eval.live._alerts import ALERTS_DB
    from lfr_eval.watchlist._store import DEFAULT_WATCHLIST_NAME
    from lfr_eval.workspace import workspace_dir

    root = workspace_dir(workspace)
    return [
        ("watchlist", root / DEFAULT_WATCHLIST_NAME),
        ("alert store", root / ALERTS_DB),
        ("embedding cache", root / "cache" / CACHE_FILE_NAME),
    ]


def _store_key(label: str, path: Path) -> str | None:
    import sqlite3

    if not path.is_file():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return None
    finally:
        con.close()
    if "key_id" not in meta and meta.get("schema_version") == "1":
        # written by a version that kept it in clear: say so, not "no store"
        return "not sealed (older layout; sealed when next opened)"
    return None if "key_id" not in meta else str(meta["key_id"])
