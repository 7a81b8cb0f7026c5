#!/bin/sh
# netns-agent.sh HOST COMMAND... — Open MPI's launcher agent (plm_rsh_agent,
# in place of ssh) for tests/distribution_spec.lua's two "hosts": network
# namespaces on this machine. KLUA_NETNS_HOSTS maps addresses to namespaces
# ("10.1.2.1=ns_a 10.1.2.2=ns_b"); the command runs in HOST's namespace
# under a hostname of its own, as ssh would run it on another machine.
host=$1; shift
for pair in $KLUA_NETNS_HOSTS; do
  if [ "${pair%%=*}" = "$host" ]; then ns=${pair#*=}; fi
done
[ -n "$ns" ] || { echo "netns-agent.sh: no namespace for host $host" >&2; exit 1; }
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns && $*"
