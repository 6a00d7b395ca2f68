#!/usr/bin/env bash
# Linli setup: everything `make run` and `make test` need, idempotent.
#
#   scripts/setup.sh [all|system|app|rasa|env|voice]...   default: all (= system app rasa env voice)
#   scripts/setup.sh find-python app|rasa           print the interpreter a new venv would use
#
#   system  apt packages from SYSTEM_PACKAGES whose binary is missing
#   app     .venv       Python 3.11 (3.12 accepted)       pip install -e '.[dev]'
#   rasa    .venv-rasa  Python 3.10 (3.9, 3.8 accepted)   pip install -r requirements/rasa.txt
#   env     .env from .env.example: created with fresh secrets, never overwritten,
#           keys missing from it are appended
#   voice   the Mandarin speech model (vosk-model-small-cn-0.22), downloaded and verified
#           once; without network a warning (make run goes on without recognition)
#
# A venv step is skipped when its stamp in .stamps/ matches the sha256 of its inputs,
# so running this again with nothing changed takes about a second. A venv whose
# python is broken or has the wrong version is recreated.
#
# Overrides (also used by tests/test_setup.py):
#   LINLI_ROOT        repository root to set up (default: the parent of scripts/)
#   LINLI_PYTHON311   interpreter for .venv        LINLI_PYTHON310  for .venv-rasa
#   LINLI_PYTHON_DIRS system directories searched for pythonX.Y
#                     (default "/usr/local/bin /usr/bin"; set it empty to skip them)
#   PYENV_ROOT        pyenv installation (default ~/.pyenv)
set -euo pipefail
shopt -s nullglob

# System packages as "apt-package:binary"; a package is installed only when its
# binary (a command name, or an absolute path for packages without one) is missing.
SYSTEM_PACKAGES=(
  espeak-ng:espeak-ng                 # Mandarin text-to-speech (pyttsx3's engine)
  sox:sox                             # audio conversion in tests and tools
  wrk:wrk                             # load generator for make bench
  chromium:chromium                   # browser tests of the voice web app
  fonts-noto-cjk:/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
  baresip-core:baresip                # SIP callers in phone-line tests
  sip-tester:sipp                     # SIP INFO and registrar peers in phone-line tests
  kamailio:kamailio                   # SIP dispatcher in front of phone workers
)

# Installed into .venv-rasa before Rasa. Rasa 3.6's dependencies need setuptools<70.
RASA_BOOTSTRAP=(pip "setuptools<70" wheel)

# Only bash builtins until a python is found, so that the interpreter search works
# (and fails clearly) even with an empty PATH.
case "${BASH_SOURCE[0]}" in
  */*) SCRIPT_DIR=$(cd -- "${BASH_SOURCE[0]%/*}" && pwd) ;;
  *) SCRIPT_DIR=$PWD ;;
esac
ROOT=${LINLI_ROOT:-$(cd -- "$SCRIPT_DIR/.." && pwd)}
STAMPS=$ROOT/.stamps

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Finding interpreters -------------------------------------------------------

# Print "X.Y /path/to/real/python" for a working interpreter. sys.executable
# resolves pyenv shims, so the venv does not depend on pyenv's current version.
python_probe() {
  "$1" -c 'import sys; print("%d.%d %s" % (sys.version_info[:2] + (sys.executable,)))' \
    </dev/null 2>/dev/null
}

# Candidate paths for python X.Y, in order of preference.
python_candidates() {
  local v=$1 dir pyenv_root
  command -v "python$v" || true
  if command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root 2>/dev/null); then
    printf '%s\n' "$pyenv_root/versions/$v"*/bin/"python$v"
  fi
  printf '%s\n' "${PYENV_ROOT:-${HOME:-}/.pyenv}/versions/$v"*/bin/"python$v"
  for dir in ${LINLI_PYTHON_DIRS-/usr/local/bin /usr/bin}; do
    printf '%s\n' "$dir/python$v"
  done
}

# find_python OVERRIDE_VAR "VERSIONS" WHAT: set FOUND_PYTHON or die explaining why.
find_python() {
  local override_var=$1 versions=$2 what=$3 v candidate probe
  local override=${!override_var:-}
  if [[ -n $override ]]; then
    probe=$(python_probe "$override") || die "$override_var=$override does not run"
    [[ " $versions " == *" ${probe%% *} "* ]] ||
      die "$override_var=$override is Python ${probe%% *}; $what needs Python ${versions// / or }"
    FOUND_PYTHON=${probe#* }
    return
  fi
  for v in $versions; do
    while IFS= read -r candidate; do
      [[ -n $candidate ]] || continue
      probe=$(python_probe "$candidate") || continue
      if [[ ${probe%% *} == "$v" ]]; then
        FOUND_PYTHON=${probe#* }
        return
      fi
    done < <(python_candidates "$v")
  done
  local want=${versions%% *}
  die "no Python ${versions// / or } found for $what.
  Searched: \$$override_var (unset), python$want on PATH, \$(pyenv root)/versions/$want*,
            ${PYENV_ROOT:-${HOME:-}/.pyenv}/versions/$want*, ${LINLI_PYTHON_DIRS-/usr/local/bin /usr/bin}
            (the same for the other accepted versions)
  Install it with pyenv (https://github.com/pyenv/pyenv):  pyenv install $want
  or, where your distribution packages it:  sudo apt-get install python$want python$want-venv
  or point $override_var at an interpreter:  $override_var=/path/to/python$want make setup"
}

# --- Virtualenvs ------------------------------------------------------------------

sha256() {
  local hash _
  if command -v sha256sum >/dev/null 2>&1; then
    read -r hash _ < <(sha256sum)
  else
    read -r hash _ < <(shasum -a 256)
  fi
  printf '%s' "$hash"
}

# Serialise concurrent runs (e.g. `make -j test lint`) while venvs are modified.
LOCKED=
take_lock() {
  mkdir -p "$STAMPS"
  if [[ -z $LOCKED ]] && command -v flock >/dev/null 2>&1; then
    exec 9>"$STAMPS/lock"
    flock 9
    LOCKED=1
  fi
}

# Per-venv settings, filled by venv_role.
VENV_DIR='' VENV_VERSIONS='' VENV_OVERRIDE='' VENV_WHAT='' VENV_STAMP=''
venv_role() {
  case $1 in
    app)
      VENV_DIR=$ROOT/.venv VENV_VERSIONS="3.11 3.12" VENV_OVERRIDE=LINLI_PYTHON311
      VENV_WHAT=".venv (the Linli app)" VENV_STAMP=$STAMPS/venv-app.sha256 ;;
    rasa)
      VENV_DIR=$ROOT/.venv-rasa VENV_VERSIONS="3.10 3.9 3.8" VENV_OVERRIDE=LINLI_PYTHON310
      VENV_WHAT=".venv-rasa (Rasa 3.6)" VENV_STAMP=$STAMPS/venv-rasa.sha256 ;;
    *) die "unknown venv role: $1" ;;
  esac
}

# True if the venv's python runs and has an accepted version.
venv_ok() {
  local version
  version=$("$VENV_DIR/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' \
    2>/dev/null) && [[ " $VENV_VERSIONS " == *" $version "* ]]
}

# Everything that, when changed, requires a reinstall.
stamp_key() {
  local role=$1
  {
    printf 'python %s\n' "$("$VENV_DIR/bin/python" -c 'import sys; print(sys.version)')"
    if [[ $role == app ]]; then
      cat "$ROOT/pyproject.toml"
    else
      printf 'bootstrap %s\n' "${RASA_BOOTSTRAP[@]}"
      cat "$ROOT/requirements/rasa.txt"
      [[ ! -f $ROOT/requirements/rasa-constraints.txt ]] ||
        cat "$ROOT/requirements/rasa-constraints.txt"
    fi
  } | sha256
}

install_into_venv() {
  local pip=("$VENV_DIR/bin/python" -m pip --disable-pip-version-check)
  if [[ $1 == app ]]; then
    "${pip[@]}" install --upgrade pip
    "${pip[@]}" install -e "${ROOT}[dev]"
  else
    "${pip[@]}" install --upgrade "${RASA_BOOTSTRAP[@]}"
    local constraints=()
    [[ ! -f $ROOT/requirements/rasa-constraints.txt ]] ||
      constraints=(-c "$ROOT/requirements/rasa-constraints.txt")
    "${pip[@]}" install -r "$ROOT/requirements/rasa.txt" ${constraints[@]+"${constraints[@]}"}
  fi
}

ensure_venv() {
  local role=$1 key
  venv_role "$role"
  FOUND_PYTHON=
  # Look for an interpreter before touching anything, so a missing one fails cleanly.
  venv_ok || find_python "$VENV_OVERRIDE" "$VENV_VERSIONS" "$VENV_WHAT"
  take_lock
  if ! venv_ok; then
    if [[ -e $VENV_DIR ]]; then
      log "${VENV_DIR##*/} is broken or has the wrong Python; recreating it"
      rm -rf -- "$VENV_DIR"
    fi
    [[ -n $FOUND_PYTHON ]] || find_python "$VENV_OVERRIDE" "$VENV_VERSIONS" "$VENV_WHAT"
    rm -f -- "$VENV_STAMP"
    log "creating ${VENV_DIR##*/} with $FOUND_PYTHON"
    "$FOUND_PYTHON" -m venv "$VENV_DIR" ||
      die "could not create $VENV_DIR with $FOUND_PYTHON (Debian/Ubuntu: install the
  python3.X-venv package matching that interpreter)"
  fi
  key=$(stamp_key "$role")
  if [[ -f $VENV_STAMP && $(<"$VENV_STAMP") == "$key" ]]; then
    log "${VENV_DIR##*/} is up to date"
    return
  fi
  log "installing into ${VENV_DIR##*/}"
  install_into_venv "$role"
  printf '%s\n' "$key" >"$VENV_STAMP.tmp"
  mv -f -- "$VENV_STAMP.tmp" "$VENV_STAMP"
  log "${VENV_DIR##*/} is ready"
}

# --- System packages --------------------------------------------------------------

# True if a SYSTEM_PACKAGES probe (a command, or an absolute path) is present.
system_probe_ok() {
  if [[ $1 == /* ]]; then [[ -e $1 ]]; else command -v "$1" >/dev/null 2>&1; fi
}

ensure_system() {
  local entry missing=() sudo=()
  for entry in "${SYSTEM_PACKAGES[@]}"; do
    system_probe_ok "${entry#*:}" || missing+=("${entry%%:*}")
  done
  if ((${#missing[@]} == 0)); then
    log "system packages present"
    return
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "missing system packages: ${missing[*]}. Install them with your package manager."
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      die "missing system packages: ${missing[*]}. Install them as root:
  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    fi
  fi
  log "installing system packages: ${missing[*]}"
  ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update
  ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
  for entry in "${SYSTEM_PACKAGES[@]}"; do
    system_probe_ok "${entry#*:}" ||
      die "${entry%%:*} was installed but ${entry#*:} is still missing"
  done
}

# --- Speech model -----------------------------------------------------------------

# The Mandarin Vosk model: found, or downloaded and checked against its sha256 sums.
# Without network this warns and goes on (voice recognition stays off, the rest runs).
ensure_voice_model() {
  "$ROOT/.venv/bin/python" "$ROOT/scripts/voice_model.py"
}

# --- .env -------------------------------------------------------------------------

ensure_env() {
  local python
  # envfile.py is stdlib only; before .venv exists any python3 >= 3.8 will do.
  for python in "$ROOT/.venv/bin/python" python3; do
    if "$python" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
      "$python" "$SCRIPT_DIR/envfile.py" sync "$ROOT/.env.example" "$ROOT/.env"
      log ".env is ready"
      return
    fi
  done
  die "creating .env needs python3 (3.8 or newer) on PATH"
}

# --- Main -------------------------------------------------------------------------

usage() {
  printf 'usage: %s [all|system|app|rasa|env|voice]...\n       %s find-python app|rasa\n' "$0" "$0"
}

main() {
  (($#)) || set -- all
  if [[ $1 == find-python ]]; then
    (($# == 2)) || { usage >&2; exit 2; }
    venv_role "$2"
    find_python "$VENV_OVERRIDE" "$VENV_VERSIONS" "$VENV_WHAT"
    printf '%s\n' "$FOUND_PYTHON"
    return
  fi
  local step steps=()
  for step in "$@"; do
    case $step in
      all) steps+=(system app rasa env voice) ;;
      system | app | rasa | env | voice) steps+=("$step") ;;
      -h | --help | help) usage; exit 0 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  for step in "${steps[@]}"; do
    case $step in
      system) ensure_system ;;
      app | rasa) ensure_venv "$step" ;;
      env) ensure_env ;;
      voice) ensure_voice_model ;;
    esac
  done
}

main "$@"
