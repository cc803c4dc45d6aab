"""``python -m dunning.sandbox``: the stand-ins in their own process (``dunning sandbox``)."""

from __future__ import annotations

from dunning.cli.sandbox import app

if __name__ == "__main__":
    app(prog_name="python -m dunning.sandbox")
