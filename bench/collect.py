"""Write BENCHMARKS.md: the summary (bench/results/summary.md) then every benchmark's own results file.

    python -m bench.collect

Each `bench/results/NAME.md` is written by the engineer who last ran `python -m bench.NAME`, with the command, the
machine and the peer measured in the same run; this only puts them together in one file at the repository's top.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ORDER = ("store", "categories", "proxy", "dns", "alerts", "report", "soak")


def collect() -> str:
    parts = [(RESULTS / "summary.md").read_text().rstrip() + "\n"]
    names = [n for n in ORDER if (RESULTS / f"{n}.md").exists()]
    names += sorted(p.stem for p in RESULTS.glob("*.md") if p.stem not in ORDER and p.stem != "summary")
    for name in names:
        text = _demote((RESULTS / f"{name}.md").read_text().rstrip())
        parts.append(f"\n<!-- from bench/results/{name}.md -->\n{text}\n")
    return "\n".join(parts)


def _demote(text: str) -> str:
    """Each file's headings one level down (its "# Title" becomes a section here); code blocks untouched."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(out)


def main() -> None:
    (ROOT / "BENCHMARKS.md").write_text(collect())


if __name__ == "__main__":
    main()
