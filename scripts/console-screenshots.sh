#!/usr/bin/env bash
# Regenerate the console's screenshots in docs/console/ by running its browser tests with
# DUNNING_CONSOLE_SCREENSHOTS set (needs RabbitMQ, chromium and chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
DUNNING_CONSOLE_SCREENSHOTS="$PWD/docs/console" .venv/bin/pytest -q tests/integration/test_console_browser.py \
    tests/integration/test_console_collector_browser.py
ls docs/console/*.png
