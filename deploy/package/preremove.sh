#!/bin/sh
# Stops and disables the unit before its files go: on removal only (deb:
# "remove"; rpm: "0", no version left). An upgrade keeps it enabled and
# running; postinstall.sh restarts it on the new files.
set -e
case "$1" in
remove | 0)
	if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
		systemctl disable --now tqflow.service >/dev/null 2>&1 || true
	fi
	;;
esac
