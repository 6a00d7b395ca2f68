"""Tests for the setup plumbing: scripts/setup.sh, scripts/envfile.py, scripts/run.py."""

from __future__ import annotations

import importlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
SETUP = SCRIPTS / "setup.sh"
BASH = shutil.which("bash") or "/bin/bash"
SECRET_KEYS = (
    "SERVICE_TOKEN",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "ACTIONS_OUTBOX_KEY",
    "BLIND_INDEX_KEY",
    "DEMO_STAFF_PASSWORD",
    "TELEGRAM_WEBHOOK_SECRET",
    "RASA_TOKEN",
)


def load_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import scripts/<name>.py the way `python scripts/run.py` sees it."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module(name)


@pytest.fixture
def envfile(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_script("envfile", monkeypatch)


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_script("run", monkeypatch)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch "repository" holding only a copy of .env.example."""
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    return tmp_path


def setup_sh(
    *args: str, root: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        # The running interpreter first, so `python3` is one that certainly works.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(root),
        "LINLI_ROOT": str(root),
    }
    return subprocess.run(
        [BASH, str(SETUP), *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_env(envfile: ModuleType, path: Path) -> dict[str, str]:
    result: dict[str, str] = envfile.read_env_file(path)
    return result


# --- .env -----------------------------------------------------------------------


def test_env_is_created_with_fresh_secrets(root: Path, envfile: ModuleType) -> None:
    result = setup_sh("env", root=root)
    assert result.returncode == 0, result.stderr

    dotenv = root / ".env"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    values = read_env(envfile, dotenv)
    example = read_env(envfile, root / ".env.example")
    assert values.keys() == example.keys()
    assert "__random__" not in values.values()
    assert {key for key, value in example.items() if value == "__random__"} == set(SECRET_KEYS)
    secrets = [values[key] for key in SECRET_KEYS]
    assert all(len(secret) >= 40 for secret in secrets)
    assert len(set(secrets)) == len(secrets)
    Fernet(values["FIELD_ENCRYPTION_KEY"].encode())  # raises if not a valid key
    Fernet(values["ACTIONS_OUTBOX_KEY"].encode())
    assert values["RECORDS_PORT"] == "8000"
    assert values["VOSK_MODEL_PATH"] == ""
    # Comments survive, so the generated file documents itself.
    assert "# Fernet key" in dotenv.read_text()


def test_existing_env_is_never_overwritten(root: Path) -> None:
    assert setup_sh("env", root=root).returncode == 0
    dotenv = root / ".env"
    before = dotenv.read_text() + "# my own note\n"
    dotenv.write_text(before)

    result = setup_sh("env", root=root)

    assert result.returncode == 0, result.stderr
    assert dotenv.read_text() == before


def test_missing_keys_are_appended(root: Path, envfile: ModuleType) -> None:
    dotenv = root / ".env"
    dotenv.write_text("RECORDS_PORT=9000\nSECRET_KEY=keep-me\n")

    result = setup_sh("env", root=root)

    assert result.returncode == 0, result.stderr
    values = read_env(envfile, dotenv)
    assert values["RECORDS_PORT"] == "9000"
    assert values["SECRET_KEY"] == "keep-me"
    assert values.keys() == read_env(envfile, root / ".env.example").keys()
    Fernet(values["FIELD_ENCRYPTION_KEY"].encode())
    assert values["SERVICE_TOKEN"] not in ("", "__random__")
    assert dotenv.read_text().startswith("RECORDS_PORT=9000\nSECRET_KEY=keep-me\n")
    # Idempotent: a second run finds nothing missing.
    after = dotenv.read_text()
    assert setup_sh("env", root=root).returncode == 0
    assert dotenv.read_text() == after


def test_env_parser(envfile: ModuleType) -> None:
    text = (
        "# comment\n"
        "\n"
        "A=1\n"
        "export B = two words \n"
        "C='quoted'\n"
        'D="x=y#z"\n'
        "E=\n"
        "A=again\n"
    )
    assert envfile.parse_env(text) == {
        "A": "again",
        "B": "two words",
        "C": "quoted",
        "D": "x=y#z",
        "E": "",
    }
    with pytest.raises(envfile.EnvFileError, match="line 2"):
        envfile.parse_env("A=1\nnot a setting\n")


# --- Finding interpreters ------------------------------------------------------------


@pytest.mark.parametrize(("step", "version"), [("app", "3.11"), ("rasa", "3.10")])
def test_missing_python_fails_clearly(root: Path, step: str, version: str) -> None:
    empty = root / "empty-bin"
    empty.mkdir()
    result = setup_sh(
        step,
        root=root,
        env={"PATH": str(empty), "PYENV_ROOT": str(root / "no-pyenv"), "LINLI_PYTHON_DIRS": ""},
    )

    assert result.returncode != 0
    assert f"no Python {version}" in result.stderr
    assert f"pyenv install {version}" in result.stderr
    assert f"apt-get install python{version}" in result.stderr
    assert not (root / (".venv" if step == "app" else ".venv-rasa")).exists()


def test_python_override_with_wrong_version_is_rejected(root: Path) -> None:
    result = setup_sh("find-python", "rasa", root=root, env={"LINLI_PYTHON310": sys.executable})

    assert result.returncode != 0
    assert "LINLI_PYTHON310=" in result.stderr
    assert "needs Python 3.10 or 3.9 or 3.8" in result.stderr


def test_find_python_accepts_a_matching_override(root: Path) -> None:
    result = setup_sh("find-python", "app", root=root, env={"LINLI_PYTHON311": sys.executable})

    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == Path(sys.executable).resolve()


# --- scripts/run.py -------------------------------------------------------------------


def test_services_table(run_module: ModuleType) -> None:
    table = run_module.services({"RECORDS_HOST": "0.0.0.0", "RECORDS_PORT": "8123"})

    records = table[0]
    assert records.name == "records"
    assert records.command[1:] == ("-m", "records", "serve")
    assert records.port == 8123
    assert records.health_url == "http://127.0.0.1:8123/health"
    assert len({service.name for service in table}) == len(table)
    assert len({service.port for service in table}) == len(table)

    text = run_module.format_table(table)
    assert "http://127.0.0.1:8123/api/v1" in text
    assert "http://127.0.0.1:8123/docs" in text
    assert "http://127.0.0.1:8123/admin" in text
    assert "DEMO_STAFF_PASSWORD" in text


def test_environment_overrides_env_file(run_module: ModuleType, tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("RECORDS_PORT=8000\nTIMEZONE=Asia/Shanghai\n")

    env = run_module.load_environment(dotenv, {"RECORDS_PORT": "9999"})

    assert env["RECORDS_PORT"] == "9999"
    assert env["TIMEZONE"] == "Asia/Shanghai"


def test_make_clean_keeps_the_downloaded_speech_model(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    model = tmp_path / "var" / "models" / "vosk-model-small-cn-0.22"
    model.mkdir(parents=True)
    (model / "am").write_text("weights")
    (tmp_path / "var" / "records.db").write_text("rows")
    (tmp_path / "var" / "logs").mkdir()
    (tmp_path / ".stamps").mkdir()
    subprocess.run(["make", "-s", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["models"]
    assert (model / "am").read_text() == "weights"
    assert not (tmp_path / ".stamps").exists()
