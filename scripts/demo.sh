#!/usr/bin/env bash
# Install Mailsflux into .venv and run the example job end to end:
# 1,200 rows rendered, DKIM-signed and delivered over SMTP into a local sink.
source "$(dirname "$0")/_env.sh"
ensure_venv
install_package ""
# --restart: each demo run sends the whole example again (without it, a second
# run resumes the first and finds every row settled).
exec "$VENV/bin/mailsflux" send examples/welcome/job.toml --local-sink --restart "$@"
