"""The ground floor: helpers every layer may import (atomic writes, progress bars, user errors).

Nothing here imports another module of ``src``.
"""
