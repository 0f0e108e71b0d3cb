"""The ``losslens`` command line: U-Net weight maps and loss maps for files, and a demo.

Files in, files out, through :mod:`napari_losslens.core`. napari and Qt are imported only by
``losslens demo``; ``weights`` and ``loss`` run on a machine without a screen.

Where things live:

- :mod:`.parser`: ``build_parser`` and ``main``; each command adds its own subparser.
- :mod:`.weights`, :mod:`.loss`, :mod:`.compare`, :mod:`.demo`: one module per command.
- :mod:`._io`: reading and writing images (TIFF, ``.npy``, ``.zarr``), in memory or lazily.
- :mod:`.batch`: the loop over files: atomic writes, ``--skip-existing``, signals, progress,
  per-file errors. :mod:`.outputs`: the rule that no output may replace an input.
- :mod:`.engine`: where dask computes (``--chunks``, ``--workers``, ``--scheduler``).
  :mod:`.options`: option values from text.

Conventions shared by the subcommands:

- Results go to stdout (the summary, the loss values or table); progress bars and errors go
  to stderr, one line per bad file, naming the file and what is wrong.
- A bad file does not stop the others. Exit status: 0 when everything was done, 1 when any
  file failed (or an output was refused), 2 for a usage error (nothing was done).
- No input is ever overwritten: every output is checked against every input of the run
  before the first write (:mod:`.outputs`).
- Nothing is overwritten unless ``--overwrite`` is given, and an output file is never left
  half-written: it is written to a temporary file (or folder, for ``.zarr``) in the same
  folder and moved into place. ``--skip-existing`` skips outputs that exist instead.
- SIGINT or SIGTERM stops a batch cleanly: the output in progress is removed, the finished
  ones are kept, the files not done are listed on stderr, and the exit status is 130
  (SIGINT) or 143 (SIGTERM); a rerun with ``--skip-existing`` finishes the rest.
- ``--chunks`` reads each file lazily as a dask array and writes the result chunk by chunk
  (tiled TIFF, or zarr), on dask's threads, a local cluster (``--workers``) or a
  ``dask.distributed`` scheduler (``--scheduler``).
"""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
