"""Recovery: a diff dataset to a plan, a plan to conditional writes, and ``recover``.

- :mod:`pitrdiff.recovery.plan`: the selective re-put plan;
- :mod:`pitrdiff.recovery.apply`: writes that cannot clobber, with a journal;
- :mod:`pitrdiff.recovery.recover`: restore + export both + diff + plan.
"""
