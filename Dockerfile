# Build: docker build -t reelay .
# Run:   docker run -p 8080:8080 -e REELAY__RUNWARE__API_KEY=... reelay
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked || true
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/reelay reelay \
    && mkdir -p /var/lib/reelay && chown reelay /var/lib/reelay
COPY --from=build /src/target/release/reelay /usr/local/bin/reelay
COPY config /etc/reelay
ENV REELAY_CONFIG_DIR=/etc/reelay \
    REELAY_ENVIRONMENT=production \
    REELAY__DATA__DIR=/var/lib/reelay
USER reelay
EXPOSE 8080
ENTRYPOINT ["reelay"]
CMD ["serve"]
