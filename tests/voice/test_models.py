"""Finding the model (VOSK_MODEL_PATH, shared folder, downloads) and the verified download.

Downloads come from a local http.server serving a zip built here: no internet needed.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from voice.config import ROOT, SpeechSettings
from voice.models import (
    OFFICIAL_SUMS,
    FileSum,
    ModelDownloadError,
    ModelNotFound,
    download_model,
    ensure_model,
    is_model_dir,
    parse_sums_table,
    resolve_model_path,
)

NAME = "vosk-model-small-cn-0.22"
FILES = {
    "am/final.mdl": b"acoustic model " * 1000,
    "conf/model.conf": b"--endpoint.rule2.min-trailing-silence=0.5\n",
    "graph/Gr.fst": b"grammar fst " * 500,
}


def make_model(folder: Path) -> Path:
    """A directory shaped like a Vosk model (resolution looks at the files, not inside them)."""
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def settings(tmp_path: Path, **overrides: object) -> SpeechSettings:
    values: dict[str, object] = {
        "vosk_model_path": None,
        "shared_models_dir": tmp_path / "shared",
        "models_dir": tmp_path / "var" / "models",
        **overrides,
    }
    return SpeechSettings.model_validate(values)


def right_sums() -> dict[str, FileSum]:
    return {
        rel: FileSum(len(data), hashlib.sha256(data).hexdigest())
        for rel, data in FILES.items()
        if rel != "conf/model.conf"
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder) of a local HTTP server; put files into the folder to serve them."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()
    httpd.server_close()


def model_zip(*, top: str = NAME, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for rel, data in {**FILES, **(extra or {})}.items():
            archive.writestr(f"{top}/{rel}" if top else rel, data)
    return buffer.getvalue()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- resolution order ------------------------------------------------------------------------


def test_vosk_model_path_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = make_model(tmp_path / "mine")
    make_model(tmp_path / "shared" / NAME)
    monkeypatch.setenv("VOSK_MODEL_PATH", str(explicit))
    values = {"shared_models_dir": tmp_path / "shared", "models_dir": tmp_path / "m"}
    assert resolve_model_path(SpeechSettings.model_validate(values)) == explicit.resolve()


def test_an_empty_vosk_model_path_means_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = make_model(tmp_path / "shared" / NAME)
    monkeypatch.setenv("VOSK_MODEL_PATH", "")  # as .env.example ships it
    values = {"shared_models_dir": tmp_path / "shared", "models_dir": tmp_path / "m"}
    assert resolve_model_path(SpeechSettings.model_validate(values)) == shared.resolve()


def test_shared_models_come_before_downloaded_ones(tmp_path: Path) -> None:
    shared = make_model(tmp_path / "shared" / NAME)
    make_model(tmp_path / "var" / "models" / NAME)
    assert resolve_model_path(settings(tmp_path)) == shared.resolve()


def test_a_downloaded_model_is_found_when_nothing_is_shared(tmp_path: Path) -> None:
    downloaded = make_model(tmp_path / "var" / "models" / NAME)
    (tmp_path / "shared" / NAME).mkdir(parents=True)  # an empty folder is not a model
    assert resolve_model_path(settings(tmp_path)) == downloaded.resolve()


def test_no_model_anywhere_says_what_was_tried_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        resolve_model_path(settings(tmp_path))
    message = str(caught.value)
    assert str(tmp_path / "shared" / NAME) in message
    assert str(tmp_path / "var" / "models" / NAME) in message
    assert "VOSK_MODEL_PATH" in message
    assert "scripts/voice_model.py" in message


def test_a_wrong_explicit_path_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    make_model(tmp_path / "shared" / NAME)
    wrong = settings(tmp_path, vosk_model_path=tmp_path / "typo")
    with pytest.raises(ModelNotFound, match="is not a Vosk model directory"):
        resolve_model_path(wrong)
    with pytest.raises(ModelNotFound):
        ensure_model(wrong)  # and no download replaces what the user asked for


def test_the_korean_test_model_is_a_model_dir(ko_model_path: Path) -> None:
    assert is_model_dir(ko_model_path)


def test_the_sums_match_the_shared_models_readme() -> None:
    readme = ROOT.parent / "shared" / "models" / "README.md"
    if not readme.is_file():
        pytest.skip("../shared/models/README.md is not on this machine")
    assert parse_sums_table(readme.read_text(encoding="utf-8")) == dict(OFFICIAL_SUMS[NAME])


# --- verified download -----------------------------------------------------------------------


def test_download_unpacks_and_verifies(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, www = server
    (www / "model.zip").write_bytes(model_zip())
    config = settings(tmp_path)
    path = download_model(config, url=f"{url}/model.zip", sums=right_sums())
    assert path == config.models_dir / NAME
    assert is_model_dir(path)
    assert resolve_model_path(config) == path.resolve()
    assert sorted(p.name for p in config.models_dir.iterdir()) == [NAME]  # no leftovers


def test_ensure_model_downloads_only_when_nothing_is_found(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, _ = server  # serves nothing: a download attempt would fail
    shared = make_model(tmp_path / "shared" / NAME)
    assert ensure_model(settings(tmp_path, vosk_model_url=f"{url}/none.zip")) == shared.resolve()


def test_a_wrong_sha256_is_an_error_and_leaves_nothing(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, www = server
    (www / "model.zip").write_bytes(model_zip())
    sums = right_sums()
    sums["graph/Gr.fst"] = sums["graph/Gr.fst"]._replace(sha256="0" * 64)
    config = settings(tmp_path)
    with pytest.raises(ModelDownloadError, match=r"graph/Gr\.fst: sha256"):
        download_model(config, url=f"{url}/model.zip", sums=sums)
    assert list(config.models_dir.iterdir()) == []
    with pytest.raises(ModelNotFound):
        resolve_model_path(config)


def test_a_missing_or_resized_file_fails_verification(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, www = server
    (www / "model.zip").write_bytes(model_zip())
    sums = right_sums()
    sums["ivector/final.ie"] = FileSum(10, "1" * 64)
    sums["am/final.mdl"] = sums["am/final.mdl"]._replace(size=1)
    with pytest.raises(ModelDownloadError, match=r"ivector/final\.ie: missing") as caught:
        download_model(settings(tmp_path), url=f"{url}/model.zip", sums=sums)
    assert "am/final.mdl: 15000 bytes, expected 1" in str(caught.value)


def test_the_official_model_is_only_accepted_with_its_published_sums(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, www = server
    (www / "model.zip").write_bytes(model_zip())  # right layout, wrong contents
    with pytest.raises(ModelDownloadError, match=r"am/final\.mdl"):
        download_model(settings(tmp_path), url=f"{url}/model.zip")
    other = settings(tmp_path, vosk_model_name="vosk-model-cn-0.22")
    with pytest.raises(ModelDownloadError, match="No published sha256"):
        download_model(other, url=f"{url}/model.zip")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html>not found</html>", "not a zip"),
        (model_zip(top="", extra={"../evil.txt": b"x"}), "Unsafe path"),
        (model_zip(top="docs-only", extra={}).replace(b"final.mdl", b"other.mdl"), "no Vosk"),
    ],
)
def test_bad_archives_are_refused(
    tmp_path: Path, server: tuple[str, Path], payload: bytes, message: str
) -> None:
    url, www = server
    (www / "model.zip").write_bytes(payload)
    with pytest.raises(ModelDownloadError, match=message):
        download_model(settings(tmp_path), url=f"{url}/model.zip", sums=right_sums())
    assert not (tmp_path / "evil.txt").exists()


def test_an_unreachable_server_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/model.zip"
    with pytest.raises(ModelDownloadError, match="Could not download"):
        download_model(settings(tmp_path), url=url, sums=right_sums(), connect_timeout=2.0)


# --- the setup step ----------------------------------------------------------------------------


def run_script(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VOSK_MODEL_PATH": "",
        "VOSK_MODEL_URL": url,
        "SHARED_MODELS_DIR": str(tmp_path / "shared"),
        "MODELS_DIR": str(tmp_path / "var" / "models"),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "voice_model.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_setup_step_warns_and_succeeds_without_a_model(tmp_path: Path) -> None:
    result = run_script(tmp_path, f"http://127.0.0.1:{closed_port()}/model.zip")
    assert result.returncode == 0
    assert "WARNING: no speech recognition model" in result.stderr
    assert "Could not download" in result.stderr
    strict = run_script(tmp_path, f"http://127.0.0.1:{closed_port()}/model.zip", "--strict")
    assert strict.returncode == 1


def test_setup_step_refuses_a_download_with_wrong_sums(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, www = server
    (www / "model.zip").write_bytes(model_zip())
    result = run_script(tmp_path, f"{url}/model.zip")
    assert result.returncode == 0
    assert "failed verification" in result.stderr
    assert not (tmp_path / "var" / "models" / NAME).exists()


def test_setup_step_finds_a_shared_model(tmp_path: Path) -> None:
    shared = make_model(tmp_path / "shared" / NAME)
    result = run_script(tmp_path, "http://127.0.0.1:9/unused.zip", "--check")
    assert result.returncode == 0, result.stderr
    assert str(shared.resolve()) in result.stdout
