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
COPY requirements ./requirements
# Exactly a lock file (see README, Install): requirements/runtime.txt (extra cpu), or
# `--build-arg LOCK=requirements/runtime-lm.txt` for the LM compressors too (compiles llama.cpp: ~8 minutes).
ARG LOCK=requirements/runtime.txt
# llama.cpp is compiled for any x86-64 with AVX2, not for the build machine's CPU (GGML_NATIVE's
# AVX-512/AMX kernels segfault on some CPUs); override with --build-arg CMAKE_ARGS=...
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# torch, at the lock's version (a +cpu build), comes alone from PyTorch's CPU index; the rest of
# the lock from PyPI with no dependency resolved; then the project itself.
RUN pip install --no-deps --index-url https://download.pytorch.org/whl/cpu "$(sed -n 's/^\(torch==[^ ]*\).*/\1/p' "${LOCK}")" \
    && CMAKE_ARGS="${CMAKE_ARGS}" pip install --no-deps -r "${LOCK}" \
    && pip install --no-deps --no-build-isolation . \
    && pip check

VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["memory-service", "serve"]
