"""Draw a zero-node run from its records: worker nodes by type from the autoscaler's log and event log, each
pool's size from the run's MLflow metrics, on one time axis since the job was submitted.

The records come from tests/integration/test_zero_node.py run with RLSYS_ZERO_NODE_RECORDS=<dir>: the head's
event logs (`<dir>/events/`), its autoscaler log (`<dir>/monitor.log`) and the run's MLflow store
(`<dir>/mlflow.db`). From the repository root:

    RLSYS_ZERO_NODE_RECORDS=runs/zero_node python -m pytest -q -s tests/integration/test_zero_node.py
    python scripts/zero_node_plot.py runs/zero_node docs/zero_node.png

On a cluster of your own, pass its session's logs folder (`/tmp/ray/session_latest/logs` on the head) and a
tracking URI instead: `--logs DIR --tracking-uri URI --run-id ID`.
"""

import argparse
from pathlib import Path

import mlflow

from rlsys.cluster_timeline import job_submitted, node_counts, plot, run_record

POOLS = ("rollout", "verifier", "reward")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("records", type=Path, nargs="?", help="the folder RLSYS_ZERO_NODE_RECORDS named")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--logs", type=Path, help="the Ray session's logs folder (events/, monitor.log)")
    parser.add_argument("--tracking-uri", help="the MLflow tracking URI of the run")
    parser.add_argument("--run-id", help="the run (default: the only run of the experiment 'quickstart')")
    args = parser.parse_args()
    logs = args.logs or args.records
    events = logs / "events"
    client = mlflow.MlflowClient(tracking_uri=args.tracking_uri or f"sqlite:///{args.records / 'mlflow.db'}")
    run_id = args.run_id
    if run_id is None:
        (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
        run_id = run.info.run_id
    nodes = node_counts(
        (events / "event_AUTOSCALER.log").read_text().splitlines(),
        (logs / "monitor.log").read_text().splitlines(),
    )
    submitted = job_submitted((events / "event_JOBS.log").read_text().splitlines())
    record = run_record(client, run_id, POOLS)
    until = max([record.ended, *(at for changes in nodes.values() for at, _ in changes)]) + 10
    plot(nodes, record, submitted, until).savefig(args.out, dpi=110)
    peaks = {name: max(n for _, n in changes) for name, changes in nodes.items()}
    print(
        f"submitted to first step {record.first_step - submitted:.0f} s, to the job's end "
        f"{record.ended - submitted:.0f} s; peak nodes {peaks}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
