#!/bin/sh
# Creates the tqflow system user and group before the files are unpacked.
# DPKG_ROOT (dpkg --root with chrootless scripts) is honoured.
set -e
root="${DPKG_ROOT:-}"
if ! grep -q '^tqflow:' "$root/etc/group" 2>/dev/null; then
	groupadd --root "${root:-/}" --system tqflow
fi
if ! grep -q '^tqflow:' "$root/etc/passwd" 2>/dev/null; then
	useradd --root "${root:-/}" --system --gid tqflow --no-create-home \
		--home-dir /var/lib/tqflow --shell /usr/sbin/nologin \
		--comment "tqflow pipeline" tqflow
fi
