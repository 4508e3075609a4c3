#!/usr/bin/env bash
# The whole test suite: the command the README gives a newcomer and the one
# .ci/run calls. Stages: unit + integration tests (swift test), then the
# stages that need outside programs, each installing what it lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n=== %s\n' "$*"; }

stage "swift test"
swift test --disable-swift-testing 2>&1 | tee /tmp/peekd-swift-test.log
