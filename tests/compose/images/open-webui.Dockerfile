# Stand-in for ghcr.io/open-webui/open-webui:v<version>, following its own Dockerfile (in the
# open-webui 0.12.4 sdist): curl and jq installed (L145-153); WORKDIR /app/backend (L122); the ENV
# lines (L74-115, L231-232); the data directory /app/backend/data (L184); EXPOSE 8080 (L213);
# the curl|jq HEALTHCHECK (L215); USER 0:0 (UID=GID=0 by default, L24-25, L228); CMD
# ["bash", "start.sh"] (L234) with upstream's own backend/start.sh, taken from the same sdist.
# Differences: Debian bookworm's Python 3.11 (upstream: python:3.12-slim-trixie); OpenWebUI from
# PyPI's wheel at the e2e suite's frozen set (torch 2.13.0 CPU); the models upstream bakes in at
# build time (all-MiniLM-L6-v2, bge-micro-v2, whisper base, tiktoken cl100k_base) are not there:
# they come from hubs these machines cannot reach. FROM_INIT_PY=true and DATA_DIR tell the wheel
# where its frontend, version and data are (upstream's layout has them at /app/build,
# /app/package.json and /app/backend/data; `open-webui serve` sets FROM_INIT_PY itself).
ARG BASE
FROM ${BASE}
RUN apt-get update && apt-get install -y curl jq && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
COPY wheels/ /tmp/wheels/
# --ignore-requires-python: the frozen set's soupsieve 4.1.1 asks for Python >= 3.11.5 and
# bookworm's is 3.11.2 (upstream's image has 3.12).
RUN pip install --no-index --find-links /tmp/wheels --no-deps --ignore-requires-python -r /tmp/requirements.txt \
    && rm -rf /tmp/wheels /root/.cache/pip
ENV PYTHONUNBUFFERED=1 \
    ENV=prod \
    PORT=8080 \
    USE_OLLAMA_DOCKER=false \
    USE_CUDA_DOCKER=false \
    USE_SLIM_DOCKER=false \
    USE_CUDA_DOCKER_VER=cu128 \
    USE_EMBEDDING_MODEL_DOCKER=sentence-transformers/all-MiniLM-L6-v2 \
    USE_RERANKING_MODEL_DOCKER="" \
    USE_AUXILIARY_EMBEDDING_MODEL_DOCKER=TaylorAI/bge-micro-v2 \
    OLLAMA_BASE_URL="/ollama" \
    OPENAI_API_BASE_URL="" \
    OPENAI_API_KEY="" \
    WEBUI_SECRET_KEY="" \
    SCARF_NO_ANALYTICS=true \
    DO_NOT_TRACK=true \
    ANONYMIZED_TELEMETRY=false \
    WHISPER_MODEL="base" \
    WHISPER_MODEL_DIR="/app/backend/data/cache/whisper/models" \
    RAG_EMBEDDING_MODEL=sentence-transformers/all-MiniLM-L6-v2 \
    RAG_RERANKING_MODEL="" \
    AUXILIARY_EMBEDDING_MODEL=TaylorAI/bge-micro-v2 \
    SENTENCE_TRANSFORMERS_HOME="/app/backend/data/cache/embedding/models" \
    TIKTOKEN_ENCODING_NAME="cl100k_base" \
    TIKTOKEN_CACHE_DIR="/app/backend/data/cache/tiktoken" \
    HF_HOME="/app/backend/data/cache/embedding/models" \
    HOME=/root \
    DOCKER=true \
    FROM_INIT_PY=true \
    DATA_DIR=/app/backend/data
WORKDIR /app/backend
COPY start.sh /app/backend/start.sh
RUN mkdir -p /app/backend/data
EXPOSE 8080
HEALTHCHECK CMD curl --silent --fail http://localhost:${PORT:-8080}/health | jq -ne 'input.status == true' || exit 1
USER 0:0
CMD [ "bash", "start.sh" ]
