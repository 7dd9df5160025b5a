"""Users of the web app: names, roles and argon2id password hashes, in one 0600 file.

The app is open without sign-in only while it listens on the loopback interface and no users
are configured. As soon as a users file holds a user, every page asks for a sign-in and shows
only what the user's roles allow; binding any other address *requires* users
(:func:`require_users_for_address`).

The file (``<config dir>/users.json``, or ``$LFR_USERS_FILE``) is managed with
``lfr-eval users add|remove|list``. Passwords are never stored, only argon2id hashes
(``argon2-cffi``, its default RFC 9106 low-memory parameters).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lfr_eval.errors import AccessError
from lfr_eval.limits import load_json
from lfr_eval.workspace import config_dir, write_private_file

if TYPE_CHECKING:
    from argon2 import PasswordHasher

ENV_USERS_FILE = "LFR_USERS_FILE"
USERS_FILE = "users.json"
USERS_FORMAT = "lfr-users"
MIN_PASSWORD_LENGTH = 10

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

MSG_EXPOSED_WITHOUT_USERS = (
    "refusing to listen on {address}: no users are configured, so anyone who can reach this "
    "machine could see and change the watchlist and alerts. Add users first "
    "('lfr-eval users add NAME --role administrator', file {path}), or listen on 127.0.0.1"
)


class Role(str, Enum):
    """What a user may do in the app (a user may hold several roles)."""

    TRAINER = "trainer"
    """Runs the live demo, enrols volunteers, reviews alerts in training."""
    REVIEWING_OFFICER = "reviewing-officer"
    """Reviews alerts on the Live page."""
    EVALUATOR = "evaluator"
    """Runs evaluations, explores thresholds, exports deployment configs."""
    ADMINISTRATOR = "administrator"
    """Everything."""

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower().replace("_", "-").replace(" ", "-"))
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise AccessError(f"unknown role {text!r}; roles are {choices}") from None


@dataclass(frozen=True)
class User:
    """One user of the app.

    Attributes
    ----------
    username : str
    roles : frozenset of Role
    created : str
        UTC, ISO 8601.
    password_hash : str
        argon2id PHC string; never shown.
    """

    username: str
    roles: frozenset[Role]
    created: str
    password_hash: str = ""

    def __repr__(self) -> str:  # never print the hash, even in a traceback
        return f"User({self.username!r}, roles={sorted(r.value for r in self.roles)})"

    def has_any(self, roles: Iterable[Role]) -> bool:
        """True when the user holds one of ``roles`` (administrators hold them all)."""
        return Role.ADMINISTRATOR in self.roles or bool(self.roles & set(roles))

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "roles": sorted(r.value for r in self.roles),
            "created": self.created,
            "password_hash": self.password_hash,
        }


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def users_file() -> Path:
    """``$LFR_USERS_FILE`` or ``<config dir>/users.json`` (outside the workspace)."""
    env = os.environ.get(ENV_USERS_FILE)
    return Path(env).expanduser() if env else config_dir() / USERS_FILE


class UserStore:
    """The users file.

    Parameters
    ----------
    path : path-like, optional
        Default :func:`users_file`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else users_file()

    def users(self) -> list[User]:
        """Every user, by name; ``[]`` when the file does not exist.

        Raises
        ------
        AccessError
            The file is malformed, or other users may write it (they could add themselves).
        """
        if not self.path.is_file():
            return []
        if os.name == "posix" and self.path.stat().st_mode & 0o022:
            raise AccessError(
                f"users file {self.path} is writable by other users (mode "
                f"{self.path.stat().st_mode & 0o777:o}); run 'chmod 600 {self.path}'"
            )
        data = load_json(self.path.read_bytes(), source=str(self.path), error=AccessError)
        if not isinstance(data, dict) or data.get("format") != USERS_FORMAT:
            raise AccessError(f"{self.path} is not an LFR users file")
        users = []
        for i, entry in enumerate(data.get("users", [])):
            try:
                users.append(
                    User(
                        username=str(entry["username"]),
                        roles=frozenset(Role.parse(r) for r in entry["roles"]),
                        created=str(entry["created"]),
                        password_hash=str(entry["password_hash"]),
                    )
                )
            except (KeyError, TypeError):
                raise AccessError(f"{self.path}: user {i} is malformed") from None
        return sorted(users, key=lambda u: u.username)

    def has_users(self) -> bool:
        return bool(self.users())

    def get(self, username: str) -> User | None:
        return next((u for u in self.users() if u.username == username), None)

    def _save(self, users: list[User]) -> None:
        document = {"format": USERS_FORMAT, "users": [u.to_dict() for u in users]}
        write_private_file(self.path, (json.dumps(document, indent=2) + "\n").encode())

    def add(
        self, username: str, password: str, roles: Iterable[Role], *, replace: bool = False
    ) -> User:
        """Add a user (or, with ``replace``, change an existing user's password and roles).

        Raises
        ------
        AccessError
            Bad name, no role, a password shorter than :data:`MIN_PASSWORD_LENGTH`, or the user
            exists and ``replace`` is False.
        """
        if not _USERNAME.match(username):
            raise AccessError(
                f"user name {username!r} must be 1-64 letters, digits or . _ @ - "
                "(starting with a letter or digit)"
            )
        roles = frozenset(roles)
        if not roles:
            raise AccessError("give the user at least one role (--role)")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccessError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        users = self.users()
        if any(u.username == username for u in users) and not replace:
            raise AccessError(f"user {username!r} already exists (use --replace to change it)")
        user = User(
            username=username,
            roles=roles,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            password_hash=_hasher().hash(password),
        )
        self._save([u for u in users if u.username != username] + [user])
        return user

    def remove(self, username: str) -> None:
        users = self.users()
        if not any(u.username == username for u in users):
            raise AccessError(f"no user {username!r} in {self.path}")
        self._save([u for u in users if u.username != username])

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right, else None (same work for an unknown name)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        user = self.get(username)
        # Hash against a throwaway hash for unknown names, so timing does not tell which
        # user names exist.
        target = user.password_hash if user else _dummy_hash()
        try:
            hasher.verify(target, password)
        except (VerificationError, InvalidHashError):
            return None
        return user


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hasher().hash("not a password of anyone"))
    return _DUMMY[0]


def is_loopback(address: str | None) -> bool:
    """True for addresses only this machine can reach: ``localhost``, 127.0.0.0/8, ``::1``.

    An empty or missing address means "every interface" to Streamlit, so it is *not* loopback.
    """
    if not address:
        return False
    host = address.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_users_for_address(address: str | None, store: UserStore | None = None) -> None:
    """Refuse to serve on a non-loopback ``address`` when no users are configured.

    Raises
    ------
    AccessError
        ``address`` is reachable from other machines and the users file holds no user.
    """
    if is_loopback(address):
        return
    store = store if store is not None else UserStore()
    if not store.has_users():
        raise AccessError(
            MSG_EXPOSED_WITHOUT_USERS.format(address=address or "every interface", path=store.path)
        )
