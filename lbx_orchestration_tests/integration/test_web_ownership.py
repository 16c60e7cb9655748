"""A member's data is theirs: an owner and an attacker against a real `lbx serve` on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lbx_orchestration_tests.support.lbx_cli import run_lbx
from lbx_orchestration_tests.support.web import (
    SAMPLE_EXPORTS,
    copy_warehouse,
    free_port,
    query,
    start_lbx_serve,
    wait_until_up,
    zip_folder,
)
from lbx_orchestration_tests.unit.export_builders import PROFILE, minimal_files, write_zip

REPO = Path(__file__).resolve().parents[2]
VICTIM = "patrickmjones"  # a bundled member: created by the operator


def entries(db: Path, user: str) -> int:
    return query(db, "select count(*) from raw.letterboxd_export_entries where lower(username) = ?", [user])[0][0]


def top(db: Path, user: str) -> list[int]:
    sql = "select tmdb_id from serving.user_recommendations where lower(username) = ? order by rank"
    return [r[0] for r in query(db, sql, [user])]


def one_rating_export(path: Path, profile_name: str) -> bytes:
    """What an attacker would send: one rating, and a profile naming someone else."""
    files = {**minimal_files(), "profile.csv": PROFILE.replace("tester_1", profile_name)}
    return write_zip(path, files).read_bytes()


@pytest.fixture(scope="module")
def served(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("ownership")
    db = copy_warehouse(materialized_warehouse.duckdb_path, root / "db")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = start_lbx_serve(
        db,
        port,
        root / "state",
        env,
        extra=["--imports-burst", "100", "--imports-per-minute", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, base, ready=lambda health: health["imports_ready"])
        yield base, db
    finally:
        server.terminate()
        server.communicate(timeout=30)


def upload(client: httpx.Client, payload: bytes, **form: str) -> httpx.Response:
    return client.post("/api/imports", files={"file": ("export.zip", payload, "application/zip")}, data=form)


def test_nobody_takes_over_a_member_the_operator_created(served, tmp_path: Path) -> None:
    base, db = served
    before_entries, before_list = entries(db, VICTIM), top(db, VICTIM)
    assert before_entries > 100 and len(before_list) == 50
    attack = one_rating_export(tmp_path / "a.zip", VICTIM)
    with httpx.Client(base_url=base, timeout=120) as attacker:
        by_profile = upload(attacker, attack)
        by_form = upload(attacker, one_rating_export(tmp_path / "b.zip", "someone_else"), username=VICTIM)
        by_case = upload(attacker, attack, username="PatrickMJones")
        with_a_guess = upload(attacker, attack, member_key="lbxk_guess")
    for r in (by_profile, by_form, by_case, with_a_guess):
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/json"
        assert f"lbx member key {VICTIM}" in r.json()["error"] and "set-cookie" not in r.headers
    assert "added by the operator" in with_a_guess.json()["error"]
    assert entries(db, VICTIM) == before_entries and top(db, VICTIM) == before_list


def test_the_owner_gets_a_key_and_only_they_change_their_member(served, tmp_path: Path) -> None:
    base, db = served
    export = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "mine.zip").read_bytes()
    with httpx.Client(base_url=base, timeout=120) as owner, httpx.Client(base_url=base, timeout=120) as attacker:
        first = upload(owner, export, username="Film_Owner")
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["username"] == "film_owner" and body["status"] == "imported"
        key = body["member_key"]
        assert key.startswith("lbxk_") and "Keep this member key" in body["key_note"]
        cookie = first.headers["set-cookie"].lower()
        assert "lbx_key_film_owner=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        stored = query(db, "select key_sha256, issued_by from raw.member_keys where username = 'film_owner'")
        assert stored and stored[0][1] == "web" and key not in stored[0][0]  # only a hash is kept
        owned = entries(db, "film_owner")

        # the attacker, under any case of the name, with no key or a wrong one
        for form in ({"username": "film_owner"}, {"username": "FILM_OWNER"}, {"member_key": key[:-2] + "xx"}):
            form.setdefault("username", "film_owner")
            r = upload(attacker, one_rating_export(tmp_path / "x.zip", "x"), **form)
            assert r.status_code == 403 and "only they can change their data" in r.json()["error"], r.text
        assert "the one sent is not it" in r.json()["error"]
        assert entries(db, "film_owner") == owned
        assert (
            query(
                db,
                "select count(distinct username) from raw.letterboxd_imports where lower(username) = ?",
                ["film_owner"],
            )[0][0]
            == 1
        )

        # the owner, from the same browser (the cookie), uploads again: no key typed
        again = upload(owner, export, username="film_owner")
        assert again.status_code == 200 and again.json()["status"] == "unchanged" and again.json()["member_key"] is None
        # the key also works from another client, as a header (a script) or typed into the form
        assert upload(attacker, export, username="film_owner", member_key=key).status_code == 200
        header = attacker.post(
            "/api/imports",
            files={"file": ("e.zip", export, "application/zip")},
            data={"username": "film_owner"},
            headers={"X-Lbx-Member-Key": key},
        )
        assert header.status_code == 200, header.text
    served_list = httpx.get(f"{base}/api/users/FILM_OWNER/recommendations", params={"limit": 50}).json()
    assert served_list["username"] == "film_owner"
    assert [r["rank"] for r in served_list["recommendations"]] == list(range(1, 51))  # one list, not two interleaved


def test_the_operator_issues_a_key_for_a_member_they_created(served, tmp_path: Path) -> None:
    base, db = served
    run = run_lbx("member", "key", "MelvinCarvalho", "--db", str(db))
    assert run.returncode == 0, run.stderr
    key = next(w for w in run.stdout.split() if w.startswith("lbxk_"))
    export = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "m.zip").read_bytes()
    with httpx.Client(base_url=base, timeout=120) as member:
        assert upload(member, export).status_code == 403  # before: no key
        r = upload(member, export, member_key=key)
        assert r.status_code == 200, r.text
        assert r.json()["username"] == "melvincarvalho" and "lbx_key_melvincarvalho=" in r.headers["set-cookie"]
        assert upload(member, export).status_code == 200  # the browser now remembers it
    unknown = run_lbx("member", "key", "nobody_here", "--db", str(db))
    assert unknown.returncode == 1 and "no member 'nobody_here'" in unknown.stderr


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page.html"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_page_on_another_origin_cannot_post(served, tmp_path: Path, headers: dict[str, str]) -> None:
    base, db = served
    before = query(db, "select count(*) from raw.letterboxd_imports")[0][0]
    payload = one_rating_export(tmp_path / "c.zip", "csrf_victim")
    r = httpx.post(
        f"{base}/api/imports", files={"file": ("e.zip", payload, "application/zip")}, headers=headers, timeout=60
    )
    assert r.status_code == 403 and r.json()["error"].startswith("cross-origin request refused")
    assert query(db, "select count(*) from raw.letterboxd_imports")[0][0] == before


def test_the_page_itself_may_post(served, tmp_path: Path) -> None:
    base, _ = served
    payload = one_rating_export(tmp_path / "d.zip", "same_origin_member")
    r = httpx.post(
        f"{base}/api/imports",
        files={"file": ("e.zip", payload, "application/zip")},
        headers={"Origin": base, "Referer": f"{base}/", "Sec-Fetch-Site": "same-origin"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "same_origin_member" and r.json()["member_key"]


def test_health_and_errors_name_no_paths_or_processes(served) -> None:
    base, db = served
    health = httpx.get(f"{base}/api/health").text
    assert str(db.parent) not in health and "/tmp" not in health and "pid" not in health.lower()
    assert httpx.get(f"{base}/docs").status_code == 404  # its scripts would come from a CDN
    assert "/api/imports" in httpx.get(f"{base}/openapi.json").json()["paths"]
