"""`lbx fetch movielens` against a real HTTP server on 127.0.0.1 serving zips built here."""

from __future__ import annotations

import hashlib
import io
import tomllib
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from lbx_orchestration.cli import main
from lbx_orchestration.core.movielens.fetch import FetchError, fetch_movielens, parse_md5
from lbx_orchestration.core.movielens.settings_file import movielens_dir_setting
from lbx_orchestration.core.settings import BUNDLED_MOVIELENS_DIR
from lbx_orchestration_tests.support.recorded_server import LoopbackServer

LICENSE_LINE = "The user may not state or imply any endorsement from the University of Minnesota"


def movielens_zip(name: str = "ml-32m", extra: dict[str, bytes] | None = None) -> bytes:
    """A small MovieLens-layout zip: 30 ratings, the bundled README (for its license)."""
    ratings = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{(u + m) % 10 / 2 + 0.5},{1_600_000_000 + u * 100 + m}\n" for u in range(1, 7) for m in range(1, 6)
    )
    files = {
        f"{name}/ratings.csv": ratings.encode(),
        f"{name}/movies.csv": b"movieId,title,genres\n"
        + b"".join(f"{m},Film {m} (20{10 + m}),Drama\n".encode() for m in range(1, 6)),
        f"{name}/links.csv": b"movieId,imdbId,tmdbId\n"
        + b"".join(f"{m},00{m}0000,{100 + m}\n".encode() for m in range(1, 6)),
        f"{name}/README.txt": (BUNDLED_MOVIELENS_DIR / "README.txt").read_bytes(),
        # padding so the download spans several chunks and a cut lands mid-file
        f"{name}/tags.csv": b"userId,movieId,tag,timestamp\n"
        + b"".join(f"1,1,tag{i},1600000000\n".encode() for i in range(120_000)),
    }
    files.update(extra or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buf.getvalue()


class ZipServer(LoopbackServer):
    """Serves /<name>.zip with Range support; ``cut_after`` drops the first N connections mid-body."""

    def __init__(
        self, payload: bytes, md5_text: str, *, cut_after: int | None = None, cuts: int = 1, ranges: bool = True
    ) -> None:
        self.payload, self.md5_text = payload, md5_text
        self.cut_after, self.cuts, self.ranges = cut_after, cuts, ranges
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Range")))
                if self.path.endswith(".zip.md5"):
                    return self._send(200, outer.md5_text.encode(), {})
                if not self.path.endswith(".zip"):
                    return self._send(404, b"not here", {})
                body, status, headers = outer.payload, 200, {}
                wanted = self.headers.get("Range")
                if wanted and outer.ranges:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    body, status = body[start:], 206
                if outer.cut_after is not None and outer.cuts > 0:
                    outer.cuts -= 1
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(status, body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/datasets/movielens"


def md5_line(payload: bytes, name: str = "ml-32m") -> str:
    return f"{hashlib.md5(payload).hexdigest()}  {name}.zip\n"


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_md5_file_formats() -> None:
    digest = "6b51fb2759a8657d3bfcbfc42b592ada"
    assert parse_md5(f"{digest}  ml-25m.zip\n", "ml-25m") == digest
    assert parse_md5(f"MD5 (ml-25m.zip) = {digest.upper()}\n", "ml-25m") == digest
    assert parse_md5(digest, "ml-25m") == digest
    with pytest.raises(FetchError, match="holds no MD5 hash"):
        parse_md5("<html>not found</html>", "ml-25m")


def test_fetch_downloads_verifies_unpacks_and_remembers(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LBX_MOVIELENS_DIR", raising=False)
    settings = tmp_path / "settings.toml"
    monkeypatch.setenv("LBX_SETTINGS_FILE", str(settings))
    payload = movielens_zip()
    dest = tmp_path / "movielens"
    with ZipServer(payload, md5_line(payload)) as server:
        code = main(["fetch", "movielens", "ml-32m", "--base-url", server.base_url, "--dest", str(dest)])
    assert code == 0
    out, err = capsys.readouterr()
    assert "downloading ml-32m.zip:" in err and "(100%)" in err
    assert f"MD5 {hashlib.md5(payload).hexdigest()} verified" in out
    assert LICENSE_LINE in out and "commercial" in out
    assert "Citation" not in out  # only the license section of the README
    assert leftovers(dest) == ["ml-32m"]
    ratings = (dest / "ml-32m" / "ratings.csv").read_text().splitlines()
    assert ratings[0] == "userId,movieId,rating,timestamp" and len(ratings) == 31
    assert tomllib.loads(settings.read_text())["movielens_dir"] == str((dest / "ml-32m").resolve())
    assert movielens_dir_setting("bundled") == str((dest / "ml-32m").resolve())
    monkeypatch.setenv("LBX_MOVIELENS_DIR", "/from/the/environment")
    assert movielens_dir_setting("bundled") == "/from/the/environment"


def test_progress_reaches_the_total(tmp_path: Path) -> None:
    payload = movielens_zip()
    seen: list[tuple[int, int | None]] = []
    with ZipServer(payload, md5_line(payload)) as server:
        fetch_movielens(
            "ml-32m", tmp_path, base_url=server.base_url, progress=lambda done, total: seen.append((done, total))
        )
    assert len(seen) >= 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (len(payload), len(payload))


def test_a_cut_connection_resumes_with_a_range_request(tmp_path: Path) -> None:
    payload = movielens_zip()
    cut = len(payload) // 3
    with ZipServer(payload, md5_line(payload), cut_after=cut) as server:
        result = fetch_movielens("ml-32m", tmp_path, base_url=server.base_url, backoff=0.01)
    zip_requests = [r for r in server.requests if r[0].endswith(".zip")]
    assert zip_requests == [
        ("/datasets/movielens/ml-32m.zip", None),
        ("/datasets/movielens/ml-32m.zip", f"bytes={cut}-"),
    ]
    assert result.attempts == 2 and result.zip_bytes == len(payload)
    assert (tmp_path / "ml-32m" / "links.csv").exists() and leftovers(tmp_path) == ["ml-32m"]


def test_an_interrupted_run_keeps_its_part_and_the_next_run_resumes(tmp_path: Path) -> None:
    payload = movielens_zip()
    cut = len(payload) // 4
    server = ZipServer(payload, md5_line(payload), cut_after=cut, cuts=10)
    with server, pytest.raises(FetchError, match="run the command again to resume"):
        fetch_movielens("ml-32m", tmp_path, base_url=server.base_url, retries=1, backoff=0.01)
    assert leftovers(tmp_path) == ["ml-32m.zip.part"]
    kept = (tmp_path / "ml-32m.zip.part").stat().st_size
    assert kept == 2 * cut  # the retry resumed from `cut` and was cut again `cut` bytes later
    with ZipServer(payload, md5_line(payload)) as server:
        result = fetch_movielens("ml-32m", tmp_path, base_url=server.base_url)
    assert result.resumed_from == kept
    assert server.requests[-1] == ("/datasets/movielens/ml-32m.zip", f"bytes={kept}-")
    assert leftovers(tmp_path) == ["ml-32m"]


def test_a_server_without_ranges_restarts_cleanly(tmp_path: Path) -> None:
    payload = movielens_zip()
    (tmp_path / "ml-32m.zip.part").write_bytes(b"stale bytes from another attempt")
    with ZipServer(payload, md5_line(payload), ranges=False) as server:
        result = fetch_movielens("ml-32m", tmp_path, base_url=server.base_url)
    assert result.zip_bytes == len(payload) and leftovers(tmp_path) == ["ml-32m"]


def test_a_wrong_checksum_keeps_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    settings = tmp_path / "settings.toml"
    monkeypatch.setenv("LBX_SETTINGS_FILE", str(settings))
    payload = movielens_zip()
    dest = tmp_path / "movielens"
    with ZipServer(payload, "0" * 32 + "  ml-32m.zip\n") as server:
        code = main(["fetch", "movielens", "ml-32m", "--base-url", server.base_url, "--dest", str(dest)])
    assert code == 1
    err = capsys.readouterr().err
    assert "does not match its published checksum" in err and "0" * 32 in err
    assert leftovers(dest) == [] and not settings.exists()


def test_a_broken_zip_keeps_nothing_and_an_old_copy_survives(tmp_path: Path) -> None:
    old = tmp_path / "ml-32m"
    old.mkdir()
    (old / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n")
    payload = movielens_zip()
    broken = payload[: len(payload) // 2] + b"\0" * 64  # truncated: no central directory
    server = ZipServer(broken, md5_line(broken))
    with server, pytest.raises(FetchError, match="not a readable zip"):
        fetch_movielens("ml-32m", tmp_path, base_url=server.base_url)
    assert leftovers(tmp_path) == ["ml-32m"]
    assert (old / "ratings.csv").read_text().endswith("1,1,4.0,1\n")


def test_a_zip_with_parent_entries_is_refused(tmp_path: Path) -> None:
    payload = movielens_zip(extra={"ml-32m/../../escaped.txt": b"outside"})
    dest = tmp_path / "inside"
    server = ZipServer(payload, md5_line(payload))
    with server, pytest.raises(FetchError, match="points outside its folder.*escaped.txt"):
        fetch_movielens("ml-32m", dest, base_url=server.base_url)
    assert leftovers(dest) == [] and not (tmp_path / "escaped.txt").exists()


def test_a_zip_that_is_not_movielens_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("ml-32m/notes.txt", "hello")
    payload = buf.getvalue()
    server = ZipServer(payload, md5_line(payload))
    with server, pytest.raises(FetchError, match="no ratings.csv"):
        fetch_movielens("ml-32m", tmp_path, base_url=server.base_url)
    assert leftovers(tmp_path) == []


def test_an_unknown_data_set_is_refused_by_the_cli(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["fetch", "movielens", "ml-100m"])
    assert "invalid choice: 'ml-100m'" in capsys.readouterr().err
