# Stand-in for llama.cpp's CPU server image ghcr.io/ggml-org/llama.cpp:server-b<N>
# (.devops/cpu.Dockerfile, target `server`, read at upstream commit 34af94cd9 = b10470):
#   base with `libgomp1 curl` (upstream: Ubuntu 24.04, and ffmpeg since 3ebe862b5);
#   llama-server and every shared library flat in /app (`COPY --from=build /app/lib/ /app`);
#   ENV LLAMA_ARG_HOST=0.0.0.0; WORKDIR /app; HEALTHCHECK curl -f http://localhost:8080/health;
#   ENTRYPOINT ["/app/llama-server"]; no USER (root, as upstream), no EXPOSE, no CMD.
# The binaries are the e2e suite's CPU build (scripts/e2e-deps.sh, the llama.cpp source pinned in
# tests/e2e/versions.env), copied into the build context by build.sh as llama-cpp/.
ARG BASE
FROM ${BASE}
RUN apt-get update && apt-get install -y libgomp1 curl && rm -rf /var/lib/apt/lists/*
COPY llama-cpp/ /app/
ENV LLAMA_ARG_HOST=0.0.0.0
WORKDIR /app
RUN /app/llama-server --version
HEALTHCHECK CMD [ "curl", "-f", "http://localhost:8080/health" ]
ENTRYPOINT [ "/app/llama-server" ]
