# Stand-in for the official postgres:17-alpine (docker-library/postgres, 17/alpine3.23/Dockerfile
# at 6edb0a8c): Debian trixie's postgresql-17 (bookworm has only 15; trixie's 17 needs its libc),
# with the official image's contract:
#   user postgres uid/gid 70 (the alpine variant's, A:12-13), created before the packages;
#   PGDATA=/var/lib/postgresql/data (A:193) and VOLUME there (A:196);
#   listen_addresses='*' in postgresql.conf.sample, which initdb copies (A:186-189);
#   /var/run/postgresql mode 3777 owned by postgres (A:191);
#   ENTRYPOINT docker-entrypoint.sh, CMD postgres, STOPSIGNAL SIGINT, EXPOSE 5432 (A:200-227);
#   gosu to drop from root to postgres (A:20-46); pg_isready on PATH (the compose healthcheck).
# The entrypoint is ours (docker-entrypoint.sh beside this file): POSTGRES_USER / PASSWORD / DB,
# initdb only when $PGDATA/PG_VERSION is missing, scram-sha-256 for connections from the network.
ARG BASE
FROM ${BASE}
RUN groupadd --system --gid 70 postgres \
    && useradd --system --uid 70 --gid postgres --home-dir /var/lib/postgresql --shell /bin/sh postgres \
    && mkdir -p /var/lib/postgresql && chown postgres:postgres /var/lib/postgresql && chmod 1777 /var/lib/postgresql \
    && mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y postgresql-17 gosu \
    && rm -rf /var/lib/apt/lists/* \
    && sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/17/postgresql.conf.sample \
    && grep -F "listen_addresses = '*'" /usr/share/postgresql/17/postgresql.conf.sample \
    && mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql && chmod 3777 /var/run/postgresql
ENV PG_MAJOR=17 \
    PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
RUN mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 1777 "$PGDATA"
VOLUME /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
