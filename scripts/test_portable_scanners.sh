#!/usr/bin/env bash
# The byte scanners built the two ways the installed package is not, each
# beside it, with the scanners' tests run against that build. Called by
# scripts/test.sh.
#
# The portable form: x86-64 builds them with SSE2 (core/mailsflux/_simd.pxd)
# and an exact SWAR form, so neither the SWAR blocks nor the lower-bound
# answers that other machines get would otherwise run here. Built with
# MF_NO_SIMD and MF_SWAR_LOWER_BOUND.
#
# Under AddressSanitizer, as built here (SSE2): the blocks read and write
# sixteen bytes at a time, some past a header field's end into the rest of
# its message and its output buffer's slack, and a normal build would not
# notice a block that ran past its buffer. The tokens' base64url
# (tracking/_rewrite.pyx, SSSE3) reads sixteen bytes a block and uses
# twelve. The recipient reader's split (jobs/_rows.pyx) reads each line's
# characters in place and holds the lines it reads by hand (PyIter_Next).
# Python's own allocator is turned off (PYTHONMALLOC=malloc) so each bytes or
# str object is its own allocation, and a reference dropped once too often is
# a use after free.
source "$(dirname "$0")/_env.sh"
set -euo pipefail

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
site="$("$VENV/bin/python" -c 'import mailsflux, os; print(os.path.dirname(os.path.dirname(mailsflux.__file__)))')"
rm -rf "$tmp/build-src" && mkdir "$tmp/build-src"
# A copy of the tree: the build writes into ./build and next to the sources.
git ls-files -z | xargs -0 cp --parents -t "$tmp/build-src"
tests=(tests/test_simd_blocks.py tests/test_dkim_header_blocks.py
  tests/test_dkim_header_selection_keys.py tests/test_smtp_fast.py tests/test_mime_qp_fast_fuzz.py
  tests/test_mime_seven_bit_fast_fuzz.py tests/test_mime_unsubscribe_fast_fuzz.py
  tests/test_dkim_fuzz.py tests/test_dkim_signer_equivalence.py tests/test_track_token_base64.py
  tests/test_track_rewrite.py tests/test_track_rewrite_scratch.py tests/test_rows_split_fast_fuzz.py
  tests/test_rows_runs_compiled.py)

# build NAME CFLAGS LDFLAGS: the scanning modules into $tmp/NAME, over a copy
# of the installed package.
build() {
  cp -r "$site/mailsflux" "$tmp/$1"
  (cd "$tmp/build-src" && rm -rf build &&
    CFLAGS="${CFLAGS:-} $2" LDFLAGS="${LDFLAGS:-} $3" MAILSFLUX_BUILD_ONLY=_canon,_mimebuild,_smtpfast,_rewrite,_rows \
      "$VENV/bin/python" -m pip install -q --no-deps --target "$tmp/only-$1" . >"$tmp/build-$1.log" 2>&1) ||
    { tail -20 "$tmp/build-$1.log" >&2; exit 1; }
  (cd "$tmp/only-$1/mailsflux" && find . -name '*.so' -exec cp {} "$tmp/$1/{}" \;)
  mkdir "$tmp/$1-path" && mv "$tmp/$1" "$tmp/$1-path/mailsflux"
}

build portable "-DMF_NO_SIMD -DMF_SWAR_LOWER_BOUND" ""
"$VENV/bin/python" - "$tmp/portable-path" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from mailsflux.dkim import _canon
assert _canon.BLOCKS_SIMD_OFF and not _canon.BLOCKS_SSE2 and not _canon.BLOCKS_SWAR_EXACT, (
    "the portable build still has SSE2 or exact SWAR offsets"
)
PY
PYTHONPATH="$tmp/portable-path" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}"

echo "== the byte scanners under AddressSanitizer" >&2
asan="$(${CC:-gcc} -print-file-name=libasan.so)"
[ -f "$asan" ] || { echo "mailsflux: no libasan.so beside ${CC:-gcc} (install gcc's)" >&2; exit 1; }
build asan "-fsanitize=address -fno-omit-frame-pointer" "-fsanitize=address"
# Leaks are not looked for: the interpreter keeps what it allocated at exit.
# A bad read or write stops the process (exit 1) with AddressSanitizer's
# report on stderr, which --capture=sys leaves to the terminal (pytest's
# default capture of file descriptors would take it down with the process).
LD_PRELOAD="$asan" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc PYTHONPATH="$tmp/asan-path" \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider --capture=sys "${tests[@]}"
