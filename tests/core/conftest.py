"""Shared settings of the core tests.

The tensors here are tiny, so intra-op threads only add synchronisation; when
several test processes share a small machine, two OpenMP threads per process
made the generator property test over ten times slower. Each core test module
runs single-threaded and restores the previous setting afterwards.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_intra_op_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
