"""Dataset releases: the immutable, versioned export of a project's labels with their statistics.

models.py     Release (one version of one project's release) and ReleaseSplit (the split of every image in it,
              which the next release of the project reads so that splits stay put).
options.py    release options (seed, split ratios, bootstrap resamples, images copied or referenced, ...) and
              their validation.
services.py   release_create (validate, number the version, queue) and release_build (the whole export, with
              progress on the row); extra writers (e.g. the LLaMA-Factory conversations of `workers`) plug in.
builder.py    the export itself: streams the labels, computes the statistics per field, writes every file.
selectors.py  reads: previous splits, progress, the latest finished release.
"""
