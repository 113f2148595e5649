#!/usr/bin/env bash
# photo_guard for digiKam's Batch Queue Manager: paste into a "User Shell Script" tool (digiKam sets $INPUT/$OUTPUT).
# Usage: the queue's output is the protected photo; extra photo-guard options may be given in $PHOTO_GUARD_ARGS.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086
photo-guard protect ${PHOTO_GUARD_ARGS:-} -o "$work" "$INPUT"
mv "$work/$(basename "$INPUT")" "$OUTPUT"
