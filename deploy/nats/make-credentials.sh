#!/bin/sh
# Makes the NATS credentials docker-compose.yml and deploy/compose/cluster.yml
# read, under deploy/nats/secrets/ (or the directory given), which git
# ignores:
#
#   <service>.env   NATS_USER, NATS_PASSWORD and NATS_INBOX_PREFIX of fetcher, enricher, writer,
#                   exporter, signature-loader and ops (the operator's, for
#                   tqflow status/dlq/replay and the nats CLI)
#   server.env      the same passwords for the NATS container
#                   (TQFLOW_NATS_<SERVICE>_PASSWORD, read by users.conf)
#   tls/ca.pem, tls/route.pem, tls/route-key.pem
#                   a private CA and the certificate the cluster nodes present
#                   to each other (mutual TLS on the routes: a node without a
#                   certificate of this CA cannot join)
#
# Existing passwords and certificates are kept: run it again after adding a
# service and only what is missing is made. Delete the directory to rotate
# everything (then recreate the containers).
#
# Usage: sh deploy/nats/make-credentials.sh [DIR]
set -eu
dir=${1:-$(dirname "$0")/secrets}
umask 077
mkdir -p "$dir/tls"

password() { openssl rand -hex 24; }

for svc in fetcher enricher writer exporter signature-loader ops; do
	f="$dir/$svc.env"
	if [ ! -s "$f" ]; then
		printf 'NATS_USER=%s\nNATS_PASSWORD=%s\n' "$svc" "$(password)" >"$f"
		echo "made $f"
	fi
	# Replies under the user's own prefix (users.conf allows only those).
	if [ "$svc" != ops ] && ! grep -q '^NATS_INBOX_PREFIX=' "$f"; then
		echo "NATS_INBOX_PREFIX=_INBOX_$svc" >>"$f"
	fi
done

{
	echo "# Passwords of deploy/nats/users.conf, for the NATS container. Made by make-credentials.sh."
	for svc in fetcher enricher writer exporter signature-loader ops; do
		var=$(echo "$svc" | tr 'a-z-' 'A-Z_')
		pw=$(sed -n 's/^NATS_PASSWORD=//p' "$dir/$svc.env")
		echo "TQFLOW_NATS_${var}_PASSWORD=$pw"
	done
} >"$dir/server.env"

tls="$dir/tls"
if [ ! -s "$tls/ca.pem" ] || [ ! -s "$tls/ca-key.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
		-subj "/CN=tqflow NATS CA" -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" 2>/dev/null
	rm -f "$tls/route.pem"
	echo "made $tls/ca.pem"
fi
if [ ! -s "$tls/route.pem" ] || [ ! -s "$tls/route-key.pem" ]; then
	ext="$tls/route.ext"
	printf 'subjectAltName=DNS:nats,DNS:nats-2,DNS:nats-3,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=tqflow NATS route" \
		-keyout "$tls/route-key.pem" -out "$tls/route.csr" 2>/dev/null
	openssl x509 -req -in "$tls/route.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
		-days 825 -extfile "$ext" -out "$tls/route.pem" 2>/dev/null
	rm -f "$tls/route.csr" "$ext" "$tls/ca.srl"
	echo "made $tls/route.pem"
fi

# The NATS containers run as uid 65532 and read the route key through a
# bind mount, which keeps the host's owner and mode.
chmod 644 "$tls/ca.pem" "$tls/route.pem"
chmod 755 "$tls"
if [ "$(id -u)" = 0 ]; then
	chown 65532:65532 "$tls/route-key.pem"
	chmod 600 "$tls/route-key.pem"
else
	chmod 644 "$tls/route-key.pem"
	echo "note: $tls/route-key.pem is world-readable so that the NATS containers (uid 65532) can read it;" >&2
	echo "      on a shared host: sudo chown 65532 $tls/route-key.pem && sudo chmod 600 $tls/route-key.pem" >&2
fi
