# The one place the version is written: pyproject.toml reads it (dynamic version), the package exports it
# as bearlumen.__version__ and the HTTP client sends it in its User-Agent. Bump it with CHANGELOG.md.
__version__ = "0.1.0"
