"""`python -m annotation_site.releases.statsworker`: the statistics of some fields in a process of their own.

The builder starts the workers when the build starts, so that their imports (numpy, scipy) overlap with its
reading of the labels, and hands each its job later: two lines on standard input, JOB and RESULT. The paths can also
be given as arguments (`python -m annotation_site.releases.statsworker JOB RESULT`). JOB is a pickle the release
builder wrote ({"arrays": npz path, "fields": [(column, FieldSpec)], "params": {...}}); RESULT receives the pickled
list of FieldStats. Standard input closed without a job (the build failed first): exit quietly. No Django: numpy,
scipy and the schema dataclasses only. A plain subprocess rather than multiprocessing, which refuses to start
children inside a Celery prefork worker.
"""

from __future__ import annotations

import ctypes
import pickle
import sys

import numpy as np

from annotation_site.releases.fieldstats import LabelArrays, field_stats


def _reuse_freed_memory() -> None:
    """Let glibc's malloc keep freed blocks of up to 64 MB for reuse instead of handing them back to the OS.

    The statistics make many short-lived arrays of a few MB (per-observation temporaries, bootstrap chunks). By
    default each comes fresh from the OS and is zero-filled page by page on first touch, which cost 10-15% of
    the worker's CPU time in the release benchmark; the peak memory stays the same. Elsewhere than glibc, no-op."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, 64 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def main(job_path: str, result_path: str) -> None:
    _reuse_freed_memory()
    with open(job_path, "rb") as handle:
        job = pickle.load(handle)
    arrays = np.load(job["arrays"])
    image, rater, slot, values = arrays["image"], arrays["rater"], arrays["slot"], arrays["values"]
    results = []
    for column, spec in job["fields"]:
        labels = LabelArrays(image=image, rater=rater, slot=slot, value=values[:, column])
        results.append(field_stats(spec, labels, **job["params"]))
    with open(result_path, "wb") as handle:
        pickle.dump(results, handle, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        main(sys.argv[1], sys.argv[2])
    else:
        job_path, result_path = sys.stdin.readline().rstrip("\n"), sys.stdin.readline().rstrip("\n")
        if job_path and result_path:
            main(job_path, result_path)
