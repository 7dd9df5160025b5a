"""Access to the web app: loopback by default, users with roles and argon2 hashes when exposed,
server-side paths confined to allowed roots.

Pages are driven with AppTest against a real users file (argon2id hashes made by the code
under test). Signing in goes through the real form once; other tests put a user that exists
in the users file into the session, as the form does after a successful sign-in.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from app_support import engine_shown, run_until_engine_shown
from click.testing import CliRunner

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"
TIMEOUT = 120
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def app_env(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(APP))
    monkeypatch.setenv("LFR_WORKSPACE", str(workspace))
    for name in ("LFR_ENGINE", "LFR_DEVICE", "LFR_ALERT_RETENTION_HOURS"):
        monkeypatch.delenv(name, raising=False)
    return workspace


@pytest.fixture()
def users(private_config: Path):
    """A users file with one user per role."""
    from lfr_eval.users import Role, UserStore

    store = UserStore()
    store.add("trainer1", PASSWORD, [Role.TRAINER])
    store.add("evaluator1", PASSWORD, [Role.EVALUATOR])
    store.add("officer1", PASSWORD, [Role.REVIEWING_OFFICER])
    store.add("admin1", PASSWORD, [Role.ADMINISTRATOR])
    return store


def _cli(*args: str, input: str | None = None) -> tuple[int, str]:
    """Run ``lfr-eval`` in-process as a script would: (exit code, stdout + stderr)."""
    from lfr_eval.cli import main

    with CliRunner().isolation(input=input) as streams:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        text = b"".join(s.getvalue() for s in streams[:2] if s is not None).decode()
    return code, text


def _page(name: str) -> AppTest:
    path = APP / name if name == "Home.py" else APP / "pages" / name
    return AppTest.from_file(str(path), default_timeout=TIMEOUT)


def _signed_in(name: str, username: str, store) -> AppTest:
    """A page whose session is signed in as ``username`` (who must be in the users file)."""
    import _shared

    user = store.get(username)
    at = _page(name)
    at.session_state[_shared.STATE_USER] = _shared.SignedInUser(user.username, user.roles)
    return at


# ---------------------------------------------------------------------- users file and CLI


def test_users_file_holds_argon2_hashes_only_and_is_private(users) -> None:
    text = users.path.read_text()
    assert PASSWORD not in text
    assert text.count("$argon2id$") == 4
    assert stat.S_IMODE(users.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(users.path.parent.stat().st_mode) == 0o700
    assert users.authenticate("trainer1", PASSWORD) is not None
    assert users.authenticate("trainer1", PASSWORD + "x") is None
    assert users.authenticate("nobody", PASSWORD) is None


def test_users_cli_add_list_remove(private_config: Path) -> None:
    code, out = _cli(
        "users", "add", "alice", "--role", "evaluator", "--role", "trainer", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, out
    code, out = _cli("users", "add", "bob", "--role", "trainer", "--password-stdin", input="x\n")
    assert code == 18 and "at least" in out
    code, out = _cli("users", "list")
    assert "alice" in out and "evaluator, trainer" in out and "argon2" not in out
    assert _cli("users", "remove", "alice")[0] == 0
    assert "no users" in _cli("users", "list")[1]


def test_a_users_file_others_can_write_is_refused(users) -> None:
    from lfr_eval.errors import AccessError

    users.path.chmod(0o666)
    with pytest.raises(AccessError, match="writable by other users"):
        users.users()


# ---------------------------------------------------------------------- binding


def test_app_refuses_a_non_loopback_bind_without_users(workspace: Path) -> None:
    for address in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        code, out = _cli("app", "--check", "--address", address, "--workspace", workspace)
        assert code == 18, out
        assert "no users are configured" in out and "Traceback" not in out


def test_app_binds_loopback_by_default_with_safe_streamlit_options(workspace: Path) -> None:
    code, out = _cli("app", "--check", "--workspace", workspace)
    assert code == 0, out
    for flag in (
        "--server.address 127.0.0.1",
        "--browser.gatherUsageStats false",
        "--client.toolbarMode viewer",
        "--server.maxUploadSize 100",
        "--server.headless true",
    ):
        assert flag in out
    assert sys.executable in out


def test_app_binds_every_interface_once_users_exist(users, workspace: Path) -> None:
    code, out = _cli("app", "--check", "--address", "0.0.0.0", "--workspace", workspace)
    assert code == 0, out
    assert "4 users" in out
    # a wildcard bind names the URL itself, so Streamlit never asks an outside service for the
    # machine's external IP
    assert "--browser.serverAddress" in out


def test_pages_refuse_to_open_on_an_exposed_server_without_users() -> None:
    from streamlit import config

    saved = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = _page("Home.py").run()
    finally:
        config.set_option("server.address", saved)
    assert any("no users are configured" in e.value for e in at.error)
    assert not any(m.label == "Backend" for m in at.metric)


def test_loopback_without_users_stays_open() -> None:
    at = _page("Home.py").run()
    assert not at.exception and not at.error
    assert any("Open mode" in c.value for c in at.sidebar.caption)


# ---------------------------------------------------------------------- sign-in and roles


def test_sign_in_form_wrong_then_right_password(users) -> None:
    at = _page("Home.py").run()
    assert at.title[0].value == "Sign in"
    assert not any(m.label == "Backend" for m in at.metric)
    at.text_input(key="signin_username").input("admin1")
    at.text_input(key="signin_password").input("not the password")
    at.button[0].click().run()
    assert any("wrong password" in e.value for e in at.error)
    assert not any(m.label == "Backend" for m in at.metric)
    at.text_input(key="signin_username").input("admin1")
    at.text_input(key="signin_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert engine_shown(run_until_engine_shown(at))
    assert any("Signed in as **admin1**" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize(
    ("page", "allowed", "refused"),
    [
        ("2_Watchlist.py", "trainer1", "evaluator1"),
        ("3_Evaluate.py", "evaluator1", "officer1"),
        ("6_Export.py", "evaluator1", "trainer1"),
        ("4_Threshold_explorer.py", "admin1", "officer1"),
    ],
)
def test_each_page_gates_by_role(users, page: str, allowed: str, refused: str) -> None:
    ok = _signed_in(page, allowed, users).run()
    assert not ok.exception, [e.value for e in ok.exception]
    assert not any("may not open this page" in e.value for e in ok.error)
    no = _signed_in(page, refused, users).run()
    assert any("may not open this page" in e.value for e in no.error)


def test_a_removed_user_is_signed_out_at_the_next_run(users) -> None:
    at = run_until_engine_shown(_signed_in("Home.py", "trainer1", users).run())
    assert engine_shown(at)
    users.remove("trainer1")
    at.run()
    assert at.title[0].value == "Sign in"


def test_signed_in_user_is_recorded_in_the_watchlist_audit(
    users, insightface_images: Path, workspace: Path
) -> None:
    """The Watchlist page's audit entries name the signed-in user, not the OS account."""
    import cv2

    from lfr_eval.watchlist import Watchlist

    at = _signed_in("2_Watchlist.py", "trainer1", users).run()
    image = cv2.imread(str(insightface_images / "t1.jpg"))
    at.text_input(key="enrol_subject_id").input("case-audit")
    at.text_input(key="enrol_reason").input("training demo")
    at.checkbox(key="enrol_largest").check()
    at.file_uploader(key="enrol_files").set_value(
        ("group.jpg", cv2.imencode(".jpg", image)[1].tobytes(), "image/jpeg")
    )
    at.button(key="FormSubmitter:enrol_upload-Enrol photos").click().run()
    assert not at.exception, [e.value for e in at.exception]
    entries = Watchlist.open(workspace=workspace).audit_log()
    assert any(e.action != "create" and e.actor == "trainer1" for e in entries)


# ---------------------------------------------------------------------- server-side paths


def test_server_folders_outside_the_workspace_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "Jane_Doe").mkdir(parents=True)
    at = _page("2_Watchlist.py").run()
    at.text_input(key="folder_path").input("/etc")
    at.button(key="FormSubmitter:enrol_folder-Enrol folder").click().run()
    assert any("outside the folders this app may read" in e.value for e in at.error)
    assert not at.dataframe or "refused_table" not in str(at.dataframe)
    ev = _page("3_Evaluate.py").run()
    ev.text_input(key="load_path").input(str(outside)).run()
    ev.button(key="load_folder").click().run()
    assert any("outside the folders this app may read" in e.value for e in ev.error)
    # a symbolic link inside the workspace does not lead out of it
    import _shared

    link = _shared.workspace() / "escape"
    link.symlink_to("/etc")
    ev.text_input(key="load_path").input("escape").run()
    ev.button(key="load_folder").click().run()
    assert any("outside the folders this app may read" in e.value for e in ev.error)


def test_allowed_roots_extend_what_the_pages_may_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lfr_eval.workspace import allowed_roots, confine_path

    extra = tmp_path / "datasets"
    extra.mkdir()
    monkeypatch.setenv("LFR_ALLOWED_ROOTS", str(extra))
    assert confine_path(extra / "x.csv", allowed_roots()) == (extra / "x.csv").resolve()
