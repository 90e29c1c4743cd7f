# syntax=docker/dockerfile:1
#
# The studio image: one image for `studio serve` (API and web studio, :8080)
# and `studio worker` (generation worker, admin endpoints on :9090).
#
#   docker build -t fgstudio:latest --build-arg VERSION=$(git describe --always --dirty) .
#   docker run --rm -p 8080:8080 fgstudio                     # API + worker in one process, embedded queue
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 fgstudio serve
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 fgstudio worker
#
# GPU workers: Dockerfile.cuda builds on this image. Examples: deploy/compose.yaml,
# deploy/k8s/. Operators: docs/deployment.md. test/deploy checks this file.

# The Go release of go.mod and the Debian release the runtime stage is checked
# against (test/deploy asks this machine's apt about its packages).
ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src

# ONNX Runtime 1.24.3 exactly as `make run` gets it: scripts/setup.sh fetches
# onnxruntime-node@1.24.3 with npm, checks the library against its pinned
# sha256 and installs it in /src/.deps/onnxruntime/lib (plus the
# libonnxruntime.so link). First, so that source edits keep this layer.
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh run && rm -rf /var/lib/apt/lists/* "$HOME/.npm"

COPY go.mod go.sum ./
RUN go mod download

# The packages of cmd/studio (test/deploy compares this list with
# `go list -deps ./cmd/studio`, embedded files included).
COPY cmd cmd
COPY contract contract
COPY frontend frontend
COPY generator generator
COPY internal internal
COPY queue queue
COPY studio studio
COPY textenc textenc
COPY worker worker

ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/studio ./cmd/studio \
	&& /out/studio version

# ---------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# libonnxruntime.so needs libstdc++ and libgcc_s besides glibc; ca-certificates
# for rediss:// URLs. The studio user has a fixed uid so that Kubernetes'
# runAsNonRoot can check it (deploy/k8s uses 10001 too).
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 studio \
	&& useradd --system --uid 10001 --gid studio --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin studio

COPY --from=build /src/.deps/onnxruntime/lib/ /opt/studio/lib/
COPY --from=build /out/studio /usr/local/bin/studio
COPY samples/models /opt/studio/models
COPY samples/examples /opt/studio/examples

# Nothing is written inside the image: it runs with a read-only root file system.
ENV ORT_LIB_PATH=/opt/studio/lib/libonnxruntime.so \
	STUDIO_MODELS_DIR=/opt/studio/models \
	STUDIO_EXAMPLES_DIR=/opt/studio/examples/birds
WORKDIR /opt/studio
USER 10001:10001
EXPOSE 8080 9090

# /healthz on the API port (serve) or the admin port (worker), whichever
# answers: the slim image has no curl, so the binary asks (`studio health`).
# The ports come from STUDIO_ADDR and STUDIO_ADMIN_ADDR: set them there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
	CMD ["/usr/local/bin/studio", "health", "--any"]

# The binary handles SIGTERM itself (drains within STUDIO_SHUTDOWN_TIMEOUT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/studio"]
CMD ["serve"]
