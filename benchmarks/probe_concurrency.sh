#!/bin/bash
# Issue #14's concurrency probe: N `defectops` processes at once on one fresh workspace, ROUNDS times; prints
# every failed process's last line and each round's miner state, then the totals.
#   usage: benchmarks/probe_concurrency.sh ROUNDS N CMD...
#   e.g.   benchmarks/probe_concurrency.sh 2 3 run --repo /path/to/repo --budget-seconds 2 -q
# Environment: DEFECTOPS (default: defectops on PATH), PROBE_DIR (default: a new temporary folder).
rounds=$1; n=$2; shift 2
DEFECTOPS=${DEFECTOPS:-defectops}
PROBE_DIR=${PROBE_DIR:-$(mktemp -d)}
fails=0; bad=0
for r in $(seq $rounds); do
  ws=$PROBE_DIR/ws_$r; rm -rf $ws
  pids=()
  for i in $(seq $n); do
    $DEFECTOPS -w $ws "$@" >$PROBE_DIR/out_${r}_$i 2>&1 & pids+=($!)
  done
  for i in $(seq $n); do wait ${pids[$((i-1))]}; rc=$?; if [ $rc -ne 0 ]; then fails=$((fails+1)); echo "round $r proc $i rc=$rc: $(tail -1 $PROBE_DIR/out_${r}_$i)"; fi; done
  # check state
  st=$(ls $ws/state/*.sqlite 2>/dev/null | head -1)
  if [ -z "$st" ]; then echo "round $r: NO STATE"; bad=$((bad+1)); else
    c=$(sqlite3 "$st" "select value from meta where key='commits'" 2>&1); echo "round $r state commits=$c files=$(sqlite3 "$st" 'select count(*) from files' 2>&1)"; fi
done
echo "failed processes: $fails, bad workspaces: $bad"
