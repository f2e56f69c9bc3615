# One image for every role. Build: docker build -t crunch-node:local .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/crunchnode/crunch-node/internal/cli.Version=${VERSION}" \
      -o /out/crunch-node ./cmd/crunch-node

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /app crunch
WORKDIR /app
COPY --from=build /out/crunch-node /usr/local/bin/crunch-node
USER crunch
EXPOSE 8000
ENTRYPOINT ["crunch-node"]
CMD ["run"]
