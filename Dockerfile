# syntax=docker/dockerfile:1
# One image for every role: `concord` (all-in-one), `concord api|router|shard`, `concord cluster`.
#
#   docker build -t concord:dev .
#
# The build stage uses the workspace's minimum Rust version; the runtime stage is distroless
# (glibc and libgcc only, no shell), running as the image's unprivileged `nonroot` user.

FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target directory between builds without putting them in a
# layer; the binary is copied out of the cached target because the mount vanishes afterwards.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin concord \
    && install -D -m 0755 target/release/concord /out/concord \
    && install -d -m 0755 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/concord /usr/local/bin/concord
# The all-in-one server's SQLite file and generated token secret; the cluster roles write
# nothing (mount a volume here to keep an all-in-one server's data).
COPY --from=build --chown=65532:65532 /out/data /data
# Inside a container the listeners must not stay on loopback.
ENV CONCORD_LISTEN=0.0.0.0:8080 \
    CONCORD_ADMIN_LISTEN=0.0.0.0:9090 \
    CONCORD_LINK_LISTEN=0.0.0.0:7000 \
    CONCORD_DATA_DIR=/data
USER 65532:65532
EXPOSE 8080 9090 7000
ENTRYPOINT ["/usr/local/bin/concord"]
