"""Built-in numba solutions (``karena suite run llm --solutions builtin --backend numba``)."""
