# syntax=docker/dockerfile:1
# heare-auth in an image that holds nothing but two static binaries, the CA bundle and an empty
# /data owned by the unprivileged user (deploy/README.md). `make docker-context` assembles and
# lists the same filesystem without Docker.

# The toolchain the static build is tested with (the workspace needs >= 1.89).
FROM rust:1.95.0-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools file \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# deploy/static.sh builds both binaries with --locked for x86_64-unknown-linux-musl and fails
# unless they are static; deploy/image-root.sh lays out the final filesystem in /image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bash deploy/static.sh \
 && bash deploy/image-root.sh /image \
 && mkdir /image-data \
 && mv /image/data /image-data/data

FROM scratch
COPY --from=build /image/ /
# Copied as an entry of its parent so that --chown applies to the directory itself.
COPY --from=build --chown=65534:65534 /image-data/ /
# No S3_BUCKET: the keys file is /data/keys.json (mount a volume there to keep it).
# With S3_BUCKET (and credentials) set, the keys live in S3 and /data stays empty.
ENV PATH=/usr/local/bin \
    HOST=0.0.0.0 \
    PORT=8080 \
    KEYS_FILE=/data/keys.json
WORKDIR /data
USER 65534:65534
EXPOSE 8080
CMD ["/usr/local/bin/heare-auth-server"]
