# Stand-in for the official `python:3.12-slim-bookworm` (docker-library/python), the base of
# router/Dockerfile, built under that name by build.sh so the router's Dockerfile builds as shipped.
# Differences: Debian's Python 3.11 (bookworm has no 3.12), installed in /usr instead of
# /usr/local; `python` and `pip` commands, pip installing as root into the system as in the
# official image (Debian's EXTERNALLY-MANAGED marker is removed: the official image has none).
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y python3 python3-pip python3-venv python-is-python3 \
    && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
    && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
    && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
