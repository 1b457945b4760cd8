# Sourced by scripts/run and scripts/test: finds a Python >= 3.12 on this machine,
# makes the project's virtual environment (.venv) and installs the project into it.
# Re-installs only when pyproject.toml changes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MONITOR_VENV:-$ROOT/.venv}"

_is_new_enough() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

_apt_install_python() {
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
    local v
    apt-get update -qq >&2 || return 1
    for v in 3.14 3.13 3.12; do
        if apt-cache show "python$v-venv" >/dev/null 2>&1; then
            echo "==> installing Python $v from the distribution" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "python$v" "python$v-venv" >&2 && return 0
        fi
    done
    return 1
}

find_python() {
    local c
    if [[ -n "${MONITOR_PYTHON:-}" ]]; then
        if _is_new_enough "$MONITOR_PYTHON"; then echo "$MONITOR_PYTHON"; return 0; fi
        echo "MONITOR_PYTHON=$MONITOR_PYTHON is not a Python >= 3.12" >&2
        return 1
    fi
    for c in python3.12 python3.13 python3.14 python3.15 python3 python; do
        if command -v "$c" >/dev/null 2>&1 && _is_new_enough "$c"; then
            command -v "$c"; return 0
        fi
    done
    # Version managers (pyenv) may install versions that their shims do not expose.
    for c in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] \
             /usr/bin/python3.1[2-9] /opt/python*/bin/python3; do
        if [[ -x "$c" ]] && _is_new_enough "$c"; then echo "$c"; return 0; fi
    done
    # Last resort on Debian/Ubuntu as root: the distribution's own Python, if new enough
    # (Debian 13 and Ubuntu 24.04 ship 3.12+; Debian 12's 3.11 is too old).
    if _apt_install_python; then
        for c in python3.14 python3.13 python3.12 python3; do
            if command -v "$c" >/dev/null 2>&1 && _is_new_enough "$c"; then
                command -v "$c"; return 0
            fi
        done
    fi
    cat >&2 <<'MSG'
error: this project needs Python 3.12 or newer (mitmproxy 12 requires it), and none was found.
Looked for python3.12, python3.13, python3.14, python3 and python on PATH and in ~/.pyenv/versions.
Install one (Debian/Ubuntu: apt-get install python3.12 python3.12-venv) or set MONITOR_PYTHON=/path/to/python3.12.
MSG
    return 1
}

ensure_venv() {
    local py stamp want
    if [[ ! -x "$VENV/bin/python" ]] || ! _is_new_enough "$VENV/bin/python"; then
        py="$(find_python)"
        echo "==> creating virtual environment $VENV with $py ($("$py" --version 2>&1))" >&2
        rm -rf "$VENV"
        if ! "$py" -m venv "$VENV"; then
            # Debian splits venv/ensurepip into its own package: add it when we may
            local ver
            ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 \
                && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$ver-venv" >&2; then
                rm -rf "$VENV"
                "$py" -m venv "$VENV" || return 1
            else
                echo "error: '$py -m venv' failed; on Debian/Ubuntu install the venv module (apt-get install python$ver-venv)" >&2
                return 1
            fi
        fi
    fi
    stamp="$VENV/.installed"
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)-$1"
    local have=""
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    # A development install is a superset of the plain one.
    if [[ "$have" != "$want" && "$have" != "${want%-*}-dev" ]]; then
        echo "==> installing the project and its dependencies into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
        if [[ "$1" == "dev" ]]; then
            "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" >&2
        else
            "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT" >&2
        fi
        echo "$want" > "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
