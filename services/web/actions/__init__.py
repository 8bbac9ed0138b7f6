"""The board's actions (issue 28): forms and drag-and-drop that run the APIs' commands with the user's own token.

``core``: the framework (``Action``, ``Field``, ``register``, the ``POST /act/{action_id}`` route and its answers);
``words``: the actions' texts in English and Vietnamese; ``sales``: the sales page's actions and pages (a deal's
actions, the agenda, a customer's 360). Kept free of imports here so that ``words`` can be read by ``i18n``."""
