#!/usr/bin/env bash
# Install Mailsflux with its test tools into .venv, the OS packages the tests
# use (Redis, Postfix's smtp-sink, opendkim-tools, swaks for the SMTP submission
# test, Chromium for the page tests, Pango and the DejaVu fonts for letters),
# then lint, type-check and test.
source "$(dirname "$0")/_env.sh"
ensure_venv

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/smtp-sink ] || command -v smtp-sink >/dev/null 2>&1 || need+=(postfix)
command -v opendkim-testmsg >/dev/null 2>&1 || need+=(opendkim-tools)
# swaks speaks TLS only with Net::SSLeay (a Recommends, which apt_install leaves out).
{ command -v swaks >/dev/null 2>&1 && perl -MNet::SSLeay -e1 2>/dev/null; } ||
  need+=(swaks libnet-ssleay-perl)
# WeasyPrint (the letters extra) lays text out with Pango and subsets fonts
# with HarfBuzz; the letter tests render DejaVu.
ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || need+=(libpango-1.0-0 libpangoft2-1.0-0)
ldconfig -p 2>/dev/null | grep -q 'libharfbuzz-subset.so.0' || need+=(libharfbuzz-subset0)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  if [[ " ${need[*]} " == *" postfix "* ]] && command -v debconf-set-selections >/dev/null 2>&1; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  echo "installing OS packages: ${need[*]}" >&2
  apt_install "${need[@]}" || echo "mailsflux: tests that need ${need[*]} will be skipped" >&2
fi

# The recipient pages are checked in a real headless browser (tests/_browser.py).
# Installed on its own: a platform without Debian's chromium must not lose Redis.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
   [ -z "${MAILSFLUX_TEST_CHROMIUM:-}" ]; then
  echo "installing OS packages: chromium" >&2
  apt_install chromium || echo "mailsflux: the page tests need chromium; they will be skipped" >&2
fi

# `bench e2e --profile` samples a send with Linux perf (tests/test_bench_e2e_profile.py).
# On its own too: a kernel without a matching perf must not cost the rest.
if ! command -v perf >/dev/null 2>&1; then
  echo "installing OS packages: linux-perf" >&2
  apt_install linux-perf || echo "mailsflux: the profile test needs perf; it will be skipped" >&2
fi

install_package test

echo "== ruff" >&2
"$VENV/bin/ruff" check src tests bench examples
echo "== mypy (strict)" >&2
"$VENV/bin/mypy"
echo "== benchmarks, once each without timing (they must keep working)" >&2
"$VENV/bin/python" -m pytest -q -p no:cacheprovider bench --benchmark-disable
echo "== the byte scanners' portable form (MF_NO_SIMD, MF_SWAR_LOWER_BOUND), then under AddressSanitizer" >&2
"$(dirname "$0")/test_portable_scanners.sh"
echo "== pytest" >&2
# The tests import the installed package (built from this tree), not src/.
exec "$VENV/bin/python" -m pytest "$@"
