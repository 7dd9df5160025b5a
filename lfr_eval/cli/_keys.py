"""``lfr-eval keys generate|trust|list|revoke|export``: signing keys and the trusted-key list.

The ``keys`` group is shared with the data-at-rest key commands; whichever module registers
first creates it (see :func:`keys_group`).
"""

from __future__ import annotations

from pathlib import Path

import click

from lfr_eval.errors import SignatureError


def keys_group(cli: click.Group) -> click.Group:
    """The ``keys`` group, created if no other module made it yet."""
    existing = cli.commands.get("keys")
    if isinstance(existing, click.Group):
        return existing

    @cli.group("keys")
    def group() -> None:
        """Signing keys (configs, bundles) and the data-at-rest key."""

    return group


keys_dir_option = click.option(
    "--keys-dir",
    type=click.Path(file_okay=False),
    default=None,
    envvar="LFR_KEYS_DIR",
    help="Folder of the signing key and trusted keys (default: $LFR_KEYS_DIR or the per-user "
    "config dir, outside the workspace).",
)


def register(cli: click.Group) -> None:
    """Add the signing-key commands to the ``keys`` group (and the data-key ones, if that
    module exists: the lazy top-level group loads one module per command name)."""
    import importlib.util

    group = keys_group(cli)
    load = getattr(cli, "load", None)
    if load is not None and importlib.util.find_spec("lfr_eval.cli._datakey") is not None:
        load("_datakey")

    @group.command("generate")
    @click.option("--name", required=True, help="Who holds the key (team or person); signed in.")
    @click.option("--overwrite", is_flag=True, help="Replace an existing signing key.")
    @keys_dir_option
    def generate_command(name: str, overwrite: bool, keys_dir: str | None) -> None:
        """Create this installation's Ed25519 signing key (private key 0600) and trust it."""
        from lfr_eval.signing import KeyRing

        ring = KeyRing(keys_dir)
        public = ring.generate(name, overwrite=overwrite)
        click.echo(f"signing key {public.key_id} ({public.name}) in {ring.private_key_path}")
        click.echo(f"public key (give this to whoever must verify): {ring.public_key_path}")

    @group.command("export")
    @keys_dir_option
    def export_command(keys_dir: str | None) -> None:
        """Print this installation's public key line (for 'keys trust' elsewhere)."""
        from lfr_eval.signing import KeyRing

        click.echo(KeyRing(keys_dir).signing_key().public.to_line())

    @group.command("trust")
    @click.argument("public_key")
    @click.option("--name", default=None, help="Name to trust the key under (default: its own).")
    @keys_dir_option
    def trust_command(public_key: str, name: str | None, keys_dir: str | None) -> None:
        """Trust PUBLIC_KEY: a .pub file or the 'lfr-ed25519 …' line itself."""
        from lfr_eval.signing import KeyRing, PublicKey

        path = Path(public_key)
        if path.is_file():
            if path.stat().st_size > 4096:
                raise SignatureError(f"{path} is too large to be a public key file")
            line, source = path.read_text(encoding="utf-8"), str(path)
        else:
            line, source = public_key, "the public key given"
        key = PublicKey.from_line(line, source=source)
        if name:
            key = PublicKey(raw=key.raw, name=name)
        entry = KeyRing(keys_dir).trust(key)
        click.echo(f"trusted key {entry.key_id} ({entry.key.name}) since {entry.added}")

    @group.command("list")
    @keys_dir_option
    def list_command(keys_dir: str | None) -> None:
        """List trusted keys (and this installation's own signing key)."""
        from lfr_eval.signing import KeyRing

        ring = KeyRing(keys_dir)
        own = ring.signing_key().public.key_id if ring.has_signing_key() else None
        keys = ring.trusted()
        if not keys:
            click.echo(f"no trusted keys in {ring.trust_path}")
        for entry in keys:
            state = f"REVOKED {entry.revoked}" if entry.revoked else "trusted"
            mine = "  (this installation's signing key)" if entry.key_id == own else ""
            click.echo(f"{entry.key_id}  {state:<30} added {entry.added}  {entry.key.name}{mine}")

    @group.command("revoke")
    @click.argument("key_id")
    @keys_dir_option
    def revoke_command(key_id: str, keys_dir: str | None) -> None:
        """Revoke a trusted key (KEY_ID or a unique prefix of 8+ characters)."""
        from lfr_eval.signing import KeyRing

        entry = KeyRing(keys_dir).revoke(key_id)
        click.echo(f"revoked key {entry.key_id} ({entry.key.name}) on {entry.revoked}")
