# dunning: one image for every component (evaluator, channel workers, webhook, admin tools).
FROM python:3.11-slim-bookworm

# A CJK TrueType font: lawyer letters embed it; without one the letter worker refuses to start.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*

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
ENV DUNNING_CONFIG_DIR=/app/config DUNNING_DATA_DIR=/app/var DUNNING_LOG_FORMAT=json \
    DUNNING_LETTER_OUTBOX=/app/var/letters/outbox
# 8080: `dunning webhook`; 9100: a worker's /metrics, /healthz, /readyz (--metrics-port).
EXPOSE 8080 9100
ENTRYPOINT ["dunning"]
CMD ["--help"]
