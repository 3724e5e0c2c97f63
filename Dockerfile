# Roost in a container: a multi-stage build, the broker running as an
# unprivileged user, its state in a volume.
#
#   docker build -t roost .
#   docker run -p 1883:1883 -v roost-data:/var/lib/roost roost
#
# The image listens on 0.0.0.0:1883 with anonymous clients REFUSED (a
# container port is reachable from outside): give it users with a password
# file, or allow anonymous access explicitly (docs/packaging.md):
#
#   docker run -v $PWD/passwd:/etc/roost/passwd:ro \
#     -e ROOST_AUTH__PASSWORD_FILE='{ path = "/etc/roost/passwd" }' roost
#
# scripts/check-packaging.sh checks this file's steps without Docker.

FROM rust:1-bookworm AS build
WORKDIR /src
# A C compiler is in the image (mimalloc is built from C).
COPY . .
RUN cargo build --release --locked -p roost \
    && install -D -m 0755 target/release/roost /out/roost

FROM debian:bookworm-slim
RUN groupadd --system roost \
    && useradd --system --gid roost --home-dir /var/lib/roost --shell /usr/sbin/nologin roost \
    && install -d -o roost -g roost -m 0750 /var/lib/roost \
    && install -d -m 0755 /etc/roost
COPY --from=build /out/roost /usr/local/bin/roost
COPY packaging/roost.docker.toml /etc/roost/roost.toml
USER roost
WORKDIR /var/lib/roost
VOLUME ["/var/lib/roost"]
EXPOSE 1883
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/roost"]
CMD ["-c", "/etc/roost/roost.toml"]
