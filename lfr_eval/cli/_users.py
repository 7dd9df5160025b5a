"""``lfr-eval users add|remove|list``: who may sign in to the web app, with which roles."""

from __future__ import annotations

import sys

import click

users_file_option = click.option(
    "--users-file",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="LFR_USERS_FILE",
    help="Users file (default: $LFR_USERS_FILE or users.json in the per-user config dir).",
)


def register(cli: click.Group) -> None:
    """Add the ``users`` group to the top-level group."""
    from lfr_eval.users import Role

    @cli.group("users")
    def users_group() -> None:
        """Users of the web app (argon2id password hashes, file mode 0600)."""

    @users_group.command("add")
    @click.argument("username")
    @click.option(
        "--role",
        "roles",
        multiple=True,
        required=True,
        type=click.Choice([r.value for r in Role]),
        help="A role (repeat for several).",
    )
    @click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the password from the first line of standard input (for scripts).",
    )
    @click.option("--replace", is_flag=True, help="Change an existing user's password and roles.")
    @users_file_option
    def add_command(
        username: str,
        roles: tuple[str, ...],
        password_stdin: bool,
        replace: bool,
        users_file: str | None,
    ) -> None:
        """Add USERNAME (the password is asked twice, never shown nor passed as an argument)."""
        from lfr_eval.users import UserStore

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt(
                f"password for {username}", hide_input=True, confirmation_prompt=True
            )
        store = UserStore(users_file)
        user = store.add(username, password, (Role(r) for r in roles), replace=replace)
        click.echo(
            f"user {user.username} ({', '.join(sorted(r.value for r in user.roles))}) "
            f"in {store.path}"
        )

    @users_group.command("remove")
    @click.argument("username")
    @users_file_option
    def remove_command(username: str, users_file: str | None) -> None:
        """Remove USERNAME (their open sessions end at their next page load)."""
        from lfr_eval.users import UserStore

        store = UserStore(users_file)
        store.remove(username)
        click.echo(f"removed user {username} from {store.path}")

    @users_group.command("list")
    @users_file_option
    def list_command(users_file: str | None) -> None:
        """List users and their roles (never the hashes)."""
        from lfr_eval.users import UserStore

        store = UserStore(users_file)
        users = store.users()
        if not users:
            click.echo(f"no users in {store.path}: the app runs open, on 127.0.0.1 only")
        for user in users:
            roles = ", ".join(sorted(r.value for r in user.roles))
            click.echo(f"{user.username:<24} {roles:<40} added {user.created}")
