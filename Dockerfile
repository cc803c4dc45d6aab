# dunning: one image for every component (evaluator, channel workers, webhook, admin tools).
FROM python:3.11-slim-bookworm

# A CJK TrueType font: lawyer letters embed it; without one the letter worker refuses to start.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 dunning
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dunning ./dunning
RUN pip install --no-cache-dir .
COPY config ./config
RUN mkdir -p /app/var && chown -R dunning:dunning /app/var

USER dunning
ENV DUNNING_CONFIG_DIR=/app/config DUNNING_DATA_DIR=/app/var DUNNING_LOG_FORMAT=json
ENTRYPOINT ["dunning"]
CMD ["--help"]
