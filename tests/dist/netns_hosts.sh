#!/usr/bin/env bash
# Two "hosts" made of network namespaces (veth pairs on a bridge, each with
# its own address, hostname and TMPDIR) train the SyncBatchNorm + WGAN-GP GAN
# of gan_parity.lua for a few steps over Open MPI's TCP transport; the losses
# and outputs must match one process on the same global batch. mpirun starts
# the remote ranks through a launch agent that runs the command inside the
# host's namespace (as ssh would on a real cluster). Traffic stays on the
# bridge this script makes. Exit 77 (skipped) without root, ip netns,
# unshare or mpirun.
#   bash tests/dist/netns_hosts.sh LUAGAN_EXE
# Measuring (BENCHMARKS.md): NETNS_RATE=1gbit limits what each host sends
# (tc tbf on its interface); NETNS_BENCH="dcgan --steps 20 --batch 32" then
# also trains that recipe on the two hosts with LUAGAN_DIST_PROFILE=1 and
# prints its per-step profile (compute, wait, communication, copies);
# LUAGAN_DIST_OVERLAP=0 there measures it without the overlapped allreduce.
set -euo pipefail
exe=$(realpath "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "netns_hosts: skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
for t in ip unshare mpirun; do command -v $t >/dev/null || skip "no $t"; done
"$exe" -e 'assert(pcall(require, "luagan.mpi"))' 2>/dev/null || skip "luagan built without MPI"

tag=$$
net=$((tag % 200 + 20))                       # 10.231.NET.0/24, one per run
br=lgbr$tag h1=lgh1-$tag h2=lgh2-$tag
tmp=$(mktemp -d)
cleanup() {
  ip netns del $h1 2>/dev/null || true; ip netns del $h2 2>/dev/null || true
  ip link del $br 2>/dev/null || true; rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add $h1 || skip "cannot create a network namespace"
ip netns add $h2
ip link add $br type bridge
ip addr add 10.231.$net.254/24 dev $br     # mpirun (here) reaches the hosts' daemons
ip link set $br up
i=1
for h in $h1 $h2; do
  ip link add v$i$tag type veth peer name e$i$tag
  ip link set e$i$tag netns $h
  ip link set v$i$tag master $br
  ip link set v$i$tag up
  ip netns exec $h ip addr add 10.231.$net.$i/24 dev e$i$tag
  ip netns exec $h ip link set e$i$tag up
  ip netns exec $h ip link set lo up
  if [ -n "${NETNS_RATE:-}" ]; then
    command -v tc >/dev/null || skip "NETNS_RATE needs tc (iproute2)"
    ip netns exec $h tc qdisc add dev e$i$tag root tbf rate "$NETNS_RATE" burst 1mb latency 100ms
  fi
  mkdir -p "$tmp/$h"
  i=$((i + 1))
done

# launch agent: mpirun calls it as `agent [options] HOST COMMAND...`
cat > "$tmp/agent" <<AGENT
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
exec ip netns exec "\$host" unshare --uts /bin/sh -c "hostname \$host; export TMPDIR=$tmp/\$host; \$*"
AGENT
chmod +x "$tmp/agent"
printf '%s slots=1\n%s slots=1\n' $h1 $h2 > "$tmp/hosts"

steps=8 batch=8
cd "$src"
# sanitizer builds: Open MPI keeps allocations of components it unloaded
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
OMP_NUM_THREADS=1 "$exe" tests/dist/gan_parity.lua $steps $batch "$tmp/one.txt"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 10 120 mpirun \
  --hostfile "$tmp/hosts" -np 2 --bind-to none -x OMP_NUM_THREADS=1 \
  --mca plm_rsh_agent "$tmp/agent" --mca oob_tcp_if_include 10.231.$net.0/24 \
  --mca btl tcp,self --mca btl_tcp_if_include 10.231.$net.0/24 \
  "$exe" tests/dist/gan_parity.lua $steps $batch "$tmp/two.txt"
# ranks really ran on two hosts: each names its own hostname
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 10 60 mpirun \
  --hostfile "$tmp/hosts" -np 2 --bind-to none \
  --mca plm_rsh_agent "$tmp/agent" --mca oob_tcp_if_include 10.231.$net.0/24 \
  --mca btl tcp,self --mca btl_tcp_if_include 10.231.$net.0/24 \
  "$exe" -e 'local f = io.open("/proc/sys/kernel/hostname"); print(f:read("l"))' | sort > "$tmp/names.txt"
printf '%s\n%s\n' $h1 $h2 | sort | diff - "$tmp/names.txt"
grep -q "weights: same on every rank" "$tmp/two.txt"
# every number within 1e-6 (relative) of the one-process run
paste -d'\n' "$tmp/one.txt" "$tmp/two.txt" | awk '
  NR % 2 == 1 { n = split($0, a, " "); next }
  { split($0, b, " "); for (k = 1; k <= n; k++) if (a[k] ~ /^-?[0-9]/) {
      d = a[k] - b[k]; if (d < 0) d = -d; m = a[k] < 0 ? -a[k] : a[k]; if (m < 1) m = 1
      if (d / m > worst) worst = d / m } }
  END { printf "netns_hosts: 2 hosts over TCP vs 1 process: worst relative difference %.3g\n", worst
        exit !(worst < 1e-6) }'
if [ -n "${NETNS_BENCH:-}" ]; then
  echo "netns_hosts: 2 hosts${NETNS_RATE:+, each sending at most $NETNS_RATE}: luagan run $NETNS_BENCH"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LUAGAN_DIST_PROFILE=1 timeout -k 10 600 mpirun \
    --hostfile "$tmp/hosts" -np 2 --bind-to none -x OMP_NUM_THREADS=1 -x LUAGAN_DIST_PROFILE \
    ${LUAGAN_DIST_OVERLAP:+-x LUAGAN_DIST_OVERLAP} --mca plm_rsh_agent "$tmp/agent" --mca oob_tcp_if_include 10.231.$net.0/24 \
    --mca btl tcp,self --mca btl_tcp_if_include 10.231.$net.0/24 \
    "$exe" run $NETNS_BENCH --threads 1 --log-every 10 --sample-every 0 --ckpt-every 0 --quiet \
    --out "$tmp/bench" 2>&1 | grep "dist profile"
fi
echo "netns_hosts: ok"
