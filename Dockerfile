# syntax=docker/dockerfile:1
#
# dbbench in a container, for running it as N load-generator shards on Kubernetes
# (deploy/k8s/README.md). Build from the repository root:
#
#   docker build --build-arg DBBENCH_COMMIT=$(git rev-parse --short=12 HEAD) -t dbbench:latest .
#
# The cache mounts need BuildKit (the default builder since Docker 23). They keep the
# crates.io downloads and the compiled dependencies between builds on one builder, so a
# change to src/ recompiles dbbench alone.

FROM rust:1.95-bookworm AS build
WORKDIR /build

# build.rs asks git for the commit that results.json records; .git is not in the build
# context (.dockerignore), so it is passed in instead, or recorded as "unknown".
ARG DBBENCH_COMMIT=unknown
ENV DBBENCH_COMMIT=${DBBENCH_COMMIT}
# Extra cargo flags. `--build-arg CARGO_FLAGS=--no-default-features` leaves out both Qdrant
# engines (the embedded one is about 20 minutes of a cold 2-core build); the sharded
# workload uses neither.
ARG CARGO_FLAGS=""
# Keep the debug line tables (file:line in backtraces) at 512 MB instead of 72 MB, on
# every node that pulls the image: --build-arg STRIP=0.
ARG STRIP=1

COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# Cargo.toml declares this bench target, and cargo refuses a manifest whose target file
# is missing, even when it builds only the binary.
COPY benches/harness.rs ./benches/harness.rs

# target/ is a cache mount, so the binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin dbbench ${CARGO_FLAGS} \
    && if [ "$STRIP" = 1 ]; then \
         objcopy --strip-debug target/release/dbbench /usr/local/bin/dbbench; \
       else \
         cp target/release/dbbench /usr/local/bin/dbbench; \
       fi

FROM debian:bookworm-slim

# The binary links only glibc and libgcc_s (`ldd`), both in the base image. TLS to Neo4j
# and to the Qdrant server reads the system's trust store.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid, so a pod's `runAsNonRoot` can check it without a passwd lookup.
RUN groupadd --system --gid 10001 dbbench \
    && useradd --system --uid 10001 --gid 10001 --home-dir /opt/dbbench --no-create-home dbbench

COPY --from=build /usr/local/bin/dbbench /usr/local/bin/dbbench

WORKDIR /opt/dbbench
COPY workloads ./workloads
# What dbbench writes under its working folder by default: results/ and the
# ground-truth cache (.dbbench/cache); the workloads stay root's, read-only.
RUN mkdir -p results .dbbench/cache && chown dbbench:dbbench results .dbbench .dbbench/cache

USER 10001:10001
ENTRYPOINT ["dbbench"]
CMD ["--help"]
