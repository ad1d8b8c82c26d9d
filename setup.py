"""Build of the optional C extension ``pitrdiff._canon`` (the rest is in pyproject.toml).

``optional=True``: without a C compiler or Python headers the build warns and
goes on, and ``pitrdiff.codec`` runs its Python walk (``codec.COMPILED`` is False).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pitrdiff._canon",
            sources=["pitrdiff/_canon.c", "pitrdiff/_canon_scalars.c", "pitrdiff/_canon_json.c"],
            depends=["pitrdiff/_canon.h"],
            optional=True,
        )
    ]
)
