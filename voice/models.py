"""Finding the Vosk model: VOSK_MODEL_PATH, the shared models folder, or the verified download."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final, NamedTuple

import httpx

from voice.config import SpeechSettings


class FileSum(NamedTuple):
    """Expected size and sha256 of one file inside a model directory."""

    size: int
    sha256: str


# From ../shared/models/README.md (a published Git LFS manifest of the official files).
# tests/voice/test_models.py checks that this table still matches that README.
OFFICIAL_SUMS: Final[Mapping[str, Mapping[str, FileSum]]] = {
    "vosk-model-small-cn-0.22": {
        "am/final.mdl": FileSum(
            15901896, "91eda2c04c4f599361cb92b0e5298ccdf6b3c7a1fa52bfcefcd2c4e07aa1c131"
        ),
        "graph/Gr.fst": FileSum(
            26082259, "46d41a9b1723abccdcb354d731a5b58d87c060100d88ada1a3e31220f52b0434"
        ),
        "graph/HCLr.fst": FileSum(
            16158762, "798af0d9ba6f2d727747f58e1e7b2305f8618bc8ea7f6c51beecd8a2c965b965"
        ),
        "ivector/final.ie": FileSum(
            9927287, "c39d46fbff04efb7baa9660ae7a728b0e2f35a4a1250b56ed3a599e26956df86"
        ),
    }
}

_FIX_HINT: Final = (
    "Fix: run `python scripts/voice_model.py` on a machine that can reach alphacephei.com, "
    "or unpack the model into ../shared/models/, or set VOSK_MODEL_PATH to a model directory. "
    "修复方法：运行 python scripts/voice_model.py 下载语音模型，或设置 VOSK_MODEL_PATH。"
)


class ModelNotFound(RuntimeError):
    """No usable Vosk model; the message says what was tried and how to fix it."""


class ModelDownloadError(ModelNotFound):
    """The download failed, or a downloaded file does not match its published sha256."""


def is_model_dir(path: Path) -> bool:
    """True when the directory looks like an unpacked Vosk model (acoustic model and config)."""
    return (path / "am" / "final.mdl").is_file() and (path / "conf" / "model.conf").is_file()


def resolve_model_path(settings: SpeechSettings) -> Path:
    """The model directory: VOSK_MODEL_PATH, then shared_models_dir/<name>, then models_dir/<name>.

    Never downloads (see `ensure_model`). An explicit VOSK_MODEL_PATH that is not a model is an
    error rather than silently falling back to another model.
    """
    if settings.vosk_model_path is not None:
        explicit = settings.vosk_model_path.expanduser()
        if is_model_dir(explicit):
            return explicit.resolve()
        raise ModelNotFound(
            f"VOSK_MODEL_PATH={explicit} is not a Vosk model directory "
            f"(expected am/final.mdl and conf/model.conf inside). {_FIX_HINT}"
        )
    tried: list[str] = ["VOSK_MODEL_PATH (not set)"]
    for folder in (settings.shared_models_dir, settings.models_dir):
        candidate = folder / settings.vosk_model_name
        if is_model_dir(candidate):
            return candidate.resolve()
        tried.append(str(candidate))
    raise ModelNotFound(
        f"No Vosk model {settings.vosk_model_name!r} found; tried: {', '.join(tried)}. {_FIX_HINT}"
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_model(model_dir: Path, sums: Mapping[str, FileSum]) -> None:
    """Check size and sha256 of each listed file; raise ModelDownloadError on any difference."""
    problems: list[str] = []
    for rel, expected in sums.items():
        path = model_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = path.stat().st_size
        if size != expected.size:
            problems.append(f"{rel}: {size} bytes, expected {expected.size}")
            continue
        actual = sha256_file(path)
        if actual != expected.sha256:
            problems.append(f"{rel}: sha256 {actual}, expected {expected.sha256}")
    if problems:
        raise ModelDownloadError(f"Model in {model_dir} failed verification: {'; '.join(problems)}")


def _safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Unzip, refusing members that would land outside the target (zip slip)."""
    root = target.resolve()
    for member in archive.infolist():
        dest = (root / member.filename).resolve()
        if not dest.is_relative_to(root):
            raise ModelDownloadError(f"Unsafe path in model archive: {member.filename!r}")
    archive.extractall(root)  # every member was checked above


def _find_model_root(folder: Path) -> Path:
    """The unpacked model directory: the folder itself or its single model subfolder."""
    if is_model_dir(folder):
        return folder
    for child in sorted(folder.iterdir()):
        if child.is_dir() and is_model_dir(child):
            return child
    raise ModelDownloadError("The archive holds no Vosk model (no am/final.mdl, conf/model.conf)")


def _fetch(url: str, dest: Path, *, connect_timeout: float, read_timeout: float) -> None:
    """Stream the URL into dest; network errors become ModelDownloadError."""
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            response.raise_for_status()
            with dest.open("wb") as out:
                for block in response.iter_bytes(1 << 20):
                    out.write(block)
    except httpx.HTTPError as exc:
        raise ModelDownloadError(f"Could not download {url}: {exc!r}. {_FIX_HINT}") from exc


def download_model(
    settings: SpeechSettings,
    *,
    url: str | None = None,
    sums: Mapping[str, FileSum] | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
) -> Path:
    """Download and unzip the model into models_dir/<name>, verifying the sha256 sums first.

    Nothing is left in models_dir unless every listed file matches; a model without published
    sums is refused (pass `sums` explicitly for another model).
    """
    name = settings.vosk_model_name
    url = url or settings.vosk_model_url
    if sums is None:
        if name not in OFFICIAL_SUMS:
            raise ModelDownloadError(f"No published sha256 sums for {name!r}; refusing to use it")
        sums = OFFICIAL_SUMS[name]
    final = settings.models_dir / name
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=".download-") as tmp:
        work = Path(tmp)
        archive_path = work / "model.zip"
        _fetch(url, archive_path, connect_timeout=connect_timeout, read_timeout=read_timeout)
        try:
            with zipfile.ZipFile(archive_path) as archive:
                _safe_extract(archive, work / "unpacked")
        except zipfile.BadZipFile as exc:
            raise ModelDownloadError(f"{url} is not a zip archive: {exc}") from exc
        root = _find_model_root(work / "unpacked")
        verify_model(root, sums)
        if final.exists():
            shutil.rmtree(final)
        root.rename(final)
    return final


def ensure_model(
    settings: SpeechSettings, *, connect_timeout: float = 5.0, read_timeout: float = 30.0
) -> Path:
    """The resolved model, downloading the official one when none is found (setup's step)."""
    try:
        return resolve_model_path(settings)
    except ModelNotFound:
        if settings.vosk_model_path is not None:
            raise  # an explicit path that is wrong is the user's to fix, not ours to replace
    return download_model(settings, connect_timeout=connect_timeout, read_timeout=read_timeout)


_ROW_RE: Final = re.compile(r"^\|\s*([\w./-]+)\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{64})\s*\|\s*$")


def parse_sums_table(markdown: str) -> dict[str, FileSum]:
    """The `| file | bytes | sha256 |` rows of a models README, as a sums mapping."""
    rows: dict[str, FileSum] = {}
    for line in markdown.splitlines():
        match = _ROW_RE.match(line.strip())
        if match:
            rows[match.group(1)] = FileSum(int(match.group(2)), match.group(3))
    return rows
