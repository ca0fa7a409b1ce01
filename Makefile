# nxcloud-media-lambda — build, test and deploy.
#
# `sam build` calls the build-<LogicalId> targets (BuildMethod: makefile) with ARTIFACTS_DIR set;
# everything else is for people. `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

GO ?= go
# Lambda runs the functions on Graviton (Architectures: [arm64] in template.yaml). Override for a
# host binary, e.g. `make build-GetMediaFunction GOARCH=amd64 ARTIFACTS_DIR=/tmp/get`.
GOARCH ?= arm64
GO_BUILD_FLAGS := -tags lambda.norpc -trimpath -buildvcs=false -ldflags='-s -w'

# SAM logical id -> folder under functions/ (each a main package).
FUNCTIONS := GetMediaFunction DeleteMediaFunction UploadTemplateFileFunction UploadMediaFunction UploadSessionsFunction ReconcileFunction ArchiveMediaFunction
FUNCTION_DIR_GetMediaFunction := get-media
FUNCTION_DIR_DeleteMediaFunction := delete-media
FUNCTION_DIR_UploadTemplateFileFunction := upload-template-file
FUNCTION_DIR_UploadMediaFunction := upload-media
FUNCTION_DIR_UploadSessionsFunction := upload-sessions
FUNCTION_DIR_ReconcileFunction := reconcile
FUNCTION_DIR_ArchiveMediaFunction := archive-media

# Where `make build` puts the bootstraps (bin/<LogicalId>/bootstrap).
BIN_DIR ?= bin

GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# Pinned MinIO for the local S3 endpoint (tests and `make local`).
MINIO_VERSION ?= v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN_DIR ?= $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin
export PATH := $(MINIO_BIN_DIR):$(PATH)

# The race detector needs cgo and a C compiler; without them the tests run without -race.
RACE ?= $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)
TEST_FLAGS ?= $(RACE) -count=1

SAM ?= sam
LOCAL_ARGS ?=
DEMO_ARGS ?= demo

.PHONY: help build $(addprefix build-,$(FUNCTIONS)) test lint fmt-check vet golangci-lint bench \
	local local-docker demo minio sam-build deploy validate guard clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-32s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@for fn in $(FUNCTIONS); do printf "  %-32s %s\n" "build-$$fn" "Build $$fn into \$$ARTIFACTS_DIR/bootstrap (sam build)"; done

# build-<LogicalId>: the SAM makefile contract. Writes $(ARTIFACTS_DIR)/bootstrap, a static,
# stripped linux/$(GOARCH) binary; ARTIFACTS_DIR defaults to .aws-sam/build/<LogicalId>.
define build_function
build-$(1):
	@test -d ./functions/$(FUNCTION_DIR_$(1)) || { echo "functions/$(FUNCTION_DIR_$(1)) does not exist: $(1) has no code yet" >&2; exit 1; }
	mkdir -p "$$(or $$(ARTIFACTS_DIR),.aws-sam/build/$(1))"
	CGO_ENABLED=0 GOOS=linux GOARCH=$$(GOARCH) $$(GO) build $$(GO_BUILD_FLAGS) -o "$$(or $$(ARTIFACTS_DIR),.aws-sam/build/$(1))/bootstrap" ./functions/$(FUNCTION_DIR_$(1))
endef
$(foreach fn,$(FUNCTIONS),$(eval $(call build_function,$(fn))))

build: ## Build every function into bin/<LogicalId>/bootstrap
	@for fn in $(FUNCTIONS); do \
		$(MAKE) --no-print-directory build-$$fn ARTIFACTS_DIR="$(BIN_DIR)/$$fn" || exit 1; \
	done

test: minio ## Run the whole test suite (the README's test command; installs MinIO first if missing)
	$(GO) test $(TEST_FLAGS) ./...

lint: fmt-check vet golangci-lint ## gofmt check, go vet and golangci-lint

fmt-check:
	@out="$$(find . -name '*.go' -not -path './.git/*' -not -path './.aws-sam/*' -exec gofmt -l {} +)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:" >&2; echo "$$out" >&2; exit 1; fi

vet:
	$(GO) vet ./...

golangci-lint:
	$(GOLANGCI_LINT) run ./...

bench: minio ## Measure the functions against their floor and rewrite BENCHMARKS.md (minutes)
	$(GO) run ./cmd/bench -out BENCHMARKS.md

# Fuzz targets as <package>:<FuzzName>; `go test ./...` runs their seed corpora (testdata/fuzz).
FUZZTIME ?= 60s
FUZZ_TARGETS := ./pkg/mediaapi:FuzzLambdaHandler ./pkg/upload:FuzzHandleRecords ./pkg/upload:FuzzKeyRoundTrip \
	./pkg/nxcloud:FuzzMultipartFileName ./pkg/nxcloud:FuzzSignVerify

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 60s); findings land in testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

.PHONY: bench-ci
bench-ci: minio ## Quick benchmark run: every section and Go benchmark once, small sizes (seconds, writes nothing)
	$(GO) run ./cmd/bench -quick -out ''

# The local run is built, then exec'd: make is its parent, so stopping make (Ctrl-C, kill) stops it
# and everything it started (go run would leave it running when make is killed).
local: minio ## Run the whole bundle locally (local NXCloud, S3 and Secrets Manager; installs MinIO first if missing)
	$(GO) build -o "$(BIN_DIR)/local" ./cmd/local
	exec "$(BIN_DIR)/local" $(LOCAL_ARGS)

local-docker: minio ## make local for `sam local invoke` in Docker: fixed ports on every interface (events/env.json)
	$(GO) build -o "$(BIN_DIR)/local" ./cmd/local
	exec "$(BIN_DIR)/local" -docker $(LOCAL_ARGS)

demo: minio ## Run the bundle locally and walk through a message upload session, get, content, archive and delete
	$(GO) build -o "$(BIN_DIR)/local" ./cmd/local
	exec "$(BIN_DIR)/local" $(DEMO_ARGS)

minio: ## Install the pinned MinIO into GOPATH/bin unless it is there (or MINIO_BIN names one)
	@if [ -n "$$MINIO_BIN" ] && [ -x "$$MINIO_BIN" ]; then \
		echo "minio: using MINIO_BIN=$$MINIO_BIN"; \
	elif [ -x "$(MINIO_BIN_DIR)/minio" ]; then \
		echo "minio: $(MINIO_BIN_DIR)/minio is installed"; \
	else \
		echo "minio: installing github.com/minio/minio@$(MINIO_VERSION) into $(MINIO_BIN_DIR) (takes a few minutes, once)"; \
		start=$$SECONDS; \
		GOBIN="$(MINIO_BIN_DIR)" $(GO) install github.com/minio/minio@$(MINIO_VERSION) || exit 1; \
		echo "minio: installed in $$((SECONDS - start))s"; \
	fi

# A validator that is not installed is skipped with a hint, except in CI (CI=true, as CI services
# set it), where it fails: CI cannot skip a check silently.
define skip_or_fail
	case "$$CI" in true|1) echo "$(1): $(2) (required with CI=$$CI)" >&2; exit 1;; *) echo "$(1): skipped: $(2)";; esac
endef

CFN_LINT ?= cfn-lint
validate: ## cfn-lint template.yaml (applies the SAM transform); skipped with a hint when cfn-lint is missing
	@if command -v $(CFN_LINT) >/dev/null 2>&1; then \
		echo "$(CFN_LINT) template.yaml"; $(CFN_LINT) template.yaml; \
	else \
		$(call skip_or_fail,validate,cfn-lint is not installed: pip install cfn-lint (or run sam validate --lint)); \
	fi

PYTHON ?= python3
GUARD_DIR := tools/guard
guard: ## cfn-guard with the AWS Control Tower rules over the SAM-transformed template (SECURITY.md)
	@if ! command -v npm >/dev/null 2>&1; then \
		$(call skip_or_fail,guard,npm is not installed: install Node.js 18 or later); \
	elif ! $(PYTHON) -c 'import samtranslator' 2>/dev/null; then \
		$(call skip_or_fail,guard,$(PYTHON) cannot import samtranslator for the SAM transform: pip install cfn-lint (it brings aws-sam-translator)); \
	else \
		if [ ! -f $(GUARD_DIR)/node_modules/.installed ] || [ $(GUARD_DIR)/package-lock.json -nt $(GUARD_DIR)/node_modules/.installed ]; then \
			echo "npm ci --prefix $(GUARD_DIR)"; \
			npm ci --prefix $(GUARD_DIR) --ignore-scripts --no-audit --no-fund && touch $(GUARD_DIR)/node_modules/.installed || exit 1; \
		fi; \
		$(PYTHON) $(GUARD_DIR)/guard.py template.yaml SECURITY.md; \
	fi

sam-build: ## sam build (calls the build-<LogicalId> targets)
	$(SAM) build

deploy: sam-build ## sam build && sam deploy (add SAM_DEPLOY_ARGS=--guided the first time)
	$(SAM) deploy $(SAM_DEPLOY_ARGS)

clean: ## Remove build output
	rm -rf "$(BIN_DIR)" .aws-sam
