"""The report of a run or an evaluation, one job per module: :mod:`.schema` (:class:`RunReport`,
what ``report.json`` / ``evaluation*.json`` hold), :mod:`.build` (built from the probe results
and written with its plots), :mod:`.markdown` (its Markdown and the run's closing lines) and
:mod:`.plots` (its figures). Import each name from its module."""
