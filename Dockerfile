# dunning: one image for every component (evaluator, channel workers, webhook, admin tools).
# An exact patch release, never a floating tag: Python before 3.11.10 writes an RFC 2047
# encoded word that hides CR LF into an email header as a raw line break (CVE-2024-6923).
# dunning refuses such text itself (docs/email.md); the pin keeps the interpreter patched too.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 dunning
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dunning ./dunning
RUN pip install --no-cache-dir .
# config/ is not baked in: the operator mounts it (read-only, docker-compose.yml does), so an
# edit to the strategy or templates needs a restart, not a rebuild.
RUN mkdir -p /app/config /app/var/letters && chown -R dunning:dunning /app/var

USER dunning
# Lawyer letters' CJK font comes with the Python packages; convert it once into the image so a
# letter worker starts in a second (docs/operations.md, "Lawyer-letter font").
RUN python -m dunning.channels.letter.font_outlines
ENV DUNNING_CONFIG_DIR=/app/config DUNNING_DATA_DIR=/app/var DUNNING_LOG_FORMAT=json \
    DUNNING_LETTER_OUTBOX=/app/var/letters/outbox
# 8080: `dunning webhook`; 9100: a worker's /metrics, /healthz, /readyz (--metrics-port).
EXPOSE 8080 9100
ENTRYPOINT ["dunning"]
CMD ["--help"]
