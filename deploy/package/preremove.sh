#!/bin/sh
# Stops the unit before its files go.
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now tqflow.service >/dev/null 2>&1 || true
fi
