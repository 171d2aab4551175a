# syntax=docker/dockerfile:1

# mobile-auth-bff: a static binary on distroless, running as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t mobile-auth-bff .
#
# See docker-compose.yml for a ready-to-run service with PostgreSQL.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that editing the code does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/mobile-auth-bff ./cmd/mobile-auth-bff

# static: no libc needed (CGO_ENABLED=0); nonroot: uid/gid 65532, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mobile-auth-bff /usr/local/bin/mobile-auth-bff
# Numeric, so that runtimes enforcing runAsNonRoot can verify it.
USER 65532:65532
# Inside a container the listeners must bind all interfaces to be reachable
# at all; publish the admin port (8081) to trusted hosts only.
# BFF_ISSUER has no default here, and serve refuses to start without it on a
# listener bound to every interface: set it to the public https:// URL the
# clients reach the service at (docker run -e BFF_ISSUER=https://auth.example.org
# ...). It is the iss of every JWT and what edX services list in JWT_ISSUERS
# (docs/edx-services.md). migrate and admin commands run without it.
ENV BFF_ADDR=0.0.0.0:8080 \
    BFF_ADMIN_ADDR=0.0.0.0:8081
EXPOSE 8080 8081
# No HEALTHCHECK: distroless has no shell or curl. Probe GET /healthz and
# GET /readyz on port 8080 from the orchestrator instead.
ENTRYPOINT ["/usr/local/bin/mobile-auth-bff"]
CMD ["serve"]
