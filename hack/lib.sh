#!/usr/bin/env bash
# Shared settings for the hack/ scripts. Sourced, never run.

EA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EA_OUTPUT="$EA_ROOT/_output"
EA_BIN="$EA_OUTPUT/bin"
# The cache outlives a clone: CI builds in a fresh clone on a machine that
# may already hold the control plane built by an earlier run.
EA_CACHE_DIR=${EA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ephemeral-agent}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
