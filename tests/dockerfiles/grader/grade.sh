#!/usr/bin/env bash
if diff -q <(sort "$1") /exercise/expected >/dev/null; then echo OK; else echo KO; exit 1; fi
