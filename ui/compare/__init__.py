"""The Compare page's views, one module a view, each a ``render(comparison)`` function.

``app_pages/compare.py`` chooses the runs and builds one ``Comparison`` (``context``); the views read
their widgets, ask ``recsys.evaluation`` (mostly ``recsys.evaluation.compare``) for every table, frame
and number, and draw them. To add a view: a module here with ``render``, a line in the page's ``VIEWS``
and its label in ``ui.share.VIEWS`` (the link names the open view).
"""
