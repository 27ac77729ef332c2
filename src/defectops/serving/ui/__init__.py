"""The service's web UI (``/ui``): the documents its pages read, and the pages themselves (``static/``).

Why inside the service: the people who read the risk of a commit and the people who run the loop should
see the state the running service is in (what it serves, what it logged, what the loop decided) without a
second server. Every page is a static HTML shell that fetches its data from a JSON endpoint under
``/ui/api/`` (the same documents are there for scripts), and draws its charts with the vendored Chart.js
(``static/vendor``; nothing is fetched from the internet). Actions (promote, rollback, traffic) are calls of
the existing admin API with the admin token the user types in; "was this right?" is ``POST /v1/reviews``.

Modules: :mod:`.overview` (served model, versions, alias history, last cycles, traffic), :mod:`.commits`
(riskiest commits, one commit's reasons against the training distribution), :mod:`.history` (monitoring
over time and the heal timeline), :mod:`.card` (a version's model card), :mod:`.models` (versions loaded
for explaining and their reference snapshots, cached).
"""
