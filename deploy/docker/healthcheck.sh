#!/bin/bash
# studio-healthcheck: the image's HEALTHCHECK. Exits 0 when /healthz answers
# 200 on the API address (studio serve) or on the admin address (studio
# worker), else 1. One image runs either subcommand, so it tries both.
#
# The addresses come from STUDIO_ADDR and STUDIO_ADMIN_ADDR with the binary's
# defaults (:8080, :9090): set ports through those variables, not through
# --addr/--admin-addr flags, or the check cannot find them. An empty or
# wildcard host is probed on 127.0.0.1.
#
# The slim runtime image has no curl or wget: this speaks HTTP/1.0 over
# bash's /dev/tcp. Replace it with `studio health` once the binary has one.
set -u

timeout=${HEALTHCHECK_TIMEOUT:-2}

# probe ADDR: GET /healthz on host:port; true when the status is 200.
probe() {
	local addr=$1 host port line
	port=${addr##*:}
	host=${addr%:*}
	host=${host#[}
	host=${host%]}
	case $host in "" | 0.0.0.0 | :: | "*") host=127.0.0.1 ;; esac
	case $port in "" | *[!0-9]*) return 1 ;; esac
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
	if ! IFS= read -r -t "$timeout" line <&3; then
		exec 3<&-
		return 1
	fi
	exec 3<&-
	case $line in "HTTP/1."[01]" 200"*) return 0 ;; esac
	return 1
}

for addr in "${STUDIO_ADDR:-:8080}" "${STUDIO_ADMIN_ADDR:-:9090}"; do
	probe "$addr" 2>/dev/null && exit 0
done
echo "studio-healthcheck: /healthz did not answer 200 on ${STUDIO_ADDR:-:8080} or ${STUDIO_ADMIN_ADDR:-:9090}" >&2
exit 1
