#!/usr/bin/env bash
# Does every runtime package (requirements.txt, what the Docker image installs) have a wheel for
# the image's Python on Linux x86_64 and aarch64? The image (python:3.11-slim-bookworm) has no
# compiler, so a package without a wheel for the build machine's architecture would fail the build.
#
#   scripts/check_wheels.sh [REQUIREMENTS]   (default requirements.txt; `make check-wheels`)
#
# It needs PyPI, so it is not part of `make test`.
#
# pip download resolves the file for the other platform without installing anything, from PyPI
# alone (--isolated: no pip.conf, no PIP_* find-links or constraints of this machine), as the
# image's build does. --only-binary=:all: refuses source distributions, --platform names the
# wheels' tags. The image
# has glibc 2.36 (Debian bookworm), so every manylinux_2_5 ... manylinux_2_36 tag is accepted
# (pip 23 does not expand a manylinux_2_X tag to the older ones by itself). Exits non-zero if a
# package has no wheel for either architecture, naming it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
PIP=("$python" -m pip)
PY_VERSION=3.11
GLIBC_MINOR=36
requirements="${1:-requirements.txt}"

dest="$(mktemp -d)"
trap 'rm -rf "$dest"' EXIT
status=0
for arch in x86_64 aarch64; do
  platforms=()
  for minor in $(seq 5 "$GLIBC_MINOR"); do platforms+=(--platform "manylinux_2_${minor}_${arch}"); done
  platforms+=(--platform "manylinux2014_${arch}")
  if [ "$arch" = x86_64 ]; then
    platforms+=(--platform manylinux2010_x86_64 --platform manylinux1_x86_64)
  fi
  echo "== linux/${arch}, CPython ${PY_VERSION}, glibc <= 2.${GLIBC_MINOR}: wheels only"
  if "${PIP[@]}" --isolated download --quiet --disable-pip-version-check --no-cache-dir \
      --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
      "${platforms[@]}" --dest "$dest/$arch" -r "$requirements"; then
    echo "ok: $(find "$dest/$arch" -name '*.whl' | wc -l) wheels"
    find "$dest/$arch" -name '*.whl' -printf '   %f\n' | sort | grep -v -- '-none-any\.whl$' || true
  else
    echo "FAILED: a runtime package has no wheel for linux/${arch} (see pip's message above)"
    status=1
  fi
done
exit "$status"
