# The base of every stand-in image: a Debian root file system made here with
# `debootstrap --variant=minbase` and `docker import`ed (build.sh), plus this machine's CA bundle.
# No registry is reachable from these machines, so no upstream base image can be pulled.
ARG ROOTFS
FROM ${ROOTFS}
# The package registries are reached through a proxy that re-signs TLS: pip inside the image
# needs the host's bundle. It also goes to /usr/local/share/ca-certificates so that installing
# Debian's ca-certificates (python3-pip depends on it) keeps it in the regenerated bundle.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY ca-certificates.crt /usr/local/share/ca-certificates/stratum-host-bundle.crt
# `docker import` keeps no environment.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
RUN printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > /etc/apt/apt.conf.d/90stratum-no-recommends \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
CMD ["bash"]
