#!/usr/bin/env bash
# Install everything the tests need (Debian packages too) and run the whole suite:
# lint (ruff), types (mypy --strict), the layers (lint-imports), the docs site
# (mkdocs build --strict), and pytest. Safe to run again; reuses what it can.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

need_apt=()
for pair in tmux:tmux prometheus:prometheus ssh:openssh-client /usr/sbin/sshd:openssh-server; do
    tool=${pair%%:*}; package=${pair#*:}
    command -v "$tool" >/dev/null || [ -x "$tool" ] || need_apt+=("$package")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "== installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== building or reusing the real kube-apiserver (Debian's kubernetes source)"
CANARY_KUBE_APISERVER="$(bash .ci/kube/build-apiserver.sh | tail -n 1)"
export CANARY_KUBE_APISERVER

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
echo "== installing canary-tui and its test dependencies into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet ".[test]"
# The installed package (not only the source tree) must carry its themes.
(cd /tmp && "$OLDPWD/.venv/bin/python" -c 'import themes; assert themes.load_builtin_themes()')

echo "== ruff"
.venv/bin/ruff check canary_tui adapters themes tests benchmarks scripts
.venv/bin/ruff format --check canary_tui adapters themes tests benchmarks scripts
echo "== mypy --strict (canary_tui and adapters, all of them)"
.venv/bin/mypy
echo "== lint-imports (the layers' contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache
echo "== mkdocs build --strict (the documentation site, with its generated references)"
site_dir="$(mktemp -d)"
.venv/bin/mkdocs build --strict --quiet --site-dir "$site_dir"
rm -rf "$site_dir"
echo "== pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "pytest collected no tests: treated as failure"; code=1
fi
echo "== suite finished in $(( $(date +%s) - started )) s with exit code $code"
exit "$code"
