"""The scaling benchmark (issue 16): ingest with 1, 2 and 3 nodes of `bal stack` against
the raw Mosquitto -> paho rate, the sequencer's integration rate, takeover after the
leader is killed, and receipt latency at a steady rate (see `benchmarks.scaling.cli`).

Modules, by job:

- `publish`:   publisher processes, full speed or paced;
- `raw`:       the plain Mosquitto -> paho baseline;
- `sequencer`: the leader's sequencer alone, on PostgreSQL and SQLite;
- `stack`:     a `bal stack` in a temporary directory, its producers, store and nodes;
- `runs`:      ingest, receipt latency and takeover on a running stack;
- `cli`:       the run, its report, its table and the command line.
"""
