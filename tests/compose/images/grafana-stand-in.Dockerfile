# NOT Grafana. No Grafana package is in any registry these machines reach, so Grafana cannot run
# here. This answers Grafana's health endpoint (GET /api/health, what the compose healthcheck
# calls) and nothing else, as Grafana's uid 472, so start.sh's flow runs as shipped. The
# dashboards are tested without Grafana: every query of every panel runs against the real
# Prometheus of the stack (tests/compose) and the provisioning files are checked statically.
ARG BASE
FROM ${BASE}
RUN apt-get update && apt-get install -y wget && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /srv/grafana-stand-in/api \
    && printf '{"database": "ok", "version": "stand-in: not Grafana"}\n' \
        > /srv/grafana-stand-in/api/health \
    && useradd --uid 472 --gid 0 --no-create-home --shell /usr/sbin/nologin grafana
USER 472
EXPOSE 3000
ENTRYPOINT ["python3", "-m", "http.server", "3000", "--directory", "/srv/grafana-stand-in"]
