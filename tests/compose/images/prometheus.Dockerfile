# Stand-in for prom/prometheus (prometheus/prometheus, Dockerfile at v3.13.1): Debian bookworm's
# prometheus package (2.42: Debian has no 3.x) with the upstream image's contract:
#   ENTRYPOINT ["/bin/prometheus"], CMD --config.file=/etc/prometheus/prometheus.yml
#   --storage.tsdb.path=/prometheus, USER nobody, WORKDIR /prometheus owned by nobody,
#   EXPOSE 9090, VOLUME /prometheus, and a `wget` for the compose healthcheck (upstream: busybox's).
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /etc/prometheus \
    && chown -R nobody:nogroup /prometheus /etc/prometheus
USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
