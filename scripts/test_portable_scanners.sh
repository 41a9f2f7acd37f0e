#!/usr/bin/env bash
# The byte scanners' portable form, tested where it is not the one built:
# x86-64 builds them with SSE2 (core/mailsflux/_simd.pxd) and an exact SWAR
# form, so neither the SWAR blocks nor the lower-bound answers that other
# machines get would otherwise run here. Builds the three modules that scan
# with MF_NO_SIMD and MF_SWAR_LOWER_BOUND beside the installed package and
# runs the scanners' tests against them. Called by scripts/test.sh.
source "$(dirname "$0")/_env.sh"
set -euo pipefail

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
site="$("$VENV/bin/python" -c 'import mailsflux, os; print(os.path.dirname(os.path.dirname(mailsflux.__file__)))')"
cp -r "$site/mailsflux" "$tmp/mailsflux"
rm -rf "$tmp/build-src" && mkdir "$tmp/build-src"
# A copy of the tree: the build writes into ./build and next to the sources.
git ls-files -z | xargs -0 cp --parents -t "$tmp/build-src"
(cd "$tmp/build-src" &&
  CFLAGS="${CFLAGS:-} -DMF_NO_SIMD -DMF_SWAR_LOWER_BOUND" MAILSFLUX_BUILD_ONLY=_canon,_mimebuild,_smtpfast \
    "$VENV/bin/python" -m pip install -q --no-deps --target "$tmp/only" . >"$tmp/build.log" 2>&1) ||
  { tail -20 "$tmp/build.log" >&2; exit 1; }
(cd "$tmp/only" && find mailsflux -name '*.so' -exec cp {} "$tmp/{}" \;)
"$VENV/bin/python" - "$tmp" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from mailsflux.dkim import _canon
assert _canon.BLOCKS_SIMD_OFF and not _canon.BLOCKS_SSE2 and not _canon.BLOCKS_SWAR_EXACT, (
    "the portable build still has SSE2 or exact SWAR offsets"
)
PY
PYTHONPATH="$tmp" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_simd_blocks.py tests/test_dkim_header_blocks.py tests/test_smtp_fast.py tests/test_mime_qp_fast_fuzz.py \
  tests/test_mime_seven_bit_fast_fuzz.py tests/test_dkim_fuzz.py tests/test_dkim_signer_equivalence.py
