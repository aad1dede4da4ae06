"""Aids shared by the test suite and the benchmark scripts, shipped so that both import them
like any module (no path manipulation):

- :mod:`~infmasking.testing.reference_step`: the published training step's cost structure,
  re-implemented naively, and the variants of one step the parity tests compare and
  ``benchmarks/costs/step_time.py`` times;
- :mod:`~infmasking.testing.data_writers`: small files in the real format of every dataset
  loader (MultiBench pickles, Vision&Touch episodes, MM-IMDb HDF5, own ``.npz``), for tests
  and for trying a loader without the real data.
"""
