"""Analysis and experiment tools, outside the training library.

``import sea_kd`` (what a config's ``custom_imports`` loads) does not load
this package: its modules serve ``tools/`` and the tests, and are imported
by their full names:

- ``comparison``, ``comparison_stats``, ``comparison_plot``,
  ``run_progress``: ``tools/compare.py``'s multi-seed runs, paired
  intervals and figures;
- ``pair_report``: ``tools/check_pair.py``'s report on a teacher-student
  pair;
- ``training_curves``: ``tools/plot_curves.py``'s loss and metric charts;
- ``step_parts``: parts of a distiller step timed alone, the methods' terms
  and their own network passes (``tools/benchmark.py``'s phases (d) and (e));
- ``random_weights``: random-weight configs and batches
  (``tools/benchmark.py --random``, the COCO configs' one-step test);
- ``synthetic_coco``: the generated COCO-format data set of the demo and
  the tests (``tools/make_synthetic_coco.py``).
"""
