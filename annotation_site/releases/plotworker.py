"""`python -m annotation_site.releases.plotworker DIRECTORY`: the release's plots, drawn in a process of their own.

The builder starts it with the statistics workers, so that matplotlib's import overlaps with the reading of the
labels, and sends it jobs on standard input as they become possible (the score histograms as soon as the labels
are read, the alpha and rater plots when the statistics are done): each job a pickled (file name, inputs) for the
plots.PLOTS function of that name, drawn into DIRECTORY. For each job it prints the file name, or "-" when there
was nothing to draw; it ends at the end of its input. No Django: numpy, matplotlib and the schema dataclasses.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from annotation_site.releases import plots


def main(directory: Path) -> None:
    plots.warm_up()
    jobs = sys.stdin.buffer
    while True:
        try:
            name, inputs = pickle.load(jobs)
        except EOFError:
            return
        drawn = plots.PLOTS[name](directory / name, inputs)
        print(name if drawn else "-", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
