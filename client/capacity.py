#!/usr/bin/env python3
"""How many Triton replicas (GPUs) serve R requests/s at p99 <= L ms, from perf sweep CSVs (client/perf_sweep.py).

    python client/capacity.py results/sweep.csv --rate 5000 --p99-ms 10
    python client/capacity.py results/sweep.csv -r 2000 --peak-rate 8000 -l 5 -w model=swish_py -w protocol=grpc

Prints the replicas and GPUs per measured configuration, the HPA minReplicas/maxReplicas, and the assumptions
(headroom, spare replicas). Exits 0 with an answer, 2 when no configuration meets the budget, 1 on bad input.
Same as the console script ``swish-capacity``; the logic is swish_triton.perf.capacity.
"""

from __future__ import annotations

from swish_triton.perf.capacity import main

if __name__ == "__main__":
    raise SystemExit(main())
