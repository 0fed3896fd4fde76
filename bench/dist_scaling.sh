#!/usr/bin/env bash
# Data-parallel scaling of `luagan run` under mpirun (docs/distributed.md,
# BENCHMARKS.md "Data parallel"). Two parts:
#
#   bash bench/dist_scaling.sh scaling [STEPS]   samples/s at np 1, 2, 4 for dcgan and
#        wgan_gp (--n-critic 1) at the same global batch of 64 (64/np per rank), one
#        thread per rank, with LUAGAN_DIST_PROFILE=1: the per-step split into compute,
#        waiting, communication and copies, and the bytes reduced per step
#   bash bench/dist_scaling.sh fd [STEPS]        FD (luagan eval, 10000 samples) of dcgan
#        trained at np 1 x batch 64 and np 2 x batch 32 (the same global batch and
#        samples seen), at STEPS/2 and STEPS (default 1000), one seed; FD_CONFIGS="1x64"
#        runs one of them (NPxBATCH), so the two can run side by side
#
#   bash bench/dist_scaling.sh overlap [STEPS] [REPS]  dcgan at np 2 x batch 32, one thread
#        per rank, LUAGAN_DIST_OVERLAP=0 and 1 alternating REPS times (default 3): steps/s
#        and the profile's split with the gradient allreduce after backward vs overlapped
#
# Environment: LUAGAN (default build/luagan), OUT (default /tmp/luagan_dist_scaling).
# On a machine with fewer cores than ranks the runs are oversubscribed: say so when
# quoting the figures, with the load average printed here.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${LUAGAN:-build/luagan}
out=${OUT:-/tmp/luagan_dist_scaling}
part=${1:-scaling}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
run_np() {   # np, then luagan arguments
  local np=$1; shift
  mpirun --oversubscribe --bind-to none -np "$np" -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
    -x LUAGAN_DIST_PROFILE ${LUAGAN_DIST_OVERLAP:+-x LUAGAN_DIST_OVERLAP} "$exe" "$@"
}
echo "# $(date -u +%FT%TZ) $(getconf _NPROCESSORS_ONLN) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# mean steps/s of the metrics log's records after the first (warm-up)
rate() {
  grep -o '"steps_per_s":[0-9.e+-]*' "$1" | cut -d: -f2 |
    awk 'NR > 1 { s += $1; n++ } END { if (n) printf "%.3f", s / n; else print "nan" }'
}

if [ "$part" = scaling ]; then
  steps=${2:-30}
  printf '%-8s %3s %6s %9s %10s  %s\n' recipe np batch steps/s samples/s "profile (last interval, ms per step)"
  for recipe in dcgan wgan_gp; do
    extra=""
    [ $recipe = wgan_gp ] && extra="--n-critic 1"
    for np in 1 2 4; do
      b=$((64 / np))
      dir=$out/scale_${recipe}_np$np
      rm -rf "$dir"
      LUAGAN_DIST_PROFILE=1 run_np $np run $recipe $extra --steps "$steps" --batch $b --threads 1 \
        --log-every 10 --sample-every 0 --ckpt-every 0 --quiet --out "$dir" 2> "$dir.err" >/dev/null
      r=$(rate "$dir/metrics.jsonl")
      prof=$(grep "dist profile" "$dir.err" | tail -1 | sed 's/.*ms per step ([^)]*): //' || true)
      printf '%-8s %3d %6d %9s %10.1f  %s\n' $recipe $np $b "$r" "$(echo "$r * 64" | bc -l)" "${prof:--}"
    done
  done
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
elif [ "$part" = overlap ]; then
  steps=${2:-30} reps=${3:-3}
  printf '%-4s %3s %9s  %s\n' rep ov steps/s "profile (last interval, ms per step)"
  for rep in $(seq "$reps"); do
    for ov in 0 1; do
      dir=$out/overlap_$ov
      rm -rf "$dir"
      LUAGAN_DIST_OVERLAP=$ov LUAGAN_DIST_PROFILE=1 run_np 2 run dcgan --steps "$steps" --batch 32 \
        --threads 1 --log-every 10 --sample-every 0 --ckpt-every 0 --quiet --out "$dir" \
        2> "$dir.err" >/dev/null
      prof=$(grep "dist profile" "$dir.err" | tail -1 | sed 's/.*ms per step ([^)]*): //' || true)
      printf '%-4d %3d %9s  %s\n' "$rep" $ov "$(rate "$dir/metrics.jsonl")" "${prof:--}"
    done
  done
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
elif [ "$part" = fd ]; then
  steps=${2:-1000}
  half=$((steps / 2))
  for cfg in ${FD_CONFIGS:-1x64 2x32}; do
    np=${cfg%x*} b=${cfg#*x}
    dir=$out/fd_np$np
    rm -rf "$dir"
    t0=$(date +%s)
    run_np $np run dcgan --steps $half --batch $b --threads 1 --seed 1 --log-every 50 \
      --sample-every 0 --ckpt-every 0 --quiet --out "$dir" >/dev/null
    fd1=$(run_np 2 eval "$dir" --threads 1 --memo 0 --no-floor --json "$dir/eval_$half.json" |
          awk '/Frechet distance/ {print $3}')
    run_np $np run dcgan --resume "$dir/checkpoint.safetensors" --steps $steps --batch $b \
      --threads 1 --log-every 50 --sample-every 0 --ckpt-every 0 --quiet --out "$dir" >/dev/null
    fd2=$(run_np 2 eval "$dir" --threads 1 --memo 0 --no-floor --json "$dir/eval_$steps.json" |
          awk '/Frechet distance/ {print $3}')
    echo "dcgan np $np x batch $b (global 64): FD at $((half * 64)) samples seen $fd1, at $((steps * 64)) $fd2 ($(( $(date +%s) - t0 )) s incl. eval)"
  done
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
else
  echo "usage: bash bench/dist_scaling.sh scaling|overlap|fd [STEPS]" >&2
  exit 2
fi
