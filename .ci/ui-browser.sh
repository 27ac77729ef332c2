#!/usr/bin/env bash
# The headless browser of the web UI's tests (tests/serving/test_ui_pages.py): Debian's chromium, driven by
# Playwright's Python package with executable_path (Playwright's own browser downloads are never used).
# Idempotent and non-interactive: a machine that has chromium skips the install.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
