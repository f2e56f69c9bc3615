.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/crunch-node
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/crunchnode/crunch-node/internal/cli.Version=$(VERSION)
TEST_FLAGS ?= -race -timeout 12m

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_/-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/crunch-node
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/crunch-node

.PHONY: run
run: build db/up ## Run a complete local node (crunch-node dev): creates and migrates the database first
	./$(BIN) dev

.PHONY: migrate
migrate: build db/up ## Create the database if needed and apply all migrations
	./$(BIN) migrate

.PHONY: db/up
db/up: ## Make sure the local PostgreSQL is running (starts it if installed)
	@scripts/ensure-postgres.sh

.PHONY: db/reset
db/reset: build db/up ## Drop and recreate the database named by DATABASE_URL (default crunch_node)
	./$(BIN) migrate --reset

.PHONY: deps
deps: ## Install the system packages the tests use (Debian/Ubuntu, as root): postgresql, protoc, python3-grpcio
	@scripts/install-deps.sh

.PHONY: generate
generate: generate/sqlc generate/proto ## Regenerate all generated code

.PHONY: generate/sqlc
generate/sqlc: ## Compile queries/*.sql into internal/dbsqlc
	$(GO) tool sqlc generate

.PHONY: generate/proto
generate/proto: ## Regenerate the model-runner protocol code (needs protoc)
	$(GO) generate ./internal/modelrunner/...

.PHONY: verify
verify: ## Fail when generated code, go.mod or formatting is out of date
	$(GO) tool sqlc diff
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: lint
lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

.PHONY: test
test: db/up verify lint ## verify, lint, then every test with the race detector against a real Postgres
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: bench
bench: db/up ## Run the benchmarks (figures go in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
