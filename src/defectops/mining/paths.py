"""What kind of file a path is: test, build, docs, source or other (for the churn split of #20).

Why path rules and not content: the split must be computed for every file of every commit in the miner's hot
path, and a path is all the diff gives for free. The rules are checked in this order, the first that matches
wins (so ``tests/conftest.py`` is a test, ``requirements-docs.txt`` is build and ``docs/conf.py`` is docs):

1. **test**: a directory named ``test``, ``tests``, ``testing``, ``__tests__``, ``spec`` or ``specs``; or a
   file named ``test_*``, ``*_test.*``, ``*_tests.*``, ``*Test.*``, ``*Tests.*``, ``*.test.*``, ``*.spec.*``,
   ``*_spec.*`` or ``conftest.py``;
2. **build**: build, packaging and CI files: names in :data:`BUILD_NAMES`, ``requirements*.txt``,
   ``Dockerfile*``, ``*.gradle``, ``*.cmake``, ``*.mk``, or anything under ``.github/``, ``.circleci/``,
   ``.gitlab/`` or ``ci/``;
3. **docs**: a directory named ``doc``, ``docs``, ``documentation`` or ``man``; an extension in
   :data:`DOC_EXTENSIONS`; or a name starting with README, CHANGELOG, CHANGES, HISTORY, NEWS, AUTHORS,
   CONTRIBUTING or LICENSE;
4. **source**: an extension in :data:`SOURCE_EXTENSIONS` (programming languages, Terraform and HCL);
5. **other**: everything else (data, images, configuration of editors...): counted in ``churn`` only.

Matching is case-insensitive on names and extensions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

PathKind = Literal["test", "build", "docs", "source", "other"]

TEST_DIRECTORIES = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs"})
BUILD_NAMES = frozenset(
    {
        "setup.py", "setup.cfg", "pyproject.toml", "tox.ini", "noxfile.py", "manifest.in", "makefile",
        "cmakelists.txt", "meson.build", "meson_options.txt", "build.gradle", "settings.gradle", "pom.xml",
        "build.xml", "package.json", "package-lock.json", "yarn.lock", "cargo.toml", "cargo.lock", "go.mod",
        "go.sum", "gemfile", "gemfile.lock", "pipfile", "pipfile.lock", "poetry.lock", "uv.lock",
        "environment.yml", ".travis.yml", "appveyor.yml", "azure-pipelines.yml", ".gitlab-ci.yml",
        "jenkinsfile", ".pre-commit-config.yaml", "docker-compose.yml", "docker-compose.yaml",
        "configure", "configure.ac", "build.sh", ".terraform.lock.hcl",
    }
)  # fmt: skip
BUILD_DIRECTORIES = frozenset({".github", ".circleci", ".gitlab", "ci"})
BUILD_EXTENSIONS = frozenset({".gradle", ".cmake", ".mk"})
DOC_DIRECTORIES = frozenset({"doc", "docs", "documentation", "man"})
DOC_EXTENSIONS = frozenset({".md", ".rst", ".txt", ".adoc", ".asciidoc", ".tex", ".texi", ".man", ".1"})
DOC_PREFIXES = ("readme", "changelog", "changes", "history", "news", "authors", "contributing", "license")
SOURCE_EXTENSIONS = frozenset(
    {
        ".py", ".pyx", ".pxd", ".pxi", ".pyi", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx",
        ".c.src", ".h.src", ".f", ".f90", ".f95", ".for", ".java", ".kt", ".scala", ".go", ".rs", ".js",
        ".jsx", ".mjs", ".ts", ".tsx", ".rb", ".php", ".cs", ".swift", ".m", ".mm", ".sh", ".bash", ".pl",
        ".lua", ".r", ".jl", ".sql", ".tf", ".hcl", ".groovy", ".clj", ".ex", ".exs", ".erl", ".hs", ".ml",
        ".dart", ".vue", ".svelte", ".zig", ".nim", ".d", ".asm", ".s",
    }
)  # fmt: skip


def _extension(name: str) -> str:
    """The extension, with the two-part ``.c.src``/``.h.src`` of numpy's templated sources kept whole."""
    if name.endswith((".c.src", ".h.src")):
        return name[-6:]
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def _is_test_name(name: str, original: str) -> bool:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if name.startswith("test_") or name == "conftest.py":
        return True
    if stem.endswith(("_test", "_tests", "_spec")) or ".test." in name or ".spec." in name:
        return True
    # CamelCase test classes (FooTest.java): only where the original spelling marks the word.
    original_stem = original.rsplit(".", 1)[0] if "." in original else original
    return original_stem.endswith(("Test", "Tests")) and len(original_stem) > 4


@lru_cache(maxsize=65_536)
def path_kind(path: str) -> PathKind:
    """The kind of ``path`` by the rules of the module docstring (cached: a path recurs in many commits)."""
    original = path.rpartition("/")[2]
    parts = path.lower().split("/")
    name, directories = parts[-1], parts[:-1]
    if any(d in TEST_DIRECTORIES for d in directories) or _is_test_name(name, original):
        return "test"
    extension = _extension(name)
    if (
        name in BUILD_NAMES
        or (name.startswith("requirements") and name.endswith((".txt", ".in")))
        or name.startswith("dockerfile")
        or extension in BUILD_EXTENSIONS
        or any(d in BUILD_DIRECTORIES for d in directories)
    ):
        return "build"
    if (
        any(d in DOC_DIRECTORIES for d in directories)
        or extension in DOC_EXTENSIONS
        or name.startswith(DOC_PREFIXES)
    ):
        return "docs"
    if extension in SOURCE_EXTENSIONS:
        return "source"
    return "other"
