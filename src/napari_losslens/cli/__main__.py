"""``python -m napari_losslens.cli``: the ``losslens`` command."""

import sys

from .parser import main

sys.exit(main())
