# syntax=docker/dockerfile:1
# Multi-arch:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --always) -t sidetail .
# BUILDER is the Go toolchain image; the end-to-end test passes a local shell image
# and mounts the host's Go into it, so no registry is needed there.
ARG BUILDER=golang:1.26
FROM --platform=$BUILDPLATFORM ${BUILDER} AS build
ARG TARGETOS TARGETARCH VERSION=dev
# Unset unless given: the end-to-end test builds offline from the host's module cache.
ARG GOPROXY GOFLAGS
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /sidetail .

# Only the static binary: no shell, no libc, no CA certificates (nothing to fetch).
FROM scratch
COPY --from=build /sidetail /sidetail
USER 65532:65532
ENTRYPOINT ["/sidetail"]
