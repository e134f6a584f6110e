# memory-service API/worker image (CPU). Build: docker build -t memory-service .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    MEMORY_SERVICE_DATA_DIR=/data \
    MEMORY_SERVICE_HOST=0.0.0.0 \
    MEMORY_SERVICE_PORT=8080

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY memory_service ./memory_service
COPY compressors ./compressors
COPY stores ./stores
COPY api ./api
# The CPU build of torch comes from PyTorch's CPU index; the rest from PyPI.
# `--build-arg EXTRAS=cpu,lm` adds the LM compressors (compiles llama.cpp: ~8 minutes).
ARG EXTRAS=cpu
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
    && pip install ".[${EXTRAS}]"

VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["memory-service", "serve"]
