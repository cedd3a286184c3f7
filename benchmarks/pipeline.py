"""Demo investigation cost by size: wall time per stage, kernel overhead, peak memory.

Run: .venv/bin/python benchmarks/pipeline.py --sizes 200000 1000000 5000000
Writes benchmarks/results/pipeline.md (machine and date included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(code: str, env: dict[str, str]) -> dict:
    """Run code in a fresh interpreter; it prints one JSON line; add its children's peak RSS."""
    wrapper = code + (
        "\nimport resource, json, sys\n"
        "r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({**RESULT, 'rss_self_mb': r / 1024, 'rss_children_mb': c / 1024}))\n")
    out = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(size: int, work: Path) -> dict:
    """Generate a demo of `size` log lines, then investigate it through the real runner."""
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(work / "runs")}
    data = work / f"data-{size}"
    gen = _child(
        "import time\nfrom incident_lib.demo.generator import DemoSpec, generate_demo\n"
        f"t = time.monotonic()\ngenerate_demo({str(data)!r}, DemoSpec(size={size}))\n"
        "RESULT = {'generate_s': time.monotonic() - t}\n", env)
    run = _child(
        "import json, time\nfrom incident_lib.pipeline.alerts import incident_from_alert\n"
        "from incident_lib.core.config import load_config\n"
        "from incident_lib.pipeline.runner import create_run, execute\n"
        f"data = {str(data)!r}\n"
        "payload = json.load(open(data + '/alert.json'))\n"
        "t = time.monotonic()\n"
        f"inc = incident_from_alert(payload, load_config(data_dir=data), incident_id='b{size}')\n"
        "st = execute(create_run(inc))\n"
        "RESULT = {'run_s': time.monotonic() - t, 'state': st['state'],\n"
        "          'stages': {k: v.get('seconds') for k, v in st['stages'].items()}}\n", env)
    cor = json.loads((work / "runs" / f"b{size}" / "findings" / "correlation.json").read_text())
    return {"size": size, **gen, **run, "generate_rss_mb": gen["rss_self_mb"],
            "lines_read": cor["data"]["logs"]["read"],
            "lines_matched": cor["data"]["logs"]["matched"],
            "top_suspect": f"{cor['data']['suspects'][0]['service']}/"
                           f"{cor['data']['suspects'][0]['change_id']}",
            "bytes": (data / "logs.ndjson").stat().st_size}


def kernel_overhead(work: Path) -> float:
    """Seconds for papermill to run a notebook that only imports incident_lib (IPC kernel)."""
    import nbformat
    import papermill as pm

    from incident_lib.pipeline.runner import _ipc_kernel_manager

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import incident_lib.stages.correlation")]
    src = work / "empty.ipynb"
    nbformat.write(nb, src)
    times = []
    for _ in range(3):
        t = time.monotonic()
        pm.execute_notebook(str(src), str(work / "out.ipynb"), progress_bar=False,
                            kernel_manager_class=_ipc_kernel_manager(tempfile.mkdtemp(), {}))
        times.append(time.monotonic() - t)
    return sorted(times)[1]


def main() -> None:
    """Measure each size and write the Markdown table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000, 5_000_000])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pipeline.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        overhead = kernel_overhead(work)
        rows = [measure(s, work) for s in args.sizes]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} vCPU, Python "
        f"{platform.python_version()}; date {datetime.now(UTC):%Y-%m-%d}.",
        "",
        f"Papermill + kernel overhead per notebook (start IPC kernel, import the stage module, "
        f"shut down; median of 3): **{overhead:.2f} s**.",
        "",
        "| log lines | NDJSON MB | generate s | triage s | correlation s | 5 whys s | "
        "postmortem s | run total s | lines read / matched | peak RSS runner MB | "
        "peak RSS kernel MB | top suspect |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        st = r["stages"]
        lines.append(
            f"| {r['size']:,} | {r['bytes'] / 1e6:.0f} | {r['generate_s']:.1f} | "
            f"{st['triage']:.1f} | {st['correlation']:.1f} | {st['five_whys']:.1f} | "
            f"{st['postmortem']:.1f} | {r['run_s']:.1f} | {r['lines_read']:,} / "
            f"{r['lines_matched']:,} | {r['rss_self_mb']:.0f} | {r['rss_children_mb']:.0f} | "
            f"{r['top_suspect']} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
