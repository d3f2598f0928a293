# A plain mirror of `make build`: static binary, non-root runtime.
# Bases pinned by exact tag (Go patch release, Debian release). To pin them
# by digest as well, append @sha256:… from `docker buildx imagetools inspect`
# (this repository's build machine reaches no image registry); update tags
# and digests together, deliberately.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/foyer ./cmd/foyer \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/foyer /usr/local/bin/foyer
# The embedded store (and the generated TURN secret) live here, owned by the
# non-root user; mount a volume to keep them.
COPY --from=build --chown=65532:65532 /out/data /var/lib/foyer/data
WORKDIR /var/lib/foyer
USER nonroot:nonroot
# HTTP: signalling (/v1/signal), API, web pages, /healthz, /readyz, /metrics.
EXPOSE 8080/tcp
# The embedded TURN server; open the relay and media UDP ranges you configure too.
EXPOSE 3478/udp
ENTRYPOINT ["/usr/local/bin/foyer"]
CMD ["serve", "--data-dir", "/var/lib/foyer/data"]
