#!/bin/bash
# The local cluster itself (tools/local-cluster.sh up 2): Slurm has 2 nodes and srun starts
# tasks on each, each node has its own hostname and address and no route but the cluster's
# link, the filesystem is shared, srun --mpi=pmix gives one MPI job across the nodes, and Open
# MPI sees two nodes: ranks on different nodes talk over TCP (never vader, its shared-memory
# transport), ranks of one node over vader; ompml-train reports "4 ranks on 2 nodes" and its
# auto transport picks the hierarchical sum. The EXIT trap then checks that down leaves nothing behind.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin mn_cluster

# 1. one task per node: hostname, address, routes, the shared filesystem
srun -N 2 --ntasks-per-node=1 -l bash -c \
  'echo "$(hostname)|$(ip -4 -o addr show dev eth0 | awk "{print \$4}")|$(ip route | tr "\n" ";")" >"$PWD/from-$(hostname)"; hostname' \
  >hosts.txt || t_fail "srun -N 2 failed"
[[ $(sort -k2 hosts.txt | awk '{print $2}' | tr '\n' ' ') == "node1 node2 " ]] || t_fail "srun -N 2 ran on: $(cat hosts.txt)"
[[ $(hostname) != node[12] ]] || t_fail "this machine is itself called $(hostname)"
for k in 1 2; do
  f=from-node$k   # written on node k, read here: one filesystem
  [[ -s $f ]] || t_fail "node$k's file $f is not visible here"
  IFS='|' read -r name addr routes <"$f"
  [[ $name == node$k && $addr == 10.24.0.$k/24 ]] || t_fail "node$k: $(cat "$f")"
  # the only route is the cluster's own link: nothing can leave it
  [[ $routes == "10.24.0.0/24 dev eth0 proto kernel scope link src 10.24.0.$k ;" ]] || t_fail "node$k: routes $routes"
done
ip -o link | grep -qE ': (br0|v-node[0-9]+|v-head)[@:]' && t_fail "a cluster interface is in this machine's namespace"
t_ok "node1 and node2: own hostname and address, one link, shared filesystem"

# 2. srun --mpi=pmix: one job of 4 ranks, 2 per node
srun --mpi=pmix -N 2 --ntasks-per-node=2 bash -c 'echo "$PMIX_RANK $(hostname)"' | sort >ranks.txt ||
  t_fail "srun --mpi=pmix failed"
[[ $(tr '\n' ' ' <ranks.txt) == "0 node1 1 node1 2 node2 3 node2 " ]] || t_fail "pmix ranks: $(cat ranks.txt)"
t_ok "srun --mpi=pmix: ranks 0,1 on node1 and 2,3 on node2"

# 3. Open MPI's view: which transport each rank uses to each other rank (btl_base_verbose
# names them: "[nodeA:pid] mca: bml: Using <btl> btl for send to [[job,vpid],R] on node nodeB")
t_synth synth.h5
srun --mpi=pmix -N 2 --ntasks-per-node=2 --export=ALL,OMPI_MCA_btl_base_verbose=100,OMP_NUM_THREADS=1 \
  "$OMPML_BIN/ompml-train" --data synth.h5 --layers "$(t_layers)" --epochs 1 --batch 64 --max-steps 5 \
  >train.log 2>&1 || { tail -n 40 train.log; t_fail "ompml-train on 2 nodes failed"; }
t_grep '^  mpi       4 ranks on 2 nodes, gradients: hierarchical: shared memory in each node \(2 ranks here\), MPI exchange, fixed order on host memory between 2 node leaders' train.log
t_grep '^  gradients .*grad_transport auto' train.log
t_grep '^  rank 0    node1, local rank 0 of 2' train.log
t_grep '^  rank 3    node2, local rank 1 of 2' train.log
t_grep '^final: test_acc' train.log
grep -o '^\[node[0-9]*:[0-9]*\] mca: bml: Using [a-z]* btl for send to .* on node node[0-9]*' train.log |
  sed -E 's/^\[(node[0-9]+):[0-9]+\] mca: bml: Using ([a-z]+) btl .* on node (node[0-9]+)$/\1 \2 \3/' |
  sort | uniq -c >btl.txt
cat btl.txt
# between nodes: tcp only; inside a node: vader (or self, a rank to itself) only
awk '$3 == "tcp" && $2 == $4 || $3 != "tcp" && $2 != $4 { bad = 1 } END { exit bad }' btl.txt ||
  t_fail "a transport crosses the node boundary wrongly: $(cat btl.txt)"
# Open MPI names a peer's transport on the first send to it, so not every pair shows; each
# direction between the nodes and each node's own pair must
for want in "node1 tcp node2" "node2 tcp node1" "node1 vader node1" "node2 vader node2"; do
  grep -q " $want\$" btl.txt || t_fail "no '$want' in: $(cat btl.txt)"
done
t_ok "Open MPI: tcp between node1 and node2, vader inside each node"

# 4. the controller and the nodes are where they should be: node1's slurmd listens on its own
# address, in its own namespace, not in this machine's
"$LC" exec -n node1 ip -4 -o addr show dev eth0 | grep -q ' 10.24.0.1/24 ' || t_fail "node1's address"
"$LC" exec -n node1 hostname | grep -qx node1 || t_fail "node1's hostname"
"$LC" exec hostname | grep -qx head || t_fail "head's hostname"
t_pass
