"""The viewer's safety, over real HTTP on 127.0.0.1: the token on every route, nothing read
outside the output folder (traversal in every parameter, symlinks out), GET only, loopback
unless told otherwise, no external URL in any page, record text escaped, secrets redacted."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fms_dgt.config.env import redacted_config
from fms_dgt.datastores.base import write_json_atomic
from fms_dgt.view import __main__ as view_main
from tests.view.viewer_support import SECRET, STUB_TASK, XSS, ViewerServer, stub_run

CANARY = "OUTSIDE-CANARY-31f9"
LITERAL_KEY = "sk-literal-Card-Key-5521"
T = STUB_TASK.replace("/", "%2F")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of a real run's output plus traps: a file outside the folder holding a canary,
    a task whose data store is a symlink to it, a symlinked task folder pointing out, and a
    task card (written with the run's own redaction) holding a literal api_key."""
    base = tmp_path_factory.mktemp("viewer_sec")
    root = base / "out"
    shutil.copytree(stub_run(base / "run"), root)
    outside = base / "outside"
    (outside / "task").mkdir(parents=True)
    secret_line = json.dumps({"id": "x", "question": CANARY}) + "\n"
    (outside / "data.jsonl").write_text(secret_line)
    (outside / "task" / "data.jsonl").write_text(secret_line)
    (outside / "task" / "task_results.json").write_text(json.dumps({"status": CANARY}))
    evil = root / "evil"
    evil.mkdir()
    (evil / "task_results.json").write_text(json.dumps({"status": "complete"}))
    (evil / "data.jsonl").symlink_to(outside / "data.jsonl")
    (evil / "rejected.jsonl").symlink_to(Path("..") / ".." / "outside" / "data.jsonl")
    (root / "linked").symlink_to(outside / "task", target_is_directory=True)
    keyed = root / "keyed"
    keyed.mkdir()
    card = {
        "task_name": "keyed",
        "engines": [{"name": "llm1", "api_key": LITERAL_KEY, "base_url": "http://h"}],
    }
    write_json_atomic(keyed / "task_card.json", redacted_config(card))
    (keyed / "data.jsonl").write_text(json.dumps({"id": "k1", "question": "q"}) + "\n")
    return root


@pytest.fixture(scope="module")
def server(layout: Path) -> Iterator[ViewerServer]:
    with ViewerServer(layout) as srv:
        yield srv


ROUTES = [
    "/",
    "/api/status",
    f"/task?t={T}",
    f"/records?t={T}&store=data",
    f"/records?t={T}&store=rejected",
    f"/records?t={T}&store=failed",
    f"/record?t={T}&store=data&i=0",
    f"/compare?t={T}",
    f"/charts?t={T}",
    "/static/viewer.css",
    "/static/viewer.js",
    "/static/plotly.min.js",
    "/no/such/route",
]


def test_every_route_needs_the_token(server: ViewerServer) -> None:
    for route in ROUTES:
        for token in (None, "wrong-token", server.token[:-1]):
            status, _, body = server.request(route, token=token)
            assert status == 401, (route, token, status)
            assert "token" in body and CANARY not in body
        status, _, _ = server.request(route)
        assert status == (404 if route == "/no/such/route" else 200), route


def test_the_token_becomes_a_strict_httponly_cookie(server: ViewerServer) -> None:
    status, headers, _ = server.request("/")
    cookie = headers["set-cookie"]
    assert status == 200 and f"dgt_view_token={server.token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    ok, _, _ = server.request(
        f"/records?t={T}", token=None, headers={"Cookie": f"dgt_view_token={server.token}"}
    )
    bad, _, _ = server.request(f"/records?t={T}", token=None, headers={"Cookie": "dgt_view_token=nope"})
    assert (ok, bad) == (200, 401)


def test_other_methods_are_refused(server: ViewerServer) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for route in ("/", f"/records?t={T}", "/static/viewer.js"):
            status, headers, _ = server.request(route, method=method)
            assert status == 405, (method, route, status)
            assert "POST" not in headers.get("allow", "GET")


TRAVERSALS = [
    "/records?t=..%2F..%2Foutside&store=data",
    "/records?t=%2e%2e%2f%2e%2e%2foutside&store=data",
    "/records?t=../outside&store=data",
    "/records?t=%2Ftmp&store=data",
    f"/records?t={T}&store=..%2F..%2F..%2Foutside%2Fdata",
    f"/records?t={T}&store=%2e%2e/%2e%2e/%2e%2e/outside/data",
    f"/record?t={T}&store=..%2F..%2Foutside%2Fdata&i=0",
    "/task?t=..%2F..%2F..%2F..%2Fetc",
    "/task?t=%2Fetc%2Fpasswd",
    "/static/..%2Fapp.py",
    "/static/%2e%2e%2fapp.py",
    "/static/../app.py",
    "/static/../../../outside/data.jsonl",
    "/static/%2Fetc%2Fpasswd",
    "/../../outside/data.jsonl",
    "/%2e%2e/%2e%2e/outside/data.jsonl",
]


def test_no_traversal_reaches_outside(server: ViewerServer) -> None:
    for route in TRAVERSALS:
        status, _, body = server.request(route)
        assert status in (400, 404), (route, status)
        assert CANARY not in body and "import" not in body and "root:" not in body, route


def test_symlinks_out_of_the_folder_are_not_followed(server: ViewerServer) -> None:
    overview = server.get("/")
    assert "linked" not in overview  # a symlinked task folder is not a task
    assert CANARY not in overview
    assert "evil" in overview
    status, _, body = server.request("/task?t=evil")
    assert status == 200 and CANARY not in body
    for store in ("data", "rejected"):  # both stores point out: absent
        status, _, body = server.request(f"/records?t=evil&store={store}")
        assert status == 404 and CANARY not in body, store
    status, _, body = server.request("/records?t=linked&store=data")
    assert status == 404 and CANARY not in body
    status, _, body = server.request("/charts?t=evil")
    assert CANARY not in body


def test_non_loopback_bind_needs_the_flag(
    layout: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.org"):
        assert view_main.main([str(layout), "--host", host]) == 2
        err = capsys.readouterr().err
        assert "--allow-remote" in err and "Traceback" not in err
    calls: list[dict[str, object]] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert view_main.main([str(layout), "--host", "0.0.0.0", "--allow-remote", "--port", "1"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "not loopback" in captured.err
    assert calls and calls[0]["host"] == "0.0.0.0"
    assert view_main.main([str(layout)]) == 0  # default: loopback, a free port
    assert calls[-1]["host"] == "127.0.0.1" and int(str(calls[-1]["port"])) > 0
    assert re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{20,}", capsys.readouterr().out)


EXTERNAL = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I
)


def test_no_page_loads_anything_from_elsewhere(server: ViewerServer) -> None:
    for route in ROUTES[:-1]:
        status, headers, body = server.request(route)
        if route.endswith(".js") and "plotly" in route:
            continue  # plotly's bundle: served from the package; the CSP below holds it to 'self'
        assert not EXTERNAL.search(body), (route, EXTERNAL.search(body))
        if route.startswith("/static/"):
            assert "http://" not in body and "https://" not in body, route
        else:
            csp = headers["content-security-policy"]
            assert "default-src 'self'" in csp and "connect-src 'self'" in csp
            assert "http" not in csp and "*" not in csp


def test_record_text_is_escaped(server: ViewerServer) -> None:
    pages = [server.get(f"/records?t={T}&store=data&size=100"), server.get(f"/records?t={T}&store=rejected")]
    pages.append(server.get(f"/compare?t={T}"))
    for body in pages:
        assert "&lt;script&gt;alert(" in body
        assert "<script>alert" not in body and "<img src=x" not in body
    # the whole record page of a record with markup
    for i in range(30):
        status, _, body = server.request(f"/record?t={T}&store=data&i={i}")
        if status == 404:
            break
        assert "<script>alert" not in body and "onerror=alert(1)>" not in body.replace("&gt;", "")
    assert XSS.startswith("<script>")


def test_secrets_are_not_shown(server: ViewerServer) -> None:
    card = server.get(f"/task?t={T}")
    assert "Task card" in card and SECRET not in card
    keyed = server.get("/task?t=keyed")
    assert LITERAL_KEY not in keyed and "&#34;api_key&#34;: &#34;***&#34;" in keyed
    for route in ROUTES[:-4]:
        assert SECRET not in server.get(route)
