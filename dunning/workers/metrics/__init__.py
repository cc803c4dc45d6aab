"""Worker metrics: the Prometheus collectors and endpoint (``prometheus``) and how a worker is
wired to them (``wiring``)."""
