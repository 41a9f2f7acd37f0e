#!/usr/bin/env bash
# Install what the benchmarks need (Postfix's smtp-sink, wrk, Redis) and run
# each one as a script: every benchmark prints the machine, versions, units,
# and its ratio against the plain-Python way measured in the same run.
# Benchmarks never run in CI; timings are for reading, not asserting.
source "$(dirname "$0")/_env.sh"
ensure_venv

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/smtp-sink ] || command -v smtp-sink >/dev/null 2>&1 || need+=(postfix)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  if [[ " ${need[*]} " == *" postfix "* ]] && command -v debconf-set-selections >/dev/null 2>&1; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  apt_install "${need[@]}" || echo "mailsflux: benchmarks that need ${need[*]} will say so" >&2
fi
"$VENV/bin/python" -m pip install -q ".[test,redis]"

PY="$VENV/bin/python"
for b in bench_template bench_mime bench_dkim bench_render_sign bench_track bench_throttle bench_mx; do
  echo "== $b"; "$PY" "bench/$b.py"
done
echo "== bench_delivery_sink (50,000 pre-rendered messages)"; "$PY" bench/bench_delivery_sink.py 50000 8
echo "== bench_pipeline_sink (whole job)"; "$PY" bench/bench_pipeline_sink.py 20000
echo "== bench_trackserver (click redirects under wrk)"; "$PY" bench/bench_trackserver.py
echo "== bench_validate (1,000,000 rows)"; "$PY" bench/bench_validate.py 1000000
echo "== bench_reader_memory (peak RSS at 1M and 10M rows)"; "$PY" bench/bench_reader_memory.py
echo "== bench_engine (Engine.send from 100 tasks against one batch)"; "$PY" bench/bench_engine.py 20000
