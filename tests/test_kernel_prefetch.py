"""The kernel's histogram prefetch is an optional speed-up: without it, the same numbers.

``_kernel_numba._prefetch_for_write`` declares LLVM's ``llvm.prefetch`` by hand (numba has no
prefetch of its own); it was written against numba 0.68.1 / llvmlite 0.50. Where a numba or
llvmlite cannot compile it, the kernel must run its plain loop, say so in one line, and give
the same bits.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lfr_eval.search._kernel_numba as kernel_numba

ROOT = Path(__file__).resolve().parents[1]

# one scoring run with counts (the prefetch sits in the counting loop) and mates
_RUN = """
import hashlib
import numpy as np
from lfr_eval.search._kernel import Gallery, score_block

rng = np.random.default_rng(5)
templates = rng.standard_normal((1500, 64)).astype(np.float32)
templates /= np.linalg.norm(templates, axis=1, keepdims=True)
probes = templates[rng.integers(0, 1500, 700)] + 0.3 * rng.standard_normal((700, 64))
probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
gallery = Gallery.build(
    templates, [f"s{i % 900:04d}" for i in range(1500)], subject_groups=np.arange(900) % 3
)
part = score_block(
    probes, gallery, k=5, thresholds=np.linspace(-1, 1, 301), mate_codes=np.arange(700) % 900
)
digest = hashlib.sha256()
for a in (part.top_scores, part.top_subjects, part.top_rows, part.higher, part.counts):
    digest.update(np.ascontiguousarray(a).tobytes())
"""


def _digest() -> str:
    scope: dict[str, object] = {}
    exec(_RUN, scope)  # noqa: S102 - the same run as the subprocess's, in this process
    digest = scope["digest"]
    assert isinstance(digest, type(hashlib.sha256()))
    return digest.hexdigest()


def test_plain_loop_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag forced off: the plain loop's compiled version, bit for bit the same."""
    assert kernel_numba.PREFETCH is True  # numba 0.68 / llvmlite 0.50 here compile it
    with_prefetch = _digest()
    monkeypatch.setattr(kernel_numba, "PREFETCH", None)
    assert _digest() == with_prefetch


def test_a_numba_that_cannot_compile_the_intrinsic_falls_back_with_one_line(
    tmp_path: Path,
) -> None:
    """A fresh process (empty numba cache) whose LLVM declaration of ``llvm.prefetch`` does
    not match the call (as when an LLVM changes an intrinsic's signature): a one-line
    PrefetchUnavailableWarning, no traceback, the plain loop, the same digest."""
    script = (
        textwrap.dedent(
            """
        import warnings
        from llvmlite import ir
        import numba.core.cgutils as cgutils

        real = cgutils.get_or_insert_function

        def other_llvm(module, fnty, name):
            if name == "llvm.prefetch":  # a declaration this call does not match
                fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), ir.IntType(64)])
            return real(module, fnty, name)

        cgutils.get_or_insert_function = other_llvm
        warnings.simplefilter("default")
        import lfr_eval.search._kernel_numba as kn
        assert kn.PREFETCH is None, kn.PREFETCH
        """
        )
        + _RUN
        + "\nprint(digest.hexdigest())\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "PrefetchUnavailableWarning" in line]
    assert lines == done.stderr.strip().splitlines() and len(lines) == 1, done.stderr
    assert "histogram prefetch" in lines[0] and "the same numbers" in lines[0]
    assert done.stdout.strip() == _digest()
