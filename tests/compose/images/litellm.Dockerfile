# Stand-in for ghcr.io/berriai/litellm:v<version> (BerriAI/litellm Dockerfile; the v1.103.3 file
# could not be read here, so this follows the layout every recent upstream Dockerfile shares):
#   USER root; WORKDIR /app; python3 on PATH (the compose healthcheck and the litellm-keys
#   one-shot run python3); ENTRYPOINT docker/prod_entrypoint.sh, which ends in
#   `exec litellm "$@"`; CMD ["--port", "4000"]; EXPOSE 4000.
# Differences: Debian bookworm's Python 3.11 instead of Wolfi's; LiteLLM from PyPI at the e2e
# suite's frozen set (tests/e2e/requirements-litellm.txt, wheels from build.sh's wheelhouse);
# the prisma Python package as upstream has it (litellm-prisma-requirements.txt) but no
# `prisma generate` at build time (Prisma's engines download from binaries.prisma.sh, which
# these machines cannot reach), so LiteLLM's database mode cannot run in this image.
ARG BASE
FROM ${BASE}
COPY requirements.txt /tmp/requirements.txt
COPY wheels/ /tmp/wheels/
RUN pip install --no-index --find-links /tmp/wheels --no-deps -r /tmp/requirements.txt \
    && rm -rf /tmp/wheels /root/.cache/pip \
    && mkdir -p /app/docker \
    && printf '#!/bin/sh\n# As upstream docker/prod_entrypoint.sh without its supervisord and ddtrace branches.\nexec litellm "$@"\n' \
        > /app/docker/prod_entrypoint.sh \
    && chmod +x /app/docker/prod_entrypoint.sh
USER root
WORKDIR /app
EXPOSE 4000/tcp
ENTRYPOINT ["docker/prod_entrypoint.sh"]
CMD ["--port", "4000"]
